"""Local stand-in for Triton's ONNX Runtime backend, run by the Python backend stub.

`tritonkit server` copies this file to `<backend-dir>/onnxruntime/model.py`. Triton then serves
every model whose config says `platform: "onnxruntime_onnx"` or `backend: "onnxruntime"` through
it, with the config unmodified. It emulates the real backend for local runs and CI on CPU only;
production GPU nodes use the C++ ONNX Runtime backend of the Triton container image.

Differences from the real backend, on purpose:
- `optimization.execution_accelerators` (TensorRT, CUDA, OpenVINO) are logged and ignored: the
  graph runs on ONNX Runtime's CPUExecutionProvider.
- An input the config declares TYPE_INT32 for an int64 graph input is accepted and widened to
  int64 (lossless); the real backend rejects that config at load time.
- Any other config/graph mismatch fails the load with every problem in one message.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

try:
    import triton_python_backend_utils as pb_utils
except ImportError:  # outside Triton (unit tests): only the pure helpers are usable
    pb_utils = None

CONFIG_DTYPES: dict[str, Any] = {
    "TYPE_BOOL": np.bool_,
    "TYPE_UINT8": np.uint8,
    "TYPE_UINT16": np.uint16,
    "TYPE_UINT32": np.uint32,
    "TYPE_UINT64": np.uint64,
    "TYPE_INT8": np.int8,
    "TYPE_INT16": np.int16,
    "TYPE_INT32": np.int32,
    "TYPE_INT64": np.int64,
    "TYPE_FP16": np.float16,
    "TYPE_FP32": np.float32,
    "TYPE_FP64": np.float64,
}
ORT_DTYPES: dict[str, Any] = {
    "tensor(bool)": np.bool_,
    "tensor(uint8)": np.uint8,
    "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64,
    "tensor(int8)": np.int8,
    "tensor(int16)": np.int16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(float16)": np.float16,
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
}
# The real backend's `optimization { graph { level } }`: -1 basic, 1 extended, 2 none, else all.
GRAPH_LEVELS = {
    -1: ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    1: ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    2: ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
}


class BadRequest(Exception):
    """A request this model cannot run: only that request gets the error."""


@dataclass(frozen=True)
class Prepared:
    """One request's validated inputs and the outputs it asked for."""

    index: int
    inputs: dict[str, np.ndarray]
    outputs: tuple[str, ...]
    rows: int

    def key(self) -> tuple[tuple[str, tuple[int, ...], str], ...]:
        """Requests with equal keys can be concatenated along axis 0."""
        return tuple((n, a.shape[1:], a.dtype.str) for n, a in sorted(self.inputs.items()))


def _log(message: str) -> None:
    if pb_utils is not None:
        pb_utils.Logger.log_info(message)


def parameters(config: dict[str, Any]) -> dict[str, str]:
    """The config's `parameters` map as plain strings."""
    return {k: str(v.get("string_value", "")) for k, v in config.get("parameters", {}).items()}


def _int_parameter(params: dict[str, str], key: str, default: int) -> int:
    value = params.get(key, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"parameter '{key}' must be an integer, got '{value}'") from None


def session_options(config: dict[str, Any]) -> ort.SessionOptions:
    """ONNX Runtime session options from the real backend's config keys."""
    params = parameters(config)
    options = ort.SessionOptions()
    options.intra_op_num_threads = _int_parameter(params, "intra_op_thread_count", 0)
    options.inter_op_num_threads = _int_parameter(params, "inter_op_thread_count", 0)
    if _int_parameter(params, "execution_mode", 0) == 1:
        options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    level = int(config.get("optimization", {}).get("graph", {}).get("level", 0))
    options.graph_optimization_level = GRAPH_LEVELS.get(
        level, ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    )
    # tritonkit's own key, an ORT level name; it wins over optimization.graph.level.
    name = params.get("graph_optimization_level", "").strip().upper()
    if name:
        if not name.startswith("ORT_"):
            name = "ORT_" + name
        allowed = ("ORT_DISABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_ALL")
        if name not in allowed:
            raise ValueError(
                f"parameter 'graph_optimization_level' must be one of {', '.join(allowed)}, "
                f"got '{params['graph_optimization_level']}'"
            )
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, name)
    return options


def model_path(config: dict[str, Any], repository: str, version: str) -> str:
    """`<model>/<version>/<default_model_filename>`; a folder means `<folder>/model.onnx`."""
    path = os.path.join(repository, version, config.get("default_model_filename") or "model.onnx")
    return os.path.join(path, "model.onnx") if os.path.isdir(path) else path


def signature_problems(
    config: dict[str, Any], session: ort.InferenceSession
) -> tuple[list[str], dict[str, Any]]:
    """Every config/graph mismatch, and the numpy dtype the graph wants for each input."""
    graph_inputs = {i.name: i.type for i in session.get_inputs()}
    config_inputs = {i["name"]: i.get("data_type", "") for i in config.get("input", [])}
    config_outputs = {o["name"]: o.get("data_type", "") for o in config.get("output", [])}
    problems = [
        f"graph input '{name}' ({ort_type}) is missing from the config"
        for name, ort_type in graph_inputs.items()
        if name not in config_inputs
    ]
    problems += _mismatches("input", config_inputs, graph_inputs)
    graph_outputs = {o.name: o.type for o in session.get_outputs()}
    problems += _mismatches("output", config_outputs, graph_outputs)
    wanted = {n: ORT_DTYPES.get(t) for n, t in graph_inputs.items() if n in config_inputs}
    return problems, wanted


