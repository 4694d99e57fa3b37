"""What onnx-tensorrt takes for int8 (research notes tensorrt.md §6), checked before a build, and
the int8-qdq variant made with real ONNX Runtime quantization that satisfies it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.unit.trt_fakes import token_onnx
from tritonkit.errors import PlanBuildError
from tritonkit.tensorrt.qdq import check_for_tensorrt, foreign_ops, qdq_problems


def problems(path: Path) -> list[str]:
    return qdq_problems(onnx.load(str(path)))


def test_symmetric_int8_with_explicit_zero_points_passes(tmp_path: Path) -> None:
    assert problems(token_onnx(tmp_path / "m.onnx", qdq="int8")) == []
    # a zero point in a Constant node is a build-time constant (NvInfer.h 10.16 :5575-5577)
    assert problems(token_onnx(tmp_path / "c.onnx", qdq="constant-zero")) == []


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        # ONNX: without y_zero_point the output is uint8 (defs.cc QuantizeLinear); TensorRT would
        # read int8 (onnxOpImporters.cpp 10.1 :1424-1426): the two runtimes would differ
        ("no-zero-point", "QuantizeLinear 'q0' has no zero point (ONNX then means uint8)"),
        # "Found unsupported input type of UINT8" (10.1 :1349-1355)
        ("uint8", "QuantizeLinear 'q0' quantizes to UINT8: TensorRT takes int8 only"),
        # "TensorRT only supports symmetric quantization" (10.1 :1491-1494)
        ("asymmetric", "QuantizeLinear 'q0' is asymmetric (non-zero zero point)"),
    ],
)
def test_what_the_parser_refuses(tmp_path: Path, kind: str, expected: str) -> None:
    assert expected in problems(token_onnx(tmp_path / "m.onnx", qdq=kind))


def test_no_quantize_node_and_old_opset(tmp_path: Path) -> None:
    found = problems(token_onnx(tmp_path / "m.onnx"))
    assert found == [
        "no QuantizeLinear node: int8 needs the int8-qdq model (explicit quantization); "
        "implicit calibration is not supported"
    ]
    # per-axis Q/DQ (axis, 1-D scales) exists from QuantizeLinear-13 (old.cc)
    assert "opset 12: Q/DQ models need opset 13 or later" in problems(
        token_onnx(tmp_path / "o.onnx", qdq="int8", opset=12)
    )


def _weight_model(tmp_path: Path, weight_type: int, activation_scales: int = 1) -> Path:
    """x[b, 4] -> Q/DQ (activation) -> MatMul with a DequantizeLinear-only weight [4, 3]."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 3])
    dtype = np.uint8 if weight_type == TensorProto.UINT8 else np.int8
    inits = [
        numpy_helper.from_array(np.ones((4, 3), dtype=dtype), "w"),
        numpy_helper.from_array(np.full(3, 0.1, np.float32), "w_scale"),
        numpy_helper.from_array(np.zeros(3, dtype=dtype), "w_zero"),
        numpy_helper.from_array(np.full(activation_scales, 0.1, np.float32).squeeze(), "x_scale"),
        numpy_helper.from_array(np.zeros(activation_scales, np.int8).squeeze(), "x_zero"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero"], ["xq"], name="qx"),
        helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zero"], ["xd"], name="dqx"),
        helper.make_node(
            "DequantizeLinear", ["w", "w_scale", "w_zero"], ["wd"], name="dqw", axis=1
        ),
        helper.make_node("MatMul", ["xd", "wd"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "w", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "w.onnx"
    onnx.save(model, str(path))
    return path


def test_dequantize_only_weights(tmp_path: Path) -> None:
    """Pre-quantized weights need a DequantizeLinear and must be int8 (explicit-quantization
    docs; only UINT8 is refused, 10.1 :1349); per-channel scales count the output channels."""
    assert problems(_weight_model(tmp_path, TensorProto.INT8)) == []
    found = problems(_weight_model(tmp_path, TensorProto.UINT8))
    assert "DequantizeLinear 'dqw' reads UINT8 weights, not int8" in found


def test_activations_are_never_per_channel(tmp_path: Path) -> None:
    """ "Activations cannot be quantized per-channel" (NvInfer.h 8.6 :6056)."""
    found = problems(_weight_model(tmp_path, TensorProto.INT8, activation_scales=4))
    assert "QuantizeLinear 'qx' quantizes an activation per channel" in found


def test_contrib_operators_are_refused_whatever_the_precision(tmp_path: Path) -> None:
    """The parser dispatches by op_type, ignoring the domain (ModelImporter.cpp 10.1-GA
    :153-168)."""
    model = token_onnx(tmp_path / "m.onnx", domain="com.microsoft")
    assert foreign_ops(onnx.load(str(model))) == ["com.microsoft:ReduceSum"]
    with pytest.raises(PlanBuildError) as error:
        check_for_tensorrt(model, "fp16")
    assert str(error.value) == (
        f"{model}: not a model TensorRT can build: operators outside ai.onnx "
        "['com.microsoft:ReduceSum']: TensorRT's parser imports by op_type only; build from the "
        "unfused export"
    )


def test_int8_qdq_variant_is_what_tensorrt_takes(
    tiny_model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    """Real ONNX Runtime quantize_static on the unfused export, then the checks above, and
    explicitly: only ai.onnx, int8 zero points of 0 on every Q and DQ, per-channel weights on
    axis 1 (a MatMul weight is [in, out]), opset >= 13; gated on ONNX Runtime."""
    from tritonkit.spec import OptimizeSpec
    from tritonkit.variants.build import build_variants

    model_dir = tiny_model_dirs["feature-extraction"]
    options = OptimizeSpec(variants=("int8-qdq",), max_accuracy_drop=100.0)
    (variant,) = build_variants(model_dir, "feature-extraction", tmp_path / "v", options, "gpu")
    assert variant.name == "int8-qdq" and variant.record["device"] == "gpu"
    assert variant.accuracy.metric  # gated like every variant
    model = onnx.load(str(variant.onnx_path))
    check_for_tensorrt(variant.onnx_path, "int8")
    assert foreign_ops(model) == []
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 13
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq and all(len(n.input) == 3 for n in qdq)
    assert all(values[n.input[2]].dtype == np.int8 and not values[n.input[2]].any() for n in qdq)
    weights = [n for n in qdq if n.op_type == "DequantizeLinear" and n.input[0] in values]
    assert weights and all(values[n.input[0]].dtype == np.int8 for n in weights)
    per_channel = [n for n in weights if values[n.input[1]].size > 1]
    assert per_channel
    for node in per_channel:
        axis = next(a.i for a in node.attribute if a.name == "axis")
        assert axis == 1 and values[node.input[0]].shape[1] == values[node.input[1]].size
