"""Server counters from Triton's statistics API and /metrics; the per-model breakdown; latency.

The samples are trimmed from a real Triton 2.51 answering both at the same moment.
"""

from __future__ import annotations

import numpy as np
import pytest

from tritonkit.loadtest.metrics import (
    ModelCounters,
    breakdown,
    counters_from_metrics,
    counters_from_statistics,
    latency,
    parse_metrics,
)

METRICS = """\
# HELP nv_inference_count Number of inferences performed (does not include cached requests)
# TYPE nv_inference_count counter
nv_inference_request_success{model="minilm_onnx",version="1"} 3473
nv_inference_request_failure{model="minilm_onnx",reason="OTHER",version="1"} 1
nv_inference_request_failure{model="minilm_onnx",reason="BACKEND",version="1"} 2
nv_inference_count{model="minilm_onnx",version="1"} 3474
nv_inference_exec_count{model="minilm_onnx",version="1"} 2793
nv_inference_request_duration_us{model="minilm_onnx",version="1"} 109169530
nv_inference_queue_duration_us{model="minilm_onnx",version="1"} 66944694
nv_inference_compute_input_duration_us{model="minilm_onnx",version="1"} 133106
nv_inference_compute_infer_duration_us{model="minilm_onnx",version="1"} 39934935
nv_inference_compute_output_duration_us{model="minilm_onnx",version="1"} 2147777
nv_inference_count{model="minilm_tokenizer",version="1"} 3474
nv_inference_count{model="minilm_tokenizer",version="2"} 6
nv_cpu_utilization 0.75
"""

STATISTICS = {
    "model_stats": [
        {
            "name": "minilm_onnx",
            "version": "1",
            "inference_count": 3474,
            "execution_count": 2793,
            "inference_stats": {
                "success": {"count": 3473, "ns": 109169530753},
                "fail": {"count": 3, "ns": 0},
                "queue": {"count": 3473, "ns": 66944694247},
                "compute_input": {"count": 3473, "ns": 133106248},
                "compute_infer": {"count": 3473, "ns": 39934935684},
                "compute_output": {"count": 3473, "ns": 2147777865},
                "cache_hit": {"count": 0, "ns": 0},
            },
        },
        {"name": "minilm_tokenizer", "version": "1", "inference_count": 3474},
        {"name": "minilm_tokenizer", "version": "2", "inference_count": 6},
    ]
}


def test_parse_metrics_sums_labels_per_model() -> None:
    metrics = parse_metrics(METRICS)
    assert metrics["nv_inference_request_failure"] == {"minilm_onnx": 3.0}
    assert metrics["nv_inference_count"] == {"minilm_onnx": 3474.0, "minilm_tokenizer": 3480.0}
    assert metrics["nv_cpu_utilization"] == {"": 0.75}
    assert "# HELP" not in str(metrics)


def test_both_sources_give_the_same_counters() -> None:
    from_metrics = counters_from_metrics(parse_metrics(METRICS))
    from_statistics = counters_from_statistics(STATISTICS)
    assert set(from_metrics) == set(from_statistics) == {"minilm_onnx", "minilm_tokenizer"}
    for field in ("success", "failure", "inferences", "executions"):
        assert getattr(from_metrics["minilm_onnx"], field) == getattr(
            from_statistics["minilm_onnx"], field
        )
    assert from_statistics["minilm_onnx"].queue_us == pytest.approx(66944694.247)
    assert from_metrics["minilm_onnx"].queue_us == pytest.approx(66944694.247, abs=1)
    assert from_statistics["minilm_tokenizer"].inferences == 3480


def test_breakdown_is_the_difference_of_two_snapshots() -> None:
    before = {"onnx": ModelCounters(success=10, inferences=10, executions=10, queue_us=1000)}
    after = {
        "onnx": ModelCounters(
            success=110,
            failure=2,
            inferences=410,
            executions=110,
            request_us=101_000,
            queue_us=21_000,
            compute_input_us=1_000,
            compute_infer_us=70_000,
            compute_output_us=3_000,
        )
    }
    ensemble, onnx, missing = breakdown(before, after, ["ens", "onnx", "gone"])
    assert (onnx.requests, onnx.failures, onnx.inferences, onnx.executions) == (100, 2, 400, 100)
    assert onnx.avg_batch_size == 4.0
    assert onnx.avg_queue_us == 200.0
    assert onnx.avg_request_us == 1010.0
    assert (onnx.avg_compute_input_us, onnx.avg_compute_infer_us) == (10.0, 700.0)
    assert onnx.avg_compute_output_us == 30.0
    for row in (ensemble, missing):
        assert row.requests == 0
        assert row.avg_batch_size is None and row.avg_queue_us is None


def test_latency_percentiles_are_exact() -> None:
    samples = np.arange(1, 1001, dtype=np.float64)  # 1 .. 1000 ms
    stats = latency(np.append(samples, np.nan))
    assert stats.p50_ms == pytest.approx(500.5)
    assert stats.p95_ms == pytest.approx(950.05)
    assert stats.p99_ms == pytest.approx(990.01)
    assert stats.mean_ms == pytest.approx(500.5)
    assert stats.max_ms == 1000.0
    empty = latency([])
    assert empty.p95_ms is None and empty.max_ms is None
    assert latency([3.0]).p99_ms == 3.0
