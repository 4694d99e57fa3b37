"""A small helper that appends uniquely named nodes and constants to an ONNX graph."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import onnx
from onnx import TensorProto, helper

POSTPROCESS_PREFIX = "tritonkit_post"  # fp16 conversion keeps nodes under this prefix in fp32


class GraphBuilder:
    """Appends nodes named `tritonkit_post/<op>_<n>` and constants to `graph`."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        self.count = 0

    def node(self, op: str, inputs: Sequence[str], output: str | None = None, **attrs: Any) -> str:
        self.count += 1
        name = f"{POSTPROCESS_PREFIX}/{op}_{self.count}"
        out = output or f"{name}:0"
        self.graph.node.append(helper.make_node(op, list(inputs), [out], name=name, **attrs))
        return out

    def const(self, label: str, values: Sequence[float], dtype: int) -> str:
        name = f"{POSTPROCESS_PREFIX}/{label}"
        self.graph.initializer.append(helper.make_tensor(name, dtype, [len(values)], values))
        return name


def float_output(name: str, dims: Sequence[str | int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(dims))


def int64_output(name: str, dims: Sequence[str | int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.INT64, list(dims))
