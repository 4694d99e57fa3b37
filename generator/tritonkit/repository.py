"""Plan a Triton model repository from a spec and an exported model, render it, validate it,
and move it into place atomically.

Layout (NAME is the deployment name):
  NAME/             ensemble: TEXT in, task results out
  NAME_tokenizer/   Python backend: tokenizers + numpy
  NAME_onnx/        ONNX Runtime (platform onnxruntime_onnx)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from tritonkit.errors import RepositoryError
from tritonkit.pbtxt import (
    DynamicBatching,
    EnsemblePlan,
    EnsembleStep,
    ExecutionAccelerator,
    ModelPlan,
    Tensor,
    render_config,
)
from tritonkit.resources import triton_model_source
from tritonkit.spec import DeploymentSpec

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
TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class FileEntry:
    """A file of the repository: copied from `source` or written from `content`."""

    path: str  # relative to the repository root
    source: Path | None = None
    content: str | None = None


@dataclass(frozen=True)
class RepositoryPlan:
    spec: DeploymentSpec
    models: tuple[ModelPlan, ...]
    ensemble: EnsemblePlan
    files: tuple[FileEntry, ...] = field(default=())


def onnx_io(path: Path) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
    """Graph inputs and outputs as Triton tensors with the batch dimension included."""
    model = onnx.load(str(path), load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}

    def convert(values: list[onnx.ValueInfoProto]) -> tuple[Tensor, ...]:
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
            tensors.append(Tensor(value.name, data_type, dims))
        return tuple(tensors)

    return convert(list(model.graph.input)), convert(list(model.graph.output))


def _unbatched(tensor: Tensor, label_filename: str | None = None) -> Tensor:
    return Tensor(tensor.name, tensor.data_type, tensor.dims[1:], label_filename)


def plan_repository(
    spec: DeploymentSpec,
    onnx_path: Path,
    tokenizer_file: Path,
    labels: tuple[str, ...],
    max_length: int,
    pad_token_id: int,
    buckets: tuple[int, ...] = (),
) -> RepositoryPlan:
    """Decide every model, tensor and file of the repository (nothing is written here)."""
    graph_inputs, graph_outputs = onnx_io(onnx_path)
    for tensor in graph_inputs + graph_outputs:
        if not tensor.dims or tensor.dims[0] != -1:
            raise RepositoryError(
                f"{onnx_path}: tensor '{tensor.name}' has no dynamic batch axis: "
                "re-export with `tritonkit export` (dynamic batch and sequence axes)"
            )
    unknown = [t.name for t in graph_inputs if t.name not in TOKEN_INPUTS]
    if unknown:
        raise RepositoryError(
            f"{onnx_path}: inputs {unknown} are not tokenizer outputs {list(TOKEN_INPUTS)}"
        )
    classify = spec.task == "text-classification"
    input_names = {t.name for t in graph_inputs}
    batching = (
        DynamicBatching(
            spec.dynamic_batching.max_queue_delay_us, spec.dynamic_batching.preferred_batch_sizes
        )
        if spec.dynamic_batching.enabled
        else None
    )
    onnx_model = ModelPlan(
        name=spec.onnx_name,
        kind="onnx",
        description=f"{spec.task} model exported from {spec.model.name} (ONNX Runtime)",
        max_batch_size=spec.max_batch_size,
        inputs=tuple(_unbatched(t) for t in graph_inputs),
        outputs=tuple(
            _unbatched(t, "labels.txt" if classify and t.name == "probabilities" else None)
            for t in graph_outputs
        ),
        instance_count=spec.instances.model,
        instance_kind="KIND_GPU" if spec.device == "gpu" else "KIND_CPU",
        dynamic_batching=batching,
        gpu_accelerators=_accelerators(spec, [t.name for t in graph_inputs], max_length),
    )
    token_outputs = [Tensor(t.name, "TYPE_INT64", (-1,)) for t in onnx_model.inputs]
    emit_offsets = spec.task == "token-classification"
    if emit_offsets:
        token_outputs.append(Tensor("offsets", "TYPE_INT64", (-1, 2)))
    tokenizer = ModelPlan(
        name=spec.tokenizer_name,
        kind="python",
        description="tokenizer (Python backend: tokenizers + numpy); pads each request",
        max_batch_size=spec.max_batch_size,
        inputs=(Tensor("TEXT", "TYPE_STRING", (1,)),),
        outputs=tuple(token_outputs),
        instance_count=spec.instances.tokenizer,
        dynamic_batching=batching,
        parameters={
            "max_length": str(max_length),
            "pad_token_id": str(pad_token_id),
            "emit_token_type_ids": "1" if "token_type_ids" in input_names else "0",
            "emit_offsets": "1" if emit_offsets else "0",
            "pad_to_multiple_of": "0",
            "buckets": ",".join(str(b) for b in buckets),
        },
    )
    ensemble_outputs = [
        Tensor(
            t.name.upper(),
            t.data_type,
            t.dims,
            "labels.txt" if classify and t.name == "probabilities" else None,
        )
        for t in onnx_model.outputs
    ]
    output_map = {t.name: t.name.upper() for t in onnx_model.outputs}
    tokenizer_output_map = {t.name: t.name for t in onnx_model.inputs}
    if emit_offsets:
        ensemble_outputs.append(Tensor("OFFSETS", "TYPE_INT64", (-1, 2)))
        tokenizer_output_map["offsets"] = "OFFSETS"
    ensemble = EnsemblePlan(
        name=spec.name,
        description=f"{spec.task}: raw text in (TEXT), results out",
        max_batch_size=spec.max_batch_size,
        inputs=(Tensor("TEXT", "TYPE_STRING", (1,)),),
        outputs=tuple(ensemble_outputs),
        steps=(
            EnsembleStep(tokenizer.name, {"TEXT": "TEXT"}, tokenizer_output_map),
            EnsembleStep(onnx_model.name, {t.name: t.name for t in onnx_model.inputs}, output_map),
        ),
    )
    files = [
        FileEntry(f"{tokenizer.name}/1/model.py", source=triton_model_source("tokenizer")),
        FileEntry(f"{tokenizer.name}/1/tokenizer.json", source=tokenizer_file),
        FileEntry(f"{ensemble.name}/1/.keep", content=""),
    ]
    if labels:
        text = "".join(f"{label}\n" for label in labels)
        files.append(FileEntry(f"{onnx_model.name}/labels.txt", content=text))
        files.append(FileEntry(f"{ensemble.name}/labels.txt", content=text))
    return RepositoryPlan(spec, (tokenizer, onnx_model), ensemble, tuple(files))


def _accelerators(
    spec: DeploymentSpec, inputs: list[str], max_length: int
) -> tuple[ExecutionAccelerator, ...]:
    """ONNX Runtime's TensorRT execution accelerator, when the spec asks for it (GPU only)."""
    if not spec.tensorrt.accelerator:
        return ()
    if spec.device != "gpu":
        raise RepositoryError(
            "tensorrt.accelerator: ONNX Runtime's TensorRT accelerator needs device: gpu"
        )
    from tritonkit.trt_triton import onnx_trt_accelerator

    return (
        onnx_trt_accelerator(
            spec.tensorrt.precision,
            inputs,
            spec.max_batch_size,
            max_length,
            workspace_bytes=spec.tensorrt.workspace_mib << 20,
            engine_cache_path=f"{spec.tensorrt.engine_cache_path.rstrip('/')}/{spec.name}",
            optimization_level=spec.tensorrt.optimization_level,
        ),
    )


