"""The tuner's search logic and config edits (the live trials are in tests/integration)."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import pytest

from tritonkit.repository.pbtxt import DynamicBatching, read_config
from tritonkit.repository.plan import plan_from_repository
from tritonkit.repository.validate import validate_repository
from tritonkit.tune.search import (
    Settings,
    Trial,
    TuneError,
    apply_settings,
    candidates,
    parallel_layouts,
    read_settings,
    search,
    tokenizer_counts,
    write_settings,
)

DEFAULT = Settings(1, 0, 1, True, 32, 500, ())
LENGTHS = [5, 6, 8, 9, 12, 14, 20, 30, 31, 60]


def fake_measure(score: dict[Settings, list[float]] | None = None, p95: float = 10.0):
    """Throughput from a table (a list is consumed in order); the default scores 100."""
    calls: list[tuple[Settings, str]] = []

    def measure(settings: Settings, stage: str) -> Trial:
        calls.append((settings, stage))
        values = (score or {}).get(settings)
        value = values.pop(0) if values else 100.0 if settings == DEFAULT else 90.0
        return Trial(settings, stage, value, p95, 0.0, 1.0, 1.0)

    return measure, calls


def test_two_cores_keep_the_measured_grid() -> None:
    assert parallel_layouts(2) == [(1, 2), (2, 1), (1, 1), (2, 2)]
    assert tokenizer_counts(2, 1) == [2] and tokenizer_counts(2, 2) == [1]


@pytest.mark.parametrize("cores", [1, 3, 4, 8, 12, 16, 64])
def test_layouts_follow_the_cores(cores: int) -> None:
    layouts = parallel_layouts(cores)
    assert len(layouts) == len(set(layouts))
    assert (cores, 1) in layouts  # what generate deploys on a CPU: one instance per core
    assert (1, cores) in layouts  # one instance over every core
    assert all(i * t == cores for i, t in layouts[:-2])  # the splits use every core once
    assert all(i >= 1 and t >= 1 for i, t in layouts)


def test_the_sweep_tries_one_instance_per_core_on_a_large_machine() -> None:
    tried = list(candidates(DEFAULT, "parallelism", LENGTHS, 64, cores=16))
    layouts = {(s.model_instances, s.threads) for s in tried}
    assert {(16, 1), (8, 2), (4, 4), (1, 16), (16, 2)} <= layouts
    assert {s.tokenizer_instances for s in tried} >= {2, 4, 8}
    measure, calls = fake_measure()
    search(DEFAULT, measure, LENGTHS, 64, budget_s=10_000, trial_cost_s=0.001, cores=16)
    assert (16, 1) in {(s.model_instances, s.threads) for s, _ in calls}


def test_budget_too_short() -> None:
    measure, calls = fake_measure()
    with pytest.raises(TuneError) as info:
        search(DEFAULT, measure, LENGTHS, 64, budget_s=20, trial_cost_s=10)
    assert str(info.value) == (
        "--budget 20s is too short for one trial: each takes about 10s and tuning needs at "
        "least 30s; raise --budget"
    )
    assert calls == []


def test_keeps_the_default_when_nothing_beats_it() -> None:
    measure, calls = fake_measure()
    result = search(DEFAULT, measure, LENGTHS, 64, budget_s=10_000, trial_cost_s=0.001)
    assert result.chosen == DEFAULT
    assert not result.improved
    assert calls[0][1] == "default"
    assert "batching" in {stage for _, stage in calls}


def test_picks_a_winner_that_holds_in_the_confirmation() -> None:
    winner = replace(DEFAULT, model_instances=2, threads=1)
    measure, calls = fake_measure({winner: [150.0, 140.0]})
    result = search(DEFAULT, measure, LENGTHS, 64, budget_s=10_000, trial_cost_s=0.001)
    assert result.chosen.model_instances == 2 and result.chosen.threads == 1
    assert result.confirmation == {"default": 100.0, "best": 140.0}
    assert calls[-2][1] == "confirm best" and calls[-1][1] == "confirm default"


def test_never_picks_a_setting_that_lost_the_confirmation() -> None:
    lucky = replace(DEFAULT, model_instances=2, threads=1)
    measure, _ = fake_measure({lucky: [150.0, 101.0], DEFAULT: [100.0, 100.0]})
    result = search(DEFAULT, measure, LENGTHS, 64, budget_s=10_000, trial_cost_s=0.001)
    assert result.chosen == DEFAULT  # 101 is within the 3 % margin: noise, not a win


def test_p95_bound_excludes_slow_settings() -> None:
    fast_but_slow = replace(DEFAULT, model_instances=2, threads=1)
    measure, _ = fake_measure({fast_but_slow: [500.0, 500.0]}, p95=10.0)

    def bounded(settings: Settings, stage: str) -> Trial:
        trial = measure(settings, stage)
        return replace(trial, p95_ms=99.0) if settings == fast_but_slow else trial

    result = search(
        DEFAULT, bounded, LENGTHS, 64, budget_s=10_000, trial_cost_s=0.001, p95_bound_ms=50
    )
    assert result.chosen == DEFAULT


def test_stops_at_the_budget() -> None:
    measure, calls = fake_measure()
    ticks = itertools.count()
    import tritonkit.tune.search as tune

    real = tune.time.monotonic
    tune.time.monotonic = lambda: float(next(ticks))  # type: ignore[assignment]
    try:
        search(DEFAULT, measure, LENGTHS, 64, budget_s=12, trial_cost_s=3)
    finally:
        tune.time.monotonic = real  # type: ignore[assignment]
    assert len(calls) < 5


def test_read_apply_write_round_trip(cls_repo: Path) -> None:
    plan = plan_from_repository(cls_repo, "cls")
    default = read_settings(plan)
    assert default == Settings(2, 1, 1, False, 32, 500, ())  # the defaults for 2 target cores
    tuned = Settings(2, 1, 2, True, 16, 1000, (8, 16, 64))
    write_settings(cls_repo, plan, tuned)
    assert validate_repository(cls_repo) == []
    assert read_settings(plan_from_repository(cls_repo)) == tuned
    tokenizer = read_config(cls_repo / "cls_tokenizer" / "config.pbtxt")
    assert tokenizer.parameters["buckets"].string_value == "8,16,64"
    assert read_config(cls_repo / "cls" / "config.pbtxt").max_batch_size == 16
    # re-rendered through the templates: the generated header and descriptions are kept
    text = (cls_repo / "cls_onnx" / "config.pbtxt").read_text()
    assert text.startswith("# text-classification model exported from")
    assert json.loads((cls_repo / "tritonkit.json").read_text())["buckets"] == [8, 16, 64]
    off = replace(tuned, batching=False, buckets=())
    applied = apply_settings(plan_from_repository(cls_repo), off)
    assert applied.model("cls_onnx").dynamic_batching is None
    assert applied.model("cls_tokenizer").dynamic_batching == DynamicBatching(0)  # its own
    assert (cls_repo / "cls_onnx" / "1" / "model.onnx").is_file()
    assert sorted(p.name for p in cls_repo.parent.iterdir()) == ["repo"]
