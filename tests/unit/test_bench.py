"""The benchmark: its inputs, its arithmetic, one short real run and its three outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tritonkit.bench import report as bench_report
from tritonkit.bench.run import (
    PYTORCH,
    BenchConfig,
    BenchResult,
    Measurement,
    fixed_feeds,
    flops_per_sequence,
    real_feeds,
    run_bench,
    speed_score,
    speedups,
)
from tritonkit.errors import OptimizeError
from tritonkit.model.inspect import inspect_model_dir
from tritonkit.model.runners import load_tokenizer
from tritonkit.spec import OptimizeSpec
from tritonkit.util.cpu import cpu_info
from tritonkit.variants.build import Variant, build_variants

TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "hello world",
    "paris and london are cities with a river",
    "good",
    "the model serves text with triton on cpu and gpu",
]


def test_fixed_feeds_are_exactly_the_length_with_no_padding(
    tiny_model_dirs: dict[str, Path],
) -> None:
    info = inspect_model_dir(tiny_model_dirs["feature-extraction"], "feature-extraction")
    tokenizer = load_tokenizer(info.model_dir)
    feeds = fixed_feeds(tokenizer, info, TEXTS, 24, 3)
    assert feeds["input_ids"].shape == (3, 24)
    assert feeds["attention_mask"].all()
    assert len({tuple(row) for row in feeds["input_ids"]}) == 3  # rows start at other texts
    with pytest.raises(OptimizeError, match=r"give fewer than 64 tokens"):
        fixed_feeds(tokenizer, info, ["short"], 64, 1)


def test_real_feeds_pad_each_batch_to_its_longest(tiny_model_dirs: dict[str, Path]) -> None:
    info = inspect_model_dir(tiny_model_dirs["feature-extraction"], "feature-extraction")
    batches = real_feeds(load_tokenizer(info.model_dir), info, TEXTS, 64, 2)
    assert len(batches) == 2
    for feeds in batches:
        lengths = feeds["attention_mask"].sum(axis=1)
        assert feeds["input_ids"].shape[1] == lengths.max()
        assert lengths.min() < lengths.max() or len(set(lengths)) == 1


def test_flops_of_minilm_at_128_tokens(minilm_dir: Path) -> None:
    info = inspect_model_dir(minilm_dir, "feature-extraction")
    assert flops_per_sequence(info, 128) == pytest.approx(2.869e9, rel=1e-3)


def _synthetic() -> BenchResult:
    config = BenchConfig(batch_sizes=(1,), modes=("fixed",), measure_rss=False)
    measurements = [
        Measurement(PYTORCH, "fixed", 128, 1, [20.0, 20.0, 22.0]),
        Measurement("int8-dynamic", "fixed", 128, 1, [5.0, 5.0, 5.5]),
    ]
    sizes = {PYTORCH: 90 * 2**20, "int8-dynamic": 56 * 2**20}
    return BenchResult(config, measurements, sizes, {}, {128: 2.87e9})


def test_speedups_and_score() -> None:
    result = _synthetic()
    ratio = speedups(result)
    assert ratio[("int8-dynamic", "fixed", 128, 1)] == pytest.approx(62 / 15.5)
    assert speed_score(result) == {PYTORCH: 1.0, "int8-dynamic": pytest.approx(4.0)}
    assert result.measurements[0].percentile(50) == 20.0
    assert result.measurements[1].throughput == pytest.approx(3000 / 15.5)


@pytest.fixture(scope="module")
def tiny_run(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs: dict[str, Path]
) -> tuple[BenchResult, list[Variant], Path]:
    model = tiny_model_dirs["feature-extraction"]
    root = tmp_path_factory.mktemp("bench")
    texts_file = root / "texts.txt"
    texts_file.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    options = OptimizeSpec(
        variants=("fp32", "int8-dynamic"), eval_file=texts_file, calibration_file=texts_file
    )
    variants = build_variants(model, "feature-extraction", root / "variants", options)
    config = BenchConfig(
        sequence_lengths=(16,),
        batch_sizes=(1, 4),
        threads=1,
        rounds=2,
        round_seconds=0.01,
        warmup=1,
        measure_rss=True,
    )
    info = inspect_model_dir(model, "feature-extraction")
    result = run_bench(info, variants, TEXTS, config)
    return result, variants, root


def test_run_measures_every_runner_in_every_case(
    tiny_run: tuple[BenchResult, list[Variant], Path],
) -> None:
    result, _, _ = tiny_run
    cases = {(m.mode, m.sequence_length, m.batch_size) for m in result.measurements}
    assert cases == {(mode, 16, b) for mode in ("fixed", "real") for b in (1, 4)}
    assert {m.runner for m in result.measurements} == {PYTORCH, "fp32", "int8-dynamic"}
    for m in result.measurements:
        assert len(m.latencies_ms) >= 2 * 2  # rounds x min_iterations
        assert all(x > 0 for x in m.latencies_ms)
        if m.mode == "fixed":
            assert m.tokens_per_batch == 16 * m.batch_size
    # peak RSS from a fresh process per runner: PyTorch's includes torch itself
    assert set(result.rss_mb) == {PYTORCH, "fp32", "int8-dynamic"}
    assert result.rss_mb[PYTORCH] > result.rss_mb["fp32"] > 10


def test_report_writes_markdown_json_and_png(
    tiny_run: tuple[BenchResult, list[Variant], Path],
) -> None:
    result, variants, root = tiny_run
    paths = bench_report.write(result, variants, cpu_info(), root / "out", "tiny", "int8-dynamic")
    table = paths["markdown"].read_text(encoding="utf-8").splitlines()
    assert table[0] == bench_report.HEADER
    assert len(table) == 2 + 12  # 2 modes x 2 batches x 3 runners
    assert any("| int8-dynamic |" in row and "| pass |" in row for row in table)
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert data["chosen"] == "int8-dynamic"
    assert {row["variant"] for row in data["rows"]} == {PYTORCH, "fp32", "int8-dynamic"}
    assert data["cpu"]["cores"] >= 1
    assert data["accuracy"]["int8-dynamic"]["passed"] is True
    first = data["rows"][0]
    assert first["speedup_vs_pytorch"] == 1.0 and first["threads"] == 1
    assert np.isfinite(first["gflop_s"])
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
