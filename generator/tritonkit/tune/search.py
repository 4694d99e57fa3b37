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

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from google.protobuf import json_format

from tritonkit.errors import TritonkitError
from tritonkit.repository.backends.onnx import THREADS
from tritonkit.repository.buckets import optimal_buckets, padding_stats, token_lengths
from tritonkit.repository.contract import RECORD_FILE, Deployment, ModelKind
from tritonkit.repository.pbtxt import (
    DynamicBatching,
    EnsemblePlan,
    ModelPlan,
    parse_config,
    render_config,
)
from tritonkit.repository.plan import FileEntry, RepositoryPlan
from tritonkit.repository.writer import write_repository
from tritonkit.util.cpu import cpu_info

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
    tokenizer_queue_delay_us: int | None = 0  # the tokenizer's batcher (None: off); not swept

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


def read_settings(plan: RepositoryPlan) -> Settings:
    """The serving settings a deployment's plan has now."""
    deployment = plan.deployment
    model = plan.model(deployment.model)
    tokenizer = plan.model(deployment.tokenizer_model)
    batching = model.dynamic_batching
    tokenizer_batching = tokenizer.dynamic_batching
    return Settings(
        model_instances=model.instance_count,
        threads=int(model.parameters.get(THREADS, "0") or "0"),
        tokenizer_instances=tokenizer.instance_count,
        batching=batching is not None,
        max_batch_size=model.max_batch_size,
        max_queue_delay_us=batching.max_queue_delay_us if batching else 500,
        buckets=deployment.tokenizer.buckets,
        tokenizer_queue_delay_us=(
            tokenizer_batching.max_queue_delay_us if tokenizer_batching else None
        ),
    )


def apply_settings(plan: RepositoryPlan, settings: Settings) -> RepositoryPlan:
    """The plan with `settings`: the ensemble, the tokenizer and the model change together."""
    deployment = plan.deployment
    batching = DynamicBatching(settings.max_queue_delay_us) if settings.batching else None
    tokenizer_delay = settings.tokenizer_queue_delay_us
    tokenizer_batching = DynamicBatching(tokenizer_delay) if tokenizer_delay is not None else None
    model = plan.model(deployment.model)
    parameters = {k: v for k, v in model.parameters.items() if k != THREADS}
    if settings.threads:
        parameters[THREADS] = str(settings.threads)
    params = replace(deployment.tokenizer, buckets=settings.buckets)
    tokenizer = plan.model(deployment.tokenizer_model)
    updated = plan.replace_models(
        replace(model, instance_count=settings.model_instances, parameters=parameters,
                dynamic_batching=batching, max_batch_size=settings.max_batch_size),
        replace(tokenizer, instance_count=settings.tokenizer_instances,
                parameters=params.to_parameters(), dynamic_batching=tokenizer_batching,
                max_batch_size=settings.max_batch_size),
    )  # fmt: skip
    ensemble = replace(plan.ensemble, max_batch_size=settings.max_batch_size)
    return replace(updated, deployment=replace(deployment, tokenizer=params), ensemble=ensemble)


def config_json(model: ModelPlan | EnsemblePlan) -> str:
    """A config override for the repository API, rendered through the templates."""
    config = parse_config(render_config(model), f"{model.name}/config.pbtxt")
    data = json_format.MessageToDict(config, preserving_proto_field_name=True)
    data["max_batch_size"] = config.max_batch_size  # proto3 drops 0: keep it explicit
    return json.dumps(data)


def parallel_layouts(cores: int) -> list[tuple[int, int]]:
    """(model instances, ONNX Runtime threads each) tried on a machine with `cores` cores.

    Every split of the cores into instances x threads (one instance per core, the layout
    `generate` chooses, among them), then half the cores with one thread each (room for the
    tokenizer and the front-end) and every core twice over (two threads per instance). On 2
    cores: 1x2, 2x1, 1x1, 2x2."""
    cores = max(1, cores)
    layouts = [(n, cores // n) for n in range(1, cores + 1) if cores % n == 0]
    layouts += [(max(1, cores // 2), 1), (cores, 2)]
    return list(dict.fromkeys(layouts))


def tokenizer_counts(cores: int, current: int) -> list[int]:
    """Tokenizer instances tried: 1 and 2, and on larger machines a quarter and half the cores."""
    counts = [1, 2, max(1, cores // 4), max(1, cores // 2)]
    return [n for n in dict.fromkeys(counts) if n != current]


def candidates(
    best: Settings,
    stage: str,
    lengths: Sequence[int],
    max_length: int,
    kind: ModelKind = "onnx",
    cores: int = 2,
) -> Iterator[Settings]:
    """The settings one stage of the coordinate descent tries, around the best so far.

    `cores`: the cores of the machine the trials run on (the layouts are derived from them).
    A TensorRT plan has no ONNX Runtime threads, and its profiles were built for its buckets:
    for it, only instances, batching, queue delay and max batch are tried."""
    if stage == "parallelism":
        if kind == "onnx":
            for instances, threads in parallel_layouts(cores):
                yield replace(best, model_instances=instances, threads=threads)
        else:
            for instances in (1, 2):
                yield replace(best, model_instances=instances)
        for count in tokenizer_counts(cores, best.tokenizer_instances):
            yield replace(best, tokenizer_instances=count)
    elif stage == "batching":
        import numpy as np

        array = np.asarray(lengths)
        if kind == "tensorrt":
            yield replace(best, batching=not best.batching)
        else:
            yield replace(best, batching=False, buckets=())
            yield replace(best, batching=True, buckets=())
            for count in BUCKET_COUNTS:
                buckets = optimal_buckets(array, count, max_length)
                yield replace(best, batching=True, buckets=buckets)
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
    kind: ModelKind = "onnx",
    cores: int | None = None,
) -> TuneResult:
    """Coordinate descent within the budget, then a side-by-side confirmation.

    `cores`: the cores the trials run on; by default this machine's usable CPUs."""
    check_budget(budget_s, trial_cost_s)
    cores = cpu_info().cores if cores is None else cores
    deadline = time.monotonic() + budget_s - 2 * trial_cost_s  # keep time to confirm
    result = TuneResult(default=default, chosen=default)
    baseline = measure(default, "default")
    result.trials.append(baseline)
    best = baseline
    tried = {default}
    for stage in STAGES:
        for settings in candidates(best.settings, stage, lengths, max_length, kind, cores):
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


def corpus_lengths(
    repo: Path, deployment: Deployment, texts: Sequence[str]
) -> tuple[list[int], int]:
    max_length = deployment.tokenizer.max_length
    lengths = token_lengths(deployment.tokenizer_file(repo), texts, max_length)
    return lengths.tolist(), max_length


def padding_of(settings: Settings, lengths: Sequence[int], max_length: int) -> float:
    import numpy as np

    return padding_stats(np.asarray(lengths), settings.buckets, max_length).overhead


def write_settings(repo: Path, plan: RepositoryPlan, settings: Settings) -> None:
    """Write the chosen settings into the repository: re-rendered through the templates,
    validated, then swapped in atomically by the one writer."""
    updated = apply_settings(plan, settings)
    record_entry = next((f for f in plan.files if f.path == RECORD_FILE), None)
    if record_entry is not None and record_entry.source is not None:
        record = json.loads(record_entry.source.read_text(encoding="utf-8"))
        record["buckets"] = list(settings.buckets)
        record["tuned"] = asdict(settings)
        updated = updated.with_files(FileEntry(RECORD_FILE, content=json.dumps(record, indent=2)))
    write_repository(updated, repo, force=True)
