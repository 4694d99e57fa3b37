"""The local onnxruntime backend outside Triton: pb_utils replaced by small fakes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from tests.fixtures.tiny_onnx import build_tiny_onnx, expected
from tritonkit.runtime import onnxruntime_backend as backend


@dataclass
class FakeTensor:
    name: str
    array: np.ndarray

    def as_numpy(self) -> np.ndarray:
        return self.array


@dataclass
class FakeRequest:
    tensors: dict[str, np.ndarray]
    requested: list[str] = field(default_factory=list)

    def requested_output_names(self) -> list[str]:
        return self.requested


@dataclass
class FakeResponse:
    output_tensors: list[FakeTensor] = field(default_factory=list)
    error: str | None = None

    def outputs(self) -> dict[str, np.ndarray]:
        return {t.name: t.array for t in self.output_tensors}


class CountingSession:
    """Wraps an InferenceSession to count run() calls."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session
        self.calls: list[dict[str, tuple[int, ...]]] = []

    def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.calls.append({k: v.shape for k, v in feed.items()})
        return list(self.session.run(names, feed))


@pytest.fixture()
def logs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    lines: list[str] = []
    fake = SimpleNamespace(
        Tensor=FakeTensor,
        InferenceResponse=FakeResponse,
        TritonError=str,
        Logger=SimpleNamespace(log_info=lines.append),
        get_input_tensor_by_name=lambda r, n: (
            FakeTensor(n, r.tensors[n]) if n in r.tensors else None
        ),
    )
    monkeypatch.setattr(backend, "pb_utils", fake)
    return lines


def config(ids_type: str = "TYPE_INT64", **extra: Any) -> dict[str, Any]:
    return {
        "name": "tiny",
        "max_batch_size": 8,
        "input": [
            {"name": "X", "data_type": "TYPE_FP32", "dims": [-1]},
            {"name": "IDS", "data_type": ids_type, "dims": [-1]},
        ],
        "output": [
            {"name": "Y", "data_type": "TYPE_FP32", "dims": [-1]},
            {"name": "Z", "data_type": "TYPE_INT64", "dims": [-1]},
        ],
        **extra,
    }


def make_model(tmp_path: Path, cfg: dict[str, Any]) -> backend.TritonPythonModel:
    build_tiny_onnx(tmp_path / "tiny" / "1" / "model.onnx")
    model = backend.TritonPythonModel()
    model.initialize(
        {
            "model_config": json.dumps(cfg),
            "model_name": "tiny",
            "model_repository": str(tmp_path / "tiny"),
            "model_version": "1",
            "model_instance_kind": "CPU",
        }
    )
    return model


def request(rows: int, width: int = 3, seed: int = 0, ids_dtype: Any = np.int64) -> FakeRequest:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, width)).astype(np.float32)
    ids = rng.integers(0, 100, (rows, width)).astype(ids_dtype)
    return FakeRequest({"X": x, "IDS": ids})


def assert_correct(response: FakeResponse, req: FakeRequest) -> None:
    assert response.error is None
    y, z = expected(req.tensors["X"], req.tensors["IDS"])
    np.testing.assert_allclose(response.outputs()["Y"], y, rtol=1e-6)
    np.testing.assert_array_equal(response.outputs()["Z"], z)
    assert response.outputs()["Z"].dtype == np.int64


def test_imports_without_triton() -> None:
    assert backend.pb_utils is None
    assert backend.coerce("IDS", np.zeros(2, np.int32), np.int64).dtype == np.int64


def test_same_shape_requests_run_once_and_split_back(tmp_path: Path, logs: list[str]) -> None:
    model = make_model(tmp_path, config())
    model.session = session = CountingSession(model.session)
    requests = [request(1, seed=0), request(3, seed=1), request(2, seed=2)]
    responses = model.execute(requests)
    assert session.calls == [{"X": (6, 3), "IDS": (6, 3)}]
    for response, req in zip(responses, requests, strict=True):
        assert_correct(response, req)


def test_different_shapes_form_separate_groups(tmp_path: Path, logs: list[str]) -> None:
    model = make_model(tmp_path, config())
    model.session = session = CountingSession(model.session)
    requests = [request(1, width=3), request(2, width=5), request(1, width=3, seed=4)]
    responses = model.execute(requests)
    assert sorted(c["X"] for c in session.calls) == [(2, 3), (2, 5)]
    for response, req in zip(responses, requests, strict=True):
        assert_correct(response, req)


