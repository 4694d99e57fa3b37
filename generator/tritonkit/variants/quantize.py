"""Graph rewrites and int8 quantization for the CPU variants.

Three measured facts (all-MiniLM-L6-v2, ONNX Runtime 1.31, development machine) shape this file:

- ONNX Runtime's CPU kernel for SkipLayerNormalization took 246 us on a [1, 128, 384] tensor
  where Add + LayerNormalization took 42 us: 12 of them cost 20% of an int8 inference.
  `split_skip_layernorm` writes each as Sum + LayerNormalization (ONNX Runtime re-fuses
  Add + LayerNormalization into the slow op at load time, but not Sum); the bias Add is then
  folded into the quantized MatMul by ONNX Runtime.
- Dynamic int8 quantizes each activation with one scale per tensor. The LayerNorm outputs that
  feed the QKV projection and the first FFN MatMul have a few channels 15x larger than the
  median: they set the scale and crush the rest (min cosine 0.979 on the packaged texts).
  `smooth` (SmoothQuant, alpha 0.5) divides those channels by s and multiplies the weight rows by
  s, calibrated on texts: min cosine 0.992, same speed. Smoothing the other MatMuls made it worse.
- Static int8 with QDQ on every MatMul broke accuracy (min cosine 0.86); on the MatMuls that
  read LayerNorm outputs, after smoothing, percentile calibration kept 0.996.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tritonkit.errors import OptimizeError

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
STATIC_SCOPES = ("layernorm-inputs", "all")
DEFAULT_SMOOTH_ALPHA = 0.5
_NORM_OPS = frozenset({"LayerNormalization", "SkipLayerNormalization", "EmbedLayerNormalization"})
_MS = "com.microsoft"

Feeds = dict[str, np.ndarray]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """onnxruntime.quantization prints calibration progress and logs advice on the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def _calibration_method(name: str) -> Any:
    """onnxruntime.quantization's CalibrationMethod for a spec's calibration_method."""
    from onnxruntime.quantization import CalibrationMethod

    return {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[name]


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def split_skip_layernorm(model: onnx.ModelProto) -> int:
    """Rewrite SkipLayerNormalization(x, skip, gamma, beta, bias) as
    LayerNormalization(Sum(Add(x, bias), skip)); returns how many were rewritten."""
    if _opset(model) < 17:  # LayerNormalization is an ONNX op from opset 17
        return 0
    consumed = {name for node in model.graph.node for name in node.input}
    consumed |= {o.name for o in model.graph.output}
    nodes: list[onnx.NodeProto] = []
    count = 0
    for node in model.graph.node:
        extra_outputs = [o for o in node.output[1:] if o and o in consumed]
        if node.op_type != "SkipLayerNormalization" or node.domain != _MS or extra_outputs:
            nodes.append(node)
            continue
        epsilon = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-12)
        x, skip, gamma = node.input[:3]
        beta = node.input[3] if len(node.input) > 3 else ""
        bias = node.input[4] if len(node.input) > 4 else ""
        name = node.name or f"skip_layernorm_{count}"
        if bias:
            nodes.append(helper.make_node("Add", [x, bias], [f"{name}/biased"], f"{name}/bias"))
            x = f"{name}/biased"
        nodes.append(helper.make_node("Sum", [x, skip], [f"{name}/sum"], f"{name}/sum"))
        inputs = [f"{name}/sum", gamma] + ([beta] if beta else [])
        nodes.append(
            helper.make_node(
                "LayerNormalization",
                inputs,
                [node.output[0]],
                f"{name}/layernorm",
                axis=-1,
                epsilon=epsilon,
            )
        )
        count += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return count


