"""What TensorRT's ONNX parser takes, checked before any build: only ai.onnx operators, and for
int8 explicit quantization as onnx-tensorrt imports it (symmetric signed int8 Q/DQ).

Sources (research notes tensorrt.md §6): onnx-tensorrt `QuantDequantLinearHelper`
(onnxOpImporters.cpp 10.1-GA :1346-1657; 8.6-GA builtin_op_importers.cpp :1157-1297),
ModelImporter.cpp 10.1-GA :153-168, NvInfer.h, and ONNX's quantization schemas
(onnx/defs/quantization/defs.cc, old.cc).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from tritonkit.errors import PlanBuildError

_ONNX_DOMAINS = ("", "ai.onnx")
_UNSUPPORTED = {"DynamicQuantizeLinear", "QLinearMatMul", "MatMulInteger", "QLinearConv"}


def foreign_ops(model: onnx.ModelProto) -> list[str]:
    """Operators outside ai.onnx. The parser dispatches by op_type alone, ignoring the domain
    (ModelImporter.cpp 10.1-GA :153-168): a com.microsoft op is either "Plugin not found" or,
    where its name matches a standard op (Attention, Gelu), imported with the wrong semantics."""
    return sorted(
        {f"{n.domain}:{n.op_type}" for n in model.graph.node if n.domain not in _ONNX_DOMAINS}
    )


def _constant_values(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    """Initializers and Constant-node outputs: the values TensorRT can read at build time
    ("Constant -> Quantize" is an allowed build-time zero-point subgraph, NvInfer.h 10.16
    :5575-5577; 8.6's ONNX Constant op makes weights too)."""
    values = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.domain in _ONNX_DOMAINS:
            for attribute in node.attribute:
                if attribute.name == "value":
                    values[node.output[0]] = attribute.t
    return values


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in _ONNX_DOMAINS), 0)


def _node_problems(
    node: onnx.NodeProto, values: dict[str, onnx.TensorProto], produced_by_q: set[str]
) -> list[str]:
    name = node.name or node.output[0]
    problems = []
    if len(node.input) < 3 or not node.input[2]:
        # Without a zero point ONNX's Q output is uint8 ("Default is uint8 with zero point of 0",
        # defs.cc QuantizeLinear); TensorRT reads int8 instead (10.1 :1424-1426) and 8.6 needs
        # three inputs (8.6 :1216-1217): ONNX Runtime and TensorRT would compute different graphs.
        return [f"{node.op_type} '{name}' has no zero point (ONNX then means uint8)"]
    zero = values.get(node.input[2])
    if zero is None:
        # TensorRT 8.6 reads no Identity/Cast chain (research §6): initializer or Constant only
        return [f"{node.op_type} '{name}': zero point '{node.input[2]}' is not a constant"]
    if zero.data_type != onnx.TensorProto.INT8:
        # "Found unsupported input type of UINT8" (10.1 :1349-1355); IQuantizeLayer output must
        # be kINT8/kFP8/kINT4/kFP4 (NvInfer.h 10.16 :5538-5539)
        kind = onnx.TensorProto.DataType.Name(zero.data_type)
        problems.append(f"{node.op_type} '{name}' quantizes to {kind}: TensorRT takes int8 only")
    elif numpy_helper.to_array(zero).any():
        # "TensorRT only supports symmetric quantization. The zero point ... must be all zeros."
        # (10.1 :1491-1494; 8.6 :1220)
        problems.append(f"{node.op_type} '{name}' is asymmetric (non-zero zero point)")
    scale = values.get(node.input[1])
    if scale is None:
        problems.append(f"{node.op_type} '{name}': scale is not a build-time constant")
        return problems
    scales = numpy_helper.to_array(scale)
    if (scales <= 0).any():
        problems.append(f"{node.op_type} '{name}': scales must be positive (10.1 :1403-1404)")
    if scales.size != numpy_helper.to_array(zero).size:
        problems.append(f"{node.op_type} '{name}': scale and zero point differ in size")
    if scales.size > 1:
        # per-channel only on weights: "Activations cannot be quantized per-channel"
        # (NvInfer.h 8.6 :6056); one scale per output channel along `axis` (10.1 :1524-1541)
        weight = values.get(node.input[0])
        if weight is None and node.input[0] not in produced_by_q:
            problems.append(f"{node.op_type} '{name}' quantizes an activation per channel")
        elif weight is not None:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            dims = list(weight.dims)
            if not dims or dims[axis % len(dims)] != scales.size:
                problems.append(f"{node.op_type} '{name}': {scales.size} scales for axis {axis} "
                                f"of a {dims} weight")  # fmt: skip
    return problems


def qdq_problems(model: onnx.ModelProto) -> list[str]:
    """Why TensorRT cannot build this model as an int8 explicit-quantization network."""
    problems = []
    quantize = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    dequantize = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    if not quantize:
        problems.append(
            "no QuantizeLinear node: int8 needs the int8-qdq model (explicit quantization); "
            "implicit calibration is not supported"
        )
    if (quantize or dequantize) and _opset(model) < 13:
        # per-axis scales and `axis` appear in QuantizeLinear-13 (onnx/defs/quantization/old.cc)
        problems.append(f"opset {_opset(model)}: Q/DQ models need opset 13 or later")
    unsupported = sorted({n.op_type for n in model.graph.node if n.op_type in _UNSUPPORTED})
    if unsupported:
        problems.append(f"{unsupported} are not importable (operators.md 10.1-GA): use QDQ format")
    values = _constant_values(model)
    produced_by_q = {n.output[0] for n in quantize}
    for node in quantize + dequantize:
        problems += _node_problems(node, values, produced_by_q)
        if node.op_type == "DequantizeLinear" and node.input[0] in values:
            # DQ-only (pre-quantized) weights must be int8 too (explicit-quantization docs)
            weight = values[node.input[0]]
            if weight.data_type != onnx.TensorProto.INT8:
                kind = onnx.TensorProto.DataType.Name(weight.data_type)
                problems.append(f"DequantizeLinear '{node.name}' reads {kind} weights, not int8")
    return list(dict.fromkeys(problems))


def check_for_tensorrt(onnx_path: Path, precision: str) -> None:
    """Raise PlanBuildError naming every reason TensorRT's parser would refuse the model."""
    model = onnx.load(str(onnx_path), load_external_data=False)
    problems = []
    foreign = foreign_ops(model)
    if foreign:
        problems.append(
            f"operators outside ai.onnx {foreign[:4]}{'...' if len(foreign) > 4 else ''}: "
            "TensorRT's parser imports by op_type only; build from the unfused export"
        )
    if precision == "int8":
        problems += qdq_problems(model)
    if problems:
        raise PlanBuildError(f"{onnx_path}: not a model TensorRT can build: {'; '.join(problems)}")


def quantized_weights(model: onnx.ModelProto) -> int:
    """How many int8 weight tensors (per-channel or not) feed DequantizeLinear nodes."""
    values = _constant_values(model)
    return sum(
        1
        for n in model.graph.node
        if n.op_type == "DequantizeLinear"
        and n.input[0] in values
        and np.dtype(numpy_helper.to_array(values[n.input[0]]).dtype) == np.int8
    )