def test_bad_request_fails_alone(tmp_path: Path, logs: list[str]) -> None:
    model = make_model(tmp_path, config())
    bad_dtype = request(1, seed=1)
    bad_dtype.tensors["X"] = bad_dtype.tensors["X"].astype(np.float64)
    missing = FakeRequest({"X": np.zeros((1, 3), np.float32)})
    requests = [request(2), bad_dtype, missing, request(1, seed=3)]
    responses = model.execute(requests)
    assert_correct(responses[0], requests[0])
    assert_correct(responses[3], requests[3])
    assert responses[1].error == (
        "model 'tiny': input 'X' is float64 but the ONNX graph wants float32: send float32"
    )
    assert responses[2].error == "model 'tiny': input 'IDS' is missing: the ONNX graph needs it"


def test_onnxruntime_failure_in_a_batch_retries_each_request(
    tmp_path: Path, logs: list[str]
) -> None:
    model = make_model(tmp_path, config())
    real = model.session

    class FailsOnNegative(CountingSession):
        def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
            if (feed["IDS"] < 0).any():
                raise RuntimeError("index out of range")
            return super().run(names, feed)

    model.session = FailsOnNegative(real)
    poisoned = request(1, seed=2)
    poisoned.tensors["IDS"][0, 0] = -1
    requests = [request(2), poisoned, request(1, seed=5)]
    responses = model.execute(requests)
    assert_correct(responses[0], requests[0])
    assert_correct(responses[2], requests[2])
    assert responses[1].error == "model 'tiny': onnxruntime failed: index out of range"


def test_int32_is_widened_for_an_int64_graph_input(tmp_path: Path, logs: list[str]) -> None:
    model = make_model(tmp_path, config(ids_type="TYPE_INT32"))
    req = request(2, ids_dtype=np.int32)
    assert_correct(model.execute([req])[0], req)


def test_only_requested_outputs_are_returned(tmp_path: Path, logs: list[str]) -> None:
    model = make_model(tmp_path, config())
    req = request(1)
    req.requested = ["Z"]
    assert list(model.execute([req])[0].outputs()) == ["Z"]


def test_accelerators_are_logged_as_emulated(tmp_path: Path, logs: list[str]) -> None:
    accel = {"execution_accelerators": {"gpu_execution_accelerator": [{"name": "tensorrt"}]}}
    make_model(tmp_path, config(optimization=accel))
    assert len(logs) == 1
    assert "['tensorrt']" in logs[0]
    assert "emulated on CPU" in logs[0]


def test_config_that_does_not_match_the_graph_fails_to_load(tmp_path: Path) -> None:
    cfg = config(ids_type="TYPE_FP16")
    cfg["output"].append({"name": "W", "data_type": "TYPE_FP32", "dims": [-1]})
    with pytest.raises(ValueError) as info:
        make_model(tmp_path, cfg)
    assert str(info.value).endswith(
        "config input 'IDS' is TYPE_FP16, graph has tensor(int64); "
        "config output 'W' is not in the graph (Y, Z)"
    )


def test_session_options_follow_the_real_backend_keys() -> None:
    params = {
        "intra_op_thread_count": {"string_value": "2"},
        "inter_op_thread_count": {"string_value": "1"},
        "execution_mode": {"string_value": "1"},
    }
    options = backend.session_options(
        {"parameters": params, "optimization": {"graph": {"level": 2}}}
    )
    assert options.intra_op_num_threads == 2
    assert options.inter_op_num_threads == 1
    assert options.execution_mode == ort.ExecutionMode.ORT_PARALLEL
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    defaults = backend.session_options({})
    assert defaults.intra_op_num_threads == 0
    assert defaults.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    named = backend.session_options(
        {"parameters": {"graph_optimization_level": {"string_value": "enable_basic"}}}
    )
    assert named.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("intra_op_thread_count", "two", "parameter 'intra_op_thread_count' must be an integer"),
        ("graph_optimization_level", "max", "parameter 'graph_optimization_level' must be one of"),
    ],
)
def test_bad_parameters_are_named(key: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        backend.session_options({"parameters": {key: {"string_value": value}}})