def smoothable(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """MatMul (constant weight) and Attention nodes whose activation is a LayerNorm output."""
    initializers = {i.name for i in model.graph.initializer}
    norm_outputs = {n.output[0] for n in model.graph.node if n.op_type in _NORM_OPS}
    return [
        node
        for node in model.graph.node
        if node.input
        and node.input[0] in norm_outputs
        and (
            (node.op_type == "MatMul" and node.input[1] in initializers)
            or (node.op_type == "Attention" and node.domain == _MS)
        )
    ]


def activation_absmax(
    model: onnx.ModelProto, tensors: Sequence[str], batches: Sequence[Feeds]
) -> dict[str, np.ndarray]:
    """Per-channel max |value| of each tensor over the real (unpadded) tokens of `batches`."""
    import onnxruntime

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    for name in tensors:
        if name not in known:
            probe.graph.output.append(
                helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
            )
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(
        probe.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    absmax: dict[str, np.ndarray] = {}
    for feeds in batches:
        real = feeds["attention_mask"].astype(bool)
        for name, value in zip(tensors, session.run(list(tensors), feeds), strict=True):
            rows = np.abs(value[real] if value.ndim == 3 else value)
            peak = rows.max(axis=0)
            absmax[name] = np.maximum(absmax[name], peak) if name in absmax else peak
    return absmax


def smooth(model: onnx.ModelProto, batches: Sequence[Feeds], alpha: float) -> int:
    """SmoothQuant on the LayerNorm-fed MatMul/Attention nodes; returns how many were smoothed.

    For input channel j: s_j = max|X_j|^alpha / max|W_j|^(1 - alpha); X_j / s_j goes through a
    Mul before the node (the LayerNorm output also feeds the residual, so it cannot absorb it)
    and row j of the weight is multiplied by s_j. The product is unchanged in exact arithmetic.
    """
    targets = smoothable(model)
    if not targets:
        return 0
    absmax = activation_absmax(model, sorted({n.input[0] for n in targets}), batches)
    weights = {i.name: i for i in model.graph.initializer}
    added: dict[str, onnx.NodeProto] = {}
    for node in targets:
        weight = numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)
        activation = np.maximum(absmax[node.input[0]], 1e-5)
        scale = activation**alpha / np.maximum(np.abs(weight).max(axis=1), 1e-5) ** (1 - alpha)
        scale = np.clip(scale, 1e-2, 1e2).astype(np.float32)
        weights[node.input[1]].CopyFrom(
            numpy_helper.from_array(weight * scale[:, None], node.input[1])
        )
        prefix = f"{node.name or node.output[0]}/smooth"
        model.graph.initializer.append(numpy_helper.from_array(1.0 / scale, f"{prefix}/inverse"))
        added[node.output[0]] = helper.make_node(
            "Mul", [node.input[0], f"{prefix}/inverse"], [f"{prefix}/out"], prefix
        )
        node.input[0] = f"{prefix}/out"
    nodes: list[onnx.NodeProto] = []
    for node in model.graph.node:
        if node.output[0] in added:
            nodes.append(added[node.output[0]])
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return len(targets)


def quantize_dynamic_int8(source: Path, target: Path, reduce_range: bool) -> None:
    """Per-channel int8 weights, activations quantized at run time (MatMul and Attention)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet():
        quantize_dynamic(
            source,
            target,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=reduce_range,
            op_types_to_quantize=["MatMul", "Attention"],
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT, "MatMulConstBOnly": True},
        )


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over prepared batches."""

    def __init__(self, batches: Sequence[Feeds]) -> None:
        self._batches = iter(batches)

    def get_next(self) -> Feeds | None:
        return next(self._batches, None)


def _quantize_qdq(
    model: onnx.ModelProto,
    chosen: Sequence[onnx.NodeProto],
    target: Path,
    batches: Sequence[Feeds],
    method: str,
    **settings: Any,
) -> None:
    """QDQ static quantization of the `chosen` nodes of `model` into `target`: per-channel int8
    weights, activation ranges calibrated on `batches` with `method`; `settings` (activation
    type, reduce_range, op types, extra_options) are the variant's own. `model` is saved beside
    `target` for ONNX Runtime's quantizer (it takes a path) and removed afterwards."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    for node in chosen:
        node.name = node.name or node.output[0]  # nodes_to_quantize selects by name
    staged = target.with_name(target.stem + ".calibrating.onnx")
    onnx.save(model, str(staged))
    try:
        with _quiet():
            quantize_static(
                staged,
                target,
                _Reader(batches),
                quant_format=QuantFormat.QDQ,
                nodes_to_quantize=[n.name for n in chosen],
                per_channel=True,
                weight_type=QuantType.QInt8,
                calibrate_method=_calibration_method(method),
                **settings,
            )
    finally:
        staged.unlink(missing_ok=True)


def layernorm_fed(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes `smooth` would change (named first where they have no name)."""
    nodes = smoothable(model)
    for node in nodes:
        node.name = node.name or node.output[0]
    return [node.name for node in nodes]


def quantize_static_int8(
    source: Path,
    target: Path,
    batches: Sequence[Feeds],
    *,
    method: str,
    op_types: Sequence[str],
    nodes: Sequence[str] | None,
    reduce_range: bool,
) -> int:
    """QDQ int8 with activation ranges calibrated on `batches`; returns the nodes quantized.

    Only `nodes` (by name) are quantized, or every `op_types` node with a constant weight when
    `nodes` is None.
    """
    from onnxruntime.quantization import QuantType
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    model = onnx.load(str(source))
    # Contrib ops (Attention, EmbedLayerNormalization) are unknown to onnx's shape inference:
    # without these types the calibrator silently skips every tensor downstream of them.
    inferred = SymbolicShapeInference.infer_shapes(model, auto_merge=True, guess_output_rank=True)
    initializers = {i.name for i in inferred.graph.initializer}
    chosen = [
        node
        for node in inferred.graph.node
        if node.op_type in op_types
        and node.input[-1] in initializers
        and (nodes is None or node.name in nodes)
    ]
    if not chosen:
        raise OptimizeError(
            f"{source}: no {'/'.join(op_types)} node with a constant weight to quantize: "
            "choose other --calibration-op-type values or --static-scope all"
        )
    _quantize_qdq(
        inferred, chosen, target, batches, method,
        op_types_to_quantize=list(op_types),
        reduce_range=reduce_range,
        activation_type=QuantType.QUInt8,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT, "WeightSymmetric": True},
    )  # fmt: skip
    return len(chosen)