def _mismatches(section: str, declared: dict[str, str], graph: dict[str, str]) -> list[str]:
    problems = []
    for name, data_type in declared.items():
        if name not in graph:
            problems.append(f"config {section} '{name}' is not in the graph ({', '.join(graph)})")
            continue
        have, want = CONFIG_DTYPES.get(data_type), ORT_DTYPES.get(graph[name])
        if have is None or want is None:
            problems.append(f"{section} '{name}' ({data_type}, {graph[name]}) is not supported")
        elif have is not want and not (section == "input" and _widens(have, want)):
            problems.append(f"config {section} '{name}' is {data_type}, graph has {graph[name]}")
    return problems


def _widens(have: Any, want: Any) -> bool:
    return have is np.int32 and want is np.int64


def coerce(name: str, array: np.ndarray, want: Any) -> np.ndarray:
    """The request tensor in the graph's dtype; only int32 -> int64 is converted (lossless)."""
    if array.dtype == want:
        return array
    if _widens(array.dtype.type, want):
        return array.astype(np.int64)
    raise BadRequest(
        f"input '{name}' is {array.dtype} but the ONNX graph wants {np.dtype(want)}: "
        f"send {np.dtype(want)}"
    )


def split_rows(arrays: list[np.ndarray], rows: list[int]) -> list[list[np.ndarray]]:
    """Cut each batched output back into one piece per request, in request order."""
    total = sum(rows)
    for array in arrays:
        if array.ndim == 0 or array.shape[0] != total:
            raise RuntimeError(f"an output has shape {array.shape}, not {total} rows")
    offsets = np.cumsum(rows)[:-1]
    pieces = [np.split(array, offsets) for array in arrays]
    return [[np.ascontiguousarray(p[i]) for p in pieces] for i in range(len(rows))]


class TritonPythonModel:
    """ONNX Runtime on CPU behind Triton's Python backend: batches same-shape requests."""

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        self.name = args["model_name"]
        path = model_path(config, args["model_repository"], args["model_version"])
        try:
            self.session = ort.InferenceSession(
                path, sess_options=session_options(config), providers=["CPUExecutionProvider"]
            )
        except ValueError as e:
            raise ValueError(f"model '{self.name}' config.pbtxt: {e}") from e
        problems, self.wanted = signature_problems(config, self.session)
        if problems:
            raise ValueError(
                f"model '{self.name}': config.pbtxt does not match {path}: {'; '.join(problems)}"
            )
        self.outputs = tuple(o["name"] for o in config.get("output", []))
        self.batching = int(config.get("max_batch_size", 0)) > 0
        accelerators = config.get("optimization", {}).get("execution_accelerators", {})
        names = [a.get("name", "?") for group in accelerators.values() for a in group]
        emulated = [f"execution accelerators {names}"] if names else []
        if args.get("model_instance_kind") == "GPU":
            emulated.append("its GPU instance")
        if emulated:
            _log(
                f"model '{self.name}': {' and '.join(emulated)} emulated on CPU "
                "(CPUExecutionProvider) by tritonkit's local onnxruntime backend; the Triton "
                "container image runs them for real"
            )

    def execute(self, requests: list[Any]) -> list[Any]:
        responses: list[Any] = [None] * len(requests)
        groups: dict[Any, list[Prepared]] = {}
        for index, request in enumerate(requests):
            try:
                item = self._prepare(index, request)
            except BadRequest as e:
                responses[index] = _error(f"model '{self.name}': {e}")
                continue
            groups.setdefault(item.key() if self.batching else index, []).append(item)
        for group in groups.values():
            for item, response in zip(group, self._run_group(group), strict=True):
                responses[item.index] = response
        return responses

    def finalize(self) -> None:
        del self.session

    def _prepare(self, index: int, request: Any) -> Prepared:
        inputs: dict[str, np.ndarray] = {}
        for name, want in self.wanted.items():
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is None:
                raise BadRequest(f"input '{name}' is missing: the ONNX graph needs it")
            inputs[name] = coerce(name, tensor.as_numpy(), want)
        rows = {a.shape[0] for a in inputs.values() if a.ndim} if self.batching else {0}
        if len(rows) != 1:
            raise BadRequest(f"inputs have different batch sizes {sorted(rows)}: send equal ones")
        requested = set(request.requested_output_names())
        outputs = tuple(n for n in self.outputs if not requested or n in requested)
        return Prepared(index, inputs, outputs, rows.pop())

    def _run_group(self, group: list[Prepared]) -> list[Any]:
        """One ONNX Runtime call for the group; on failure, each request alone."""
        names = [n for n in self.outputs if any(n in item.outputs for item in group)]
        try:
            if len(group) == 1:
                per_request = [self.session.run(names, group[0].inputs)]
            else:
                feed = {n: np.concatenate([item.inputs[n] for item in group]) for n in self.wanted}
                arrays = self.session.run(names, feed)
                per_request = split_rows(arrays, [item.rows for item in group])
        except Exception as e:  # ORT raises its own exception types for bad values and shapes
            if len(group) > 1:
                return [r for item in group for r in self._run_group([item])]
            return [_error(f"model '{self.name}': onnxruntime failed: {e}")]
        return [
            pb_utils.InferenceResponse(output_tensors=_tensors(item.outputs, names, arrays))
            for item, arrays in zip(group, per_request, strict=True)
        ]


def _tensors(wanted: tuple[str, ...], names: list[str], arrays: list[np.ndarray]) -> list[Any]:
    return [pb_utils.Tensor(n, a) for n, a in zip(names, arrays, strict=True) if n in wanted]


def _error(message: str) -> Any:
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(" ".join(message.split())))