def render_plan(plan: RepositoryPlan) -> dict[str, str]:
    """Every config.pbtxt, rendered and parsed; keyed by relative path."""
    rendered = {f"{m.name}/config.pbtxt": render_config(m) for m in plan.models}
    rendered[f"{plan.ensemble.name}/config.pbtxt"] = render_config(plan.ensemble)
    return rendered


PLACEHOLDER_MARK = "# model_repository/"


def is_placeholder(output: Path) -> bool:
    """The project's committed model_repository/ holds only a README explaining the layout;
    generating into it loses nothing, so it needs no --force."""
    if not output.is_dir():
        return False
    entries = list(output.iterdir())
    if [p.name for p in entries] != ["README.md"]:
        return False
    return entries[0].read_text(encoding="utf-8", errors="replace").startswith(PLACEHOLDER_MARK)


def check_output(output: Path, force: bool) -> None:
    """Refuse early, before any work, to overwrite an existing output without --force."""
    if output.exists() and not force and not is_placeholder(output):
        raise RepositoryError(
            f"{output}: output already exists: pass --force to replace it or choose another -o"
        )
    if output.exists() and not output.is_dir():
        raise RepositoryError(f"{output}: exists and is not a folder: choose another -o")


@contextmanager
def staging_dir(output: Path) -> Iterator[Path]:
    """A temporary folder beside `output` (same filesystem, so the final move is a rename)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_files(root: Path, plan: RepositoryPlan, extra: dict[str, str]) -> None:
    for rel, text in {**render_plan(plan), **extra}.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    for entry in plan.files:
        target = root / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if entry.source is not None:
            shutil.copyfile(entry.source, target)
        else:
            target.write_text(entry.content or "", encoding="utf-8")


def commit(staged: Path, output: Path, force: bool) -> None:
    """Move a validated staging folder into place; the old output is removed only after."""
    check_output(output, force)
    old: Path | None = None
    if output.exists():
        old = output.parent / f".{output.name}.old-{os.getpid()}"
        output.rename(old)
    try:
        staged.rename(output)
    except OSError:
        if old is not None:
            old.rename(output)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def metadata(plan: RepositoryPlan, extra: dict[str, object]) -> str:
    return json.dumps(
        {"spec": plan.spec.model_dump(mode="json"), **extra}, indent=2, sort_keys=False
    )