_ACTIVATIONS = frozenset({"Erf", "Tanh", "Gelu", "FastGelu", "BiasGelu", "Relu", "Sigmoid"})


def after_activation(model: onnx.ModelProto) -> list[str]:
    """MatMuls whose activation is the FFN's non-linearity output (GELU as Mul(x, 0.5 * (1 +
    Erf(x / sqrt 2))), or a Relu...): one-sided and heavy-tailed, it loses half of symmetric
    int8's range. Measured on all-MiniLM-L6-v2: quantizing those 6 MatMuls alone took min
    cosine to 0.76; every other MatMul together kept 0.99."""
    producer = {o: n for n in model.graph.node for o in n.output}

    def ancestors(name: str, depth: int) -> set[str]:
        node = producer.get(name)
        if node is None or depth == 0:
            return set()
        found = {node.op_type}
        for source in node.input:
            found |= ancestors(source, depth - 1)
        return found

    return [
        n.name or n.output[0]
        for n in model.graph.node
        if n.op_type == "MatMul" and ancestors(n.input[0], 4) & _ACTIVATIONS
    ]


def quantize_qdq_int8(
    source: Path,
    target: Path,
    batches: Sequence[Feeds],
    method: str,
    nodes: Sequence[str] | None = None,
) -> int:
    """TensorRT's int8 model: QDQ on the unfused export's constant-weight MatMul/Gemm nodes,
    activations and weights signed int8 and symmetric (explicit int8 zero points of 0), weights
    per output channel; returns the nodes quantized.

    onnx-tensorrt takes only that: no uint8 ("Found unsupported input type of UINT8"), no
    non-zero zero point ("TensorRT only supports symmetric quantization"), per-channel scales
    only on weights, one per output channel (onnxOpImporters.cpp 10.1-GA :1349-1541). A MatMul
    weight is [in, out], so its output channel is axis 1. Per-axis Q/DQ needs opset >= 13
    (onnx/defs/quantization/old.cc). Only ai.onnx operators: the unfused export has no
    com.microsoft op, and plain QDQ (not QOperator, not the contrib Q/DQ) adds none.
    """
    from onnxruntime.quantization import QuantType

    model = onnx.load(str(source))
    if _opset(model) < 13:
        raise OptimizeError(
            f"{source}: opset {_opset(model)}: per-channel Q/DQ needs opset 13 or later: "
            "export with --opset 17"
        )
    initializers = {i.name for i in model.graph.initializer}
    chosen = [
        node
        for node in model.graph.node
        if node.op_type in ("MatMul", "Gemm") and node.domain in ("", "ai.onnx")
        and len(node.input) > 1 and node.input[1] in initializers
        and (nodes is None or (node.name or node.output[0]) in nodes)
    ]  # fmt: skip
    if not chosen:
        raise OptimizeError(f"{source}: no MatMul/Gemm with a constant weight to quantize")
    _quantize_qdq(
        model, chosen, target, batches, method,
        op_types_to_quantize=["MatMul", "Gemm"],
        reduce_range=False,
        activation_type=QuantType.QInt8,
        extra_options={
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            "DefaultTensorType": onnx.TensorProto.FLOAT,
            "QDQOpTypePerChannelSupportToAxis": {"MatMul": 1},
            "UseQDQContribOps": False,
            # an int32 bias DequantizeLinear is not an int8 Q/DQ TensorRT imports
            "QuantizeBias": False,
        },
    )  # fmt: skip
    return len(chosen)
