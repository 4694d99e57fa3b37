"""Side-by-side benchmark: PyTorch eager (what a user runs today) and every variant, one process.

Fairness rules:
- every runner gets the same feeds, the same thread count, warm-up calls first;
- rounds are interleaved (each round runs every runner, in a rotated order) so that noise from
  other processes on the machine hits all of them alike;
- two input modes: `fixed` (every sequence exactly L real tokens, no padding: the apples-to-apples
  figure) and `real` (the evaluation texts in batches padded to their own longest text, as
  tritonkit's Triton tokenizer pads each request);
- the PyTorch baseline is AutoModel* with its default attention (SDPA) under inference_mode,
  plus the same post-processing the graphs hold.
Peak RSS is measured in a fresh process per runner (load, then three runs of the largest input).
"""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tritonkit.errors import OptimizeError
from tritonkit.model.inspect import ModelInfo
from tritonkit.model.runners import OrtModel, TorchModel, encode, load_tokenizer
from tritonkit.variants.build import Variant

MODES = ("fixed", "real")
PYTORCH = "pytorch"
Feeds = dict[str, np.ndarray]


@dataclass(frozen=True)
class BenchConfig:
    sequence_lengths: tuple[int, ...] = (128,)
    batch_sizes: tuple[int, ...] = (1, 32)
    modes: tuple[str, ...] = MODES
    threads: int = 2
    rounds: int = 6
    round_seconds: float = 0.6  # per runner per round; at least min_iterations calls
    min_iterations: int = 2
    warmup: int = 3
    measure_rss: bool = True


@dataclass
class Measurement:
    runner: str
    mode: str
    sequence_length: int
    batch_size: int
    latencies_ms: list[float] = field(default_factory=list)
    tokens_per_batch: float = 0.0  # real tokens, averaged over the feeds used

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else math.nan

    @property
    def throughput(self) -> float:
        """Sequences per second over every timed call."""
        total = sum(self.latencies_ms)
        return self.batch_size * len(self.latencies_ms) * 1000 / total if total else math.nan


class BenchProgress(Protocol):
    def start(self, total: int) -> None: ...

    def advance(self, label: str) -> None: ...


class _Silent:
    def start(self, total: int) -> None:
        pass

    def advance(self, label: str) -> None:
        pass


def _torch_runner(info: ModelInfo, threads: int) -> Runner:
    """Eager PyTorch with its default attention, and the graphs' post-processing."""
    return TorchModel(info, eager=False, threads=threads)


def _ort_runner(path: Path, threads: int) -> Runner:
    return OrtModel(path, threads=threads)


Runner = Callable[[Feeds], object]


def fixed_feeds(
    tokenizer: Any, info: ModelInfo, texts: Sequence[str], length: int, batch: int
) -> Feeds:
    """`batch` rows of exactly `length` real tokens: the texts joined, each row from another one."""
    rows = [" ".join([*texts[r % len(texts) :], *texts[: r % len(texts)]]) for r in range(batch)]
    feeds = encode(tokenizer, info, rows, length)
    if feeds["input_ids"].shape[1] != length or not feeds["attention_mask"].all():
        raise OptimizeError(
            f"the benchmark texts give fewer than {length} tokens: use a longer --eval-file "
            "or a shorter --sequence-length"
        )
    return feeds


