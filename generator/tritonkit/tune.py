"""`tritonkit tune`: sweep serving settings on a real local tritonserver, keep what measured best.

Each trial reloads the changed configs through the repository API (explicit model control),
runs a short Locust load at a fixed concurrency on the user's corpus, and records throughput,
p95, errors and the executed batch size. The search is coordinate descent: parallelism
(instances x ONNX Runtime threads, tokenizer instances), then batching with length buckets
derived from the corpus, then the batcher's queue delay and max batch size. Before anything
is written, the default and the best are measured again side by side; the best is kept only if
it still beats the default there. A setting that measured worse than the default is never
written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from tritonkit.buckets import optimal_buckets, padding_stats, token_lengths
from tritonkit.errors import RepositoryError, TritonkitError
from tritonkit.pbtxt import read_config
from tritonkit.validate import validate_repository

TRIAL_OVERHEAD_S = 4.0  # reload + Locust start-up, measured ~2-4 s on 2 cores
MIN_GAIN = 0.03  # the best must beat the default by 3 % in the confirmation round
BUCKET_COUNTS = (3, 4, 6)
QUEUE_DELAYS_US = (0, 200, 1000, 3000)
MAX_BATCH_SIZES = (8, 16, 32)


class TuneError(TritonkitError):
    """Tuning cannot run as asked (budget, repository, server)."""


@dataclass(frozen=True)
class Settings:
    model_instances: int
    threads: int  # ONNX Runtime intra-op threads per model instance (0: ORT's default)
    tokenizer_instances: int
    batching: bool
    max_batch_size: int
    max_queue_delay_us: int
    buckets: tuple[int, ...]  # () pads each request to its own length

    def describe(self) -> str:
        batching = (
            f"batching on (delay {self.max_queue_delay_us} us, max {self.max_batch_size}), "
            f"buckets {','.join(map(str, self.buckets)) or 'none'}"
            if self.batching
            else "batching off"
        )
        return (
            f"{self.model_instances} model x {self.threads or 'default'} threads, "
            f"{self.tokenizer_instances} tokenizer, {batching}"
        )


@dataclass(frozen=True)
class Trial:
    settings: Settings
    stage: str
    texts_per_s: float
    p95_ms: float | None
    error_rate: float
    model_batch: float | None  # average executed batch size of the ONNX model
    padding: float  # padded tokens per real token on the corpus

    def feasible(self, p95_bound_ms: float | None) -> bool:
        if self.error_rate > 0 or self.p95_ms is None:
            return False
        return p95_bound_ms is None or self.p95_ms <= p95_bound_ms


@dataclass
class TuneResult:
    default: Settings
    chosen: Settings
    trials: list[Trial] = field(default_factory=list)
    confirmation: dict[str, float] = field(default_factory=dict)  # label -> texts/s
    written: bool = False

    @property
    def improved(self) -> bool:
        return self.chosen != self.default


Measure = Callable[[Settings, str], Trial]


def read_settings(repo: Path, name: str) -> Settings:
    onnx = read_config(repo / f"{name}_onnx" / "config.pbtxt")
    tokenizer = read_config(repo / f"{name}_tokenizer" / "config.pbtxt")
    threads = onnx.parameters["intra_op_thread_count"].string_value or "0"
    buckets = tokenizer.parameters["buckets"].string_value
    return Settings(
        model_instances=sum(g.count or 1 for g in onnx.instance_group) or 1,
        threads=int(threads),
        tokenizer_instances=sum(g.count or 1 for g in tokenizer.instance_group) or 1,
        batching=onnx.HasField("dynamic_batching"),
        max_batch_size=onnx.max_batch_size,
        max_queue_delay_us=onnx.dynamic_batching.max_queue_delay_microseconds,
        buckets=tuple(int(b) for b in buckets.split(",") if b.strip()),
    )


def apply_settings(
    configs: dict[str, model_config_pb2.ModelConfig], name: str, settings: Settings
) -> dict[str, model_config_pb2.ModelConfig]:
    """New configs for the ensemble, the tokenizer and the ONNX model."""
    out = {key: _copy(config) for key, config in configs.items()}
    onnx, tokenizer, ensemble = out[f"{name}_onnx"], out[f"{name}_tokenizer"], out[name]
    for config in (onnx, tokenizer, ensemble):
        config.max_batch_size = settings.max_batch_size
    _set_instances(onnx, settings.model_instances)
    _set_instances(tokenizer, settings.tokenizer_instances)
    if settings.threads:
        onnx.parameters["intra_op_thread_count"].string_value = str(settings.threads)
    else:
        onnx.parameters.pop("intra_op_thread_count", None)
    for config in (onnx, tokenizer):
        config.ClearField("dynamic_batching")
        if settings.batching:
            config.dynamic_batching.max_queue_delay_microseconds = settings.max_queue_delay_us
    tokenizer.parameters["buckets"].string_value = ",".join(map(str, settings.buckets))
    return out


def _copy(config: model_config_pb2.ModelConfig) -> model_config_pb2.ModelConfig:
    clone = model_config_pb2.ModelConfig()
    clone.CopyFrom(config)
    return clone


def _set_instances(config: model_config_pb2.ModelConfig, count: int) -> None:
    kind = config.instance_group[0].kind if config.instance_group else 0
    del config.instance_group[:]
    group = config.instance_group.add()
    group.count = count
    group.kind = kind


def config_json(config: model_config_pb2.ModelConfig) -> str:
    """A config override for the repository API; max_batch_size is always written."""
    data = json_format.MessageToDict(config, preserving_proto_field_name=True)
    data["max_batch_size"] = config.max_batch_size
    import json

    return json.dumps(data)


def candidates(
    best: Settings, stage: str, lengths: Sequence[int], max_length: int
) -> Iterator[Settings]:
    """The settings one stage of the coordinate descent tries, around the best so far."""
    if stage == "parallelism":
        for instances, threads in ((1, 2), (2, 1), (1, 1), (2, 2)):
            yield replace(best, model_instances=instances, threads=threads)
        yield replace(best, tokenizer_instances=2 if best.tokenizer_instances == 1 else 1)
    elif stage == "batching":
        import numpy as np

        array = np.asarray(lengths)
        yield replace(best, batching=False, buckets=())
        yield replace(best, batching=True, buckets=())
        for count in BUCKET_COUNTS:
            yield replace(best, batching=True, buckets=optimal_buckets(array, count, max_length))
    elif stage == "queue" and best.batching:
        for delay in QUEUE_DELAYS_US:
            yield replace(best, max_queue_delay_us=delay)
    elif stage == "max-batch" and best.batching:
        for size in MAX_BATCH_SIZES:
            yield replace(best, max_batch_size=size)


STAGES = ("parallelism", "batching", "queue", "max-batch")


def _better(a: Trial, b: Trial | None, p95_bound_ms: float | None) -> bool:
    if not a.feasible(p95_bound_ms):
        return False
    return b is None or a.texts_per_s > b.texts_per_s


def check_budget(budget_s: float, trial_cost_s: float) -> None:
    needed = 3 * trial_cost_s  # default, one candidate, and the confirmation round
    if budget_s < needed:
        raise TuneError(
            f"--budget {budget_s:.0f}s is too short for one trial: each takes about "
            f"{trial_cost_s:.0f}s and tuning needs at least {needed:.0f}s; raise --budget"
        )


def search(
    default: Settings,
    measure: Measure,
    lengths: Sequence[int],
    max_length: int,
    budget_s: float,
    trial_cost_s: float,
    p95_bound_ms: float | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> TuneResult:
    """Coordinate descent within the budget, then a side-by-side confirmation."""
    check_budget(budget_s, trial_cost_s)
    deadline = time.monotonic() + budget_s - 2 * trial_cost_s  # keep time to confirm
    result = TuneResult(default=default, chosen=default)
    baseline = measure(default, "default")
    result.trials.append(baseline)
    best = baseline
    tried = {default}
    for stage in STAGES:
        for settings in candidates(best.settings, stage, lengths, max_length):
            if settings in tried:
                continue
            if time.monotonic() + trial_cost_s > deadline:
                progress("budget reached: stopping the sweep")
                return _confirm(result, best, baseline, measure, p95_bound_ms)
            tried.add(settings)
            trial = measure(settings, stage)
            result.trials.append(trial)
            progress(f"{stage}: {trial.texts_per_s:.1f} texts/s  {settings.describe()}")
            if _better(trial, best, p95_bound_ms):
                best = trial
    return _confirm(result, best, baseline, measure, p95_bound_ms)


def _confirm(
    result: TuneResult,
    best: Trial,
    baseline: Trial,
    measure: Measure,
    p95_bound_ms: float | None,
) -> TuneResult:
    """Measure default and best again, back to back; keep the best only if it still wins."""
    if best.settings == baseline.settings:
        return result
    again_best = measure(best.settings, "confirm best")
    again_default = measure(baseline.settings, "confirm default")
    result.trials += [again_best, again_default]
    result.confirmation = {
        "default": again_default.texts_per_s,
        "best": again_best.texts_per_s,
    }
    wins = again_best.feasible(p95_bound_ms) and again_best.texts_per_s > (
        again_default.texts_per_s * (1 + MIN_GAIN)
    )
    if wins:
        result.chosen = best.settings
    return result


def corpus_lengths(repo: Path, name: str, texts: Sequence[str]) -> tuple[list[int], int]:
    tokenizer = read_config(repo / f"{name}_tokenizer" / "config.pbtxt")
    max_length = int(tokenizer.parameters["max_length"].string_value or "512")
    tokenizer_file = repo / f"{name}_tokenizer" / "1" / "tokenizer.json"
    return token_lengths(tokenizer_file, texts, max_length).tolist(), max_length


def padding_of(settings: Settings, lengths: Sequence[int], max_length: int) -> float:
    import numpy as np

    return padding_stats(np.asarray(lengths), settings.buckets, max_length).overhead


def write_settings(repo: Path, name: str, settings: Settings) -> None:
    """Write the chosen settings into the repository: staged copy, validated, then swapped."""
    import shutil

    from tritonkit.repository import commit, staging_dir

    models = (name, f"{name}_tokenizer", f"{name}_onnx")
    configs = {model: read_config(repo / model / "config.pbtxt") for model in models}
    updated = apply_settings(configs, name, settings)
    with staging_dir(repo) as staged:
        shutil.copytree(repo, staged, dirs_exist_ok=True)
        for model, config in updated.items():
            header = "# Tuned by tritonkit tune; validated against Triton's ModelConfig protobuf.\n"
            (staged / model / "config.pbtxt").write_text(
                header + text_format.MessageToString(config), encoding="utf-8"
            )
        problems = validate_repository(staged)
        if problems:
            raise RepositoryError("tuned repository failed validation:\n" + "\n".join(problems))
        commit(staged, repo, force=True)
