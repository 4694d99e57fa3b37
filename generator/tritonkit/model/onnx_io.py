"""Reading and writing ONNX graphs: their I/O as Triton dtypes, the checker, large models."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx

from tritonkit.errors import ExportError, RepositoryError
from tritonkit.model.inspect import one_line

ONNX_TO_TRITON: dict[int, str] = {
    onnx.TensorProto.FLOAT: "TYPE_FP32",
    onnx.TensorProto.FLOAT16: "TYPE_FP16",
    onnx.TensorProto.DOUBLE: "TYPE_FP64",
    onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.INT32: "TYPE_INT32",
    onnx.TensorProto.INT8: "TYPE_INT8",
    onnx.TensorProto.UINT8: "TYPE_UINT8",
    onnx.TensorProto.BOOL: "TYPE_BOOL",
}
# What the tokenizer can feed an encoder: every one is [batch, seq] int64.
TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Protobuf cannot serialise more than 2 GiB: bigger weights go to an external data file.
_PROTOBUF_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class GraphTensor:
    """A graph input or output: Triton dtype name and dims, batch axis included (-1: dynamic)."""

    name: str
    data_type: str
    dims: tuple[int, ...]


def onnx_io(path: Path) -> tuple[tuple[GraphTensor, ...], tuple[GraphTensor, ...]]:
    """Graph inputs (initializers excluded) and outputs as Triton dtypes."""
    model = onnx.load(str(path), load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}

    def convert(values: list[onnx.ValueInfoProto]) -> tuple[GraphTensor, ...]:
        tensors = []
        for value in values:
            if value.name in initializers:
                continue
            tensor_type = value.type.tensor_type
            data_type = ONNX_TO_TRITON.get(tensor_type.elem_type)
            if data_type is None:
                raise RepositoryError(
                    f"{path}: tensor '{value.name}' has an ONNX type Triton cannot serve "
                    f"({onnx.TensorProto.DataType.Name(tensor_type.elem_type)})"
                )
            dims = tuple(
                d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim
            )
            tensors.append(GraphTensor(value.name, data_type, dims))
        return tuple(tensors)

    return convert(list(model.graph.input)), convert(list(model.graph.output))


@dataclass(frozen=True)
class GraphFacts:
    """What a graph says about the model folder it was exported from (None: not found)."""

    input_names: tuple[str, ...]
    embedding_rows: int | None  # rows of the table that input_ids index: its vocabulary
    class_count: int | None  # static last dim of `logits` (or of the labelled output)


# Where input_ids meets the embedding table: Gather(table, ids) in an export, and
# EmbedLayerNormalization(ids, segments, word_embedding, ...) in an ORT-fused graph.
_EMBEDDING_TABLE = {"Gather": (1, 0), "EmbedLayerNormalization": (0, 2)}


def graph_facts(path: Path, raw_output: str, label_output: str | None) -> GraphFacts:
    """The graph's inputs, vocabulary and class count, read without loading the weights."""
    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    initializers = {init.name: tuple(init.dims) for init in graph.initializer}
    rows = None
    for node in graph.node:
        ids_at, table_at = _EMBEDDING_TABLE.get(node.op_type, (-1, -1))
        if len(node.input) > max(ids_at, table_at) >= 0 and node.input[ids_at] == "input_ids":
            dims = initializers.get(node.input[table_at])
            if dims:
                rows = int(dims[0])
                break
    return GraphFacts(
        tuple(i.name for i in graph.input if i.name not in initializers),
        rows,
        _class_count(model, raw_output, label_output),
    )


def _class_count(model: onnx.ModelProto, raw_output: str, label_output: str | None) -> int | None:
    try:
        inferred = onnx.shape_inference.infer_shapes(model).graph
    except onnx.shape_inference.InferenceError:
        inferred = model.graph
    for values, name in ((inferred.value_info, raw_output), (inferred.output, raw_output),
                         (inferred.output, label_output)):  # fmt: skip
        for value in values:
            dims = value.type.tensor_type.shape.dim
            if value.name == name and dims and dims[-1].HasField("dim_value"):
                return int(dims[-1].dim_value)
    return None


def check_onnx_file(path: Path) -> None:
    """Run onnx.checker on the file (by path, so that models over 2 GiB work too)."""
    try:
        onnx.checker.check_model(str(path))
    except (onnx.checker.ValidationError, OSError) as e:
        detail = one_line(e).replace(f": {path}", "")
        raise ExportError(
            f"{path}: not a valid ONNX model ({detail}): re-export it with `tritonkit export`"
        ) from e


def save_model(model: onnx.ModelProto, path: Path) -> None:
    """Save; weights over protobuf's 2 GiB limit go to `<name>.data` beside the graph."""
    data_file = path.with_name(path.name + ".data")
    data_file.unlink(missing_ok=True)  # onnx appends to an existing external data file
    large = sum(t.ByteSize() for t in model.graph.initializer) > _PROTOBUF_LIMIT
    onnx.save_model(model, str(path), save_as_external_data=large, location=data_file.name)


def opset_of(model: onnx.ModelProto) -> int:
    """The default-domain opset the graph imports."""
    return int(next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")))