def real_feeds(
    tokenizer: Any, info: ModelInfo, texts: Sequence[str], length: int, batch: int
) -> list[Feeds]:
    """Consecutive texts, `batch` at a time, each batch padded to its own longest text."""
    count = max(len(texts) // batch, 1)
    return [
        encode(tokenizer, info, [texts[(i * batch + j) % len(texts)] for j in range(batch)], length)
        for i in range(count)
    ]


def _time(runner: Runner, feeds: Sequence[Feeds], first: int, iterations: int) -> list[float]:
    times = []
    for i in range(iterations):
        current = feeds[(first + i) % len(feeds)]
        started = time.perf_counter()
        runner(current)
        times.append((time.perf_counter() - started) * 1000)
    return times


def rss_main(argv: Sequence[str]) -> None:
    """Entry of the peak-RSS child: KIND TARGET MODEL_DIR TASK THREADS FEEDS.npz."""
    from tritonkit.model.inspect import inspect_model_dir

    kind, target, model_dir, task, threads, feeds_file = argv
    with np.load(feeds_file) as archive:
        feeds = {name: archive[name] for name in archive.files}
    runner: Runner = (
        _torch_runner(inspect_model_dir(Path(model_dir), task), int(threads))
        if kind == PYTORCH
        else _ort_runner(Path(target), int(threads))
    )
    for _ in range(3):
        runner(feeds)
    # VmHWM, not getrusage: Linux keeps ru_maxrss across fork+exec, so a child started by a
    # large parent would report the parent's peak.
    status = Path("/proc/self/status").read_text(encoding="utf-8")
    peak_kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    print(int(peak_kb) / 1024)


def peak_rss_mb(
    kind: str, target: Path | None, info: ModelInfo, threads: int, feeds: Feeds
) -> float:
    """Peak resident memory (MiB) of a fresh process that loads the runner and runs `feeds`."""
    with tempfile.TemporaryDirectory(prefix="tritonkit-rss-") as tmp:
        feeds_file = Path(tmp) / "feeds.npz"
        save: Any = np.savez  # numpy's stub reserves the keyword allow_pickle
        save(feeds_file, **feeds)
        args = [kind, str(target or ""), str(info.model_dir), info.task, str(threads)]
        code = "import sys; from tritonkit.bench.run import rss_main; rss_main(sys.argv[1:])"
        done = subprocess.run(
            [sys.executable, "-c", code, *args, str(feeds_file)],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise OptimizeError(f"peak RSS of {kind} {target or ''}: the child process failed ({tail})")
    return float(lines[-1])


def model_bytes(info: ModelInfo, variant: Variant | None) -> int:
    if variant is not None:
        return variant.onnx_path.stat().st_size
    return sum(
        p.stat().st_size
        for pattern in ("*.safetensors", "pytorch_model*.bin")
        for p in info.model_dir.glob(pattern)
    )


def flops_per_sequence(info: ModelInfo, length: int) -> float:
    """Encoder FLOPs for one sequence of `length` tokens (dense layers + attention)."""
    import json

    config = json.loads((info.model_dir / "config.json").read_text(encoding="utf-8"))
    hidden = int(config.get("hidden_size", config.get("dim", 0)))
    inner = int(config.get("intermediate_size", config.get("hidden_dim", 4 * hidden)))
    layers = int(config.get("num_hidden_layers", config.get("n_layers", 0)))
    dense = 2 * length * (4 * hidden * hidden + 2 * hidden * inner)
    attention = 4 * length * length * hidden
    return float(layers * (dense + attention))


@dataclass
class BenchResult:
    config: BenchConfig
    measurements: list[Measurement]
    sizes: dict[str, int]
    rss_mb: dict[str, float]
    flops: dict[int, float]  # per sequence, by sequence length
    seconds: float = 0.0


def run_bench(
    info: ModelInfo,
    variants: Sequence[Variant],
    texts: Sequence[str],
    config: BenchConfig,
    progress: BenchProgress | None = None,
) -> BenchResult:
    """Measure PyTorch and every CPU variant on every (mode, length, batch) of `config`."""
    started = time.perf_counter()
    tracker = progress or _Silent()
    tokenizer = load_tokenizer(info.model_dir)
    runners: dict[str, Runner] = {PYTORCH: _torch_runner(info, config.threads)}
    for variant in variants:
        runners[variant.name] = _ort_runner(variant.onnx_path, config.threads)
    cases = [
        (mode, length, batch)
        for mode in config.modes
        for length in config.sequence_lengths
        for batch in config.batch_sizes
    ]
    tracker.start(
        len(cases) * config.rounds * len(runners) + (len(runners) if config.measure_rss else 0)
    )
    measurements: list[Measurement] = []
    largest: Feeds | None = None
    for mode, length, batch in cases:
        if mode == "fixed":
            feeds = [fixed_feeds(tokenizer, info, texts, length, batch)]
            largest = (
                feeds[0]
                if largest is None or feeds[0]["input_ids"].size > largest["input_ids"].size
                else largest
            )
        else:
            feeds = real_feeds(tokenizer, info, texts, length, batch)
        tokens = float(np.mean([f["attention_mask"].sum() for f in feeds]))
        case = {
            name: Measurement(name, mode, length, batch, tokens_per_batch=tokens)
            for name in runners
        }
        iterations = {}
        for name, runner in runners.items():
            warm = _time(runner, feeds, 0, config.warmup)
            iterations[name] = max(
                config.min_iterations, math.ceil(config.round_seconds / (min(warm) / 1000))
            )
        order = list(runners)
        for round_index in range(config.rounds):
            shift = round_index % len(order)
            for name in order[shift:] + order[:shift]:
                first = round_index * iterations[name]
                case[name].latencies_ms += _time(runners[name], feeds, first, iterations[name])
                tracker.advance(f"{mode} seq {length} batch {batch}: {name}")
        measurements.extend(case.values())
    by_name = {v.name: v for v in variants}
    rss: dict[str, float] = {}
    if config.measure_rss and largest is not None:
        for name in runners:
            path = by_name[name].onnx_path if name in by_name else None
            kind = "onnx" if path is not None else PYTORCH
            rss[name] = peak_rss_mb(kind, path, info, config.threads, largest)
            tracker.advance(f"peak RSS: {name}")
    sizes = {PYTORCH: model_bytes(info, None)} | {v.name: model_bytes(info, v) for v in variants}
    flops = {length: flops_per_sequence(info, length) for length in config.sequence_lengths}
    return BenchResult(config, measurements, sizes, rss, flops, time.perf_counter() - started)


def speedups(result: BenchResult) -> dict[tuple[str, str, int, int], float]:
    """Throughput of each runner over PyTorch's, per (runner, mode, length, batch)."""
    base = {
        (m.mode, m.sequence_length, m.batch_size): m.throughput
        for m in result.measurements
        if m.runner == PYTORCH
    }
    return {
        (m.runner, m.mode, m.sequence_length, m.batch_size): m.throughput
        / base[(m.mode, m.sequence_length, m.batch_size)]
        for m in result.measurements
    }


def speed_score(result: BenchResult) -> dict[str, float]:
    """Geometric mean speed-up over PyTorch across every measured case, per runner."""
    by_runner: dict[str, list[float]] = {}
    for (runner, *_), value in speedups(result).items():
        by_runner.setdefault(runner, []).append(value)
    return {name: float(np.exp(np.mean(np.log(values)))) for name, values in by_runner.items()}
