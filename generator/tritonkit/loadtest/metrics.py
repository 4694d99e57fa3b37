"""Server-side measurements: Triton's statistics API and `/metrics`, before and after a run.

Both sources hold cumulative per-model counters; a run's breakdown is the difference of two
snapshots. Durations are totals over successful requests, so averages are per request; the
average executed batch size is inferences (batch items) per model execution.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

Metrics = dict[str, dict[str, float]]
_SAMPLE = re.compile(r"^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$")
_MODEL_LABEL = re.compile(r'(?:^|,)\s*model="((?:[^"\\]|\\.)*)"')
# /metrics counter -> ModelCounters field (durations are already in microseconds)
_METRIC_FIELDS = {
    "nv_inference_request_success": "success",
    "nv_inference_request_failure": "failure",
    "nv_inference_count": "inferences",
    "nv_inference_exec_count": "executions",
    "nv_inference_request_duration_us": "request_us",
    "nv_inference_queue_duration_us": "queue_us",
    "nv_inference_compute_input_duration_us": "compute_input_us",
    "nv_inference_compute_infer_duration_us": "compute_infer_us",
    "nv_inference_compute_output_duration_us": "compute_output_us",
}
# statistics API inference_stats entry -> ModelCounters field (durations in nanoseconds)
_STAT_FIELDS = {
    "success": "request_us",
    "queue": "queue_us",
    "compute_input": "compute_input_us",
    "compute_infer": "compute_infer_us",
    "compute_output": "compute_output_us",
}


@dataclass(frozen=True)
class ModelCounters:
    """Cumulative counters of one model (all versions), as one snapshot reports them."""

    success: float = 0.0
    failure: float = 0.0
    inferences: float = 0.0  # batch items
    executions: float = 0.0
    request_us: float = 0.0
    queue_us: float = 0.0
    compute_input_us: float = 0.0
    compute_infer_us: float = 0.0
    compute_output_us: float = 0.0

    def _combine(self, other: ModelCounters, sign: float) -> ModelCounters:
        values = {
            f.name: getattr(self, f.name) + sign * getattr(other, f.name) for f in fields(self)
        }
        return ModelCounters(**values)

    def __add__(self, other: ModelCounters) -> ModelCounters:
        return self._combine(other, 1.0)

    def __sub__(self, other: ModelCounters) -> ModelCounters:
        return self._combine(other, -1.0)


Snapshot = dict[str, ModelCounters]


@dataclass(frozen=True)
class ModelBreakdown:
    """Where a model's time went during one run (averages per successful request, in µs)."""

    model: str
    requests: int
    failures: int
    inferences: int
    executions: int
    avg_batch_size: float | None
    avg_request_us: float | None
    avg_queue_us: float | None
    avg_compute_input_us: float | None
    avg_compute_infer_us: float | None
    avg_compute_output_us: float | None


def parse_metrics(text: str) -> Metrics:
    """Prometheus text -> {metric: {model: value}}, summed over other labels (version, reason).

    Samples without a `model` label are kept under the model "".
    """
    metrics: Metrics = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if match is None or line.startswith("#"):
            continue
        name, labels, raw = match.groups()
        try:
            value = float(raw)
        except ValueError:
            continue
        model = _MODEL_LABEL.search(labels or "")
        key = model.group(1) if model else ""
        per_model = metrics.setdefault(name, {})
        per_model[key] = per_model.get(key, 0.0) + value
    return metrics


def scrape_metrics(url: str, timeout: float = 5.0) -> Metrics:
    """GET http://HOST:PORT/metrics, parsed; OSError when it cannot be read."""
    with urllib.request.urlopen(f"http://{url}/metrics", timeout=timeout) as response:
        return parse_metrics(response.read().decode("utf-8", errors="replace"))


def counters_from_metrics(metrics: Mapping[str, Mapping[str, float]]) -> Snapshot:
    snapshot: dict[str, dict[str, float]] = {}
    for metric, field in _METRIC_FIELDS.items():
        for model, value in metrics.get(metric, {}).items():
            if model:
                snapshot.setdefault(model, {})[field] = value
    return {model: ModelCounters(**values) for model, values in snapshot.items()}


def counters_from_statistics(statistics: Mapping[str, Any]) -> Snapshot:
    """The JSON of GET /v2/models/stats (tritonclient `get_inference_statistics()`)."""
    snapshot: Snapshot = {}
    for entry in statistics.get("model_stats", []):
        stats = entry.get("inference_stats", {})
        values = {
            field: float(stats.get(key, {}).get("ns", 0)) / 1e3
            for key, field in _STAT_FIELDS.items()
        }
        counters = ModelCounters(
            success=float(stats.get("success", {}).get("count", 0)),
            failure=float(stats.get("fail", {}).get("count", 0)),
            inferences=float(entry.get("inference_count", 0)),
            executions=float(entry.get("execution_count", 0)),
            **values,
        )
        name = str(entry["name"])
        snapshot[name] = snapshot.get(name, ModelCounters()) + counters
    return snapshot


def _per(total: float, count: float) -> float | None:
    return total / count if count > 0 else None


def breakdown(
    before: Mapping[str, ModelCounters], after: Mapping[str, ModelCounters], models: Sequence[str]
) -> tuple[ModelBreakdown, ...]:
    """Per model in `models`: the run's counts and average times (after - before)."""
    rows = []
    for model in models:
        delta = after.get(model, ModelCounters()) - before.get(model, ModelCounters())
        rows.append(
            ModelBreakdown(
                model=model,
                requests=round(delta.success),
                failures=round(delta.failure),
                inferences=round(delta.inferences),
                executions=round(delta.executions),
                avg_batch_size=_per(delta.inferences, delta.executions),
                avg_request_us=_per(delta.request_us, delta.success),
                avg_queue_us=_per(delta.queue_us, delta.success),
                avg_compute_input_us=_per(delta.compute_input_us, delta.success),
                avg_compute_infer_us=_per(delta.compute_infer_us, delta.success),
                avg_compute_output_us=_per(delta.compute_output_us, delta.success),
            )
        )
    return tuple(rows)


@dataclass(frozen=True)
class Latency:
    """Client-side latency percentiles of successful requests, in milliseconds."""

    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    max_ms: float | None


def latency(samples_ms: Sequence[float] | np.ndarray) -> Latency:
    """Exact percentiles (linear interpolation) of every sample; all None without samples."""
    values = np.asarray(samples_ms, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return Latency(None, None, None, None, None)
    p50, p95, p99 = (float(v) for v in np.percentile(values, [50, 95, 99]))
    return Latency(p50, p95, p99, float(values.mean()), float(values.max()))
