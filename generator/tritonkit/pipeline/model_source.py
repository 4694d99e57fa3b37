"""Where the served model comes from when it is not a fresh export: a given ONNX file (checked
against the model folder) or a TensorRT plan built from the export."""

from __future__ import annotations

from pathlib import Path

from tritonkit.errors import ExportError
from tritonkit.model.inspect import ModelInfo
from tritonkit.model.onnx_io import check_onnx_file, graph_facts, onnx_io
from tritonkit.repository.plan import TensorRTModel
from tritonkit.runtime.tokenizer import TokenizerParams
from tritonkit.spec import DeploymentSpec

_FIX = "pass the ONNX file exported from this model folder (`tritonkit export`)"


def check_given_onnx(source: Path, info: ModelInfo) -> None:
    """A user's ONNX file must be a graph tritonkit exported for this task, from this model
    folder: same inputs, a vocabulary that holds every token id, one score per label."""
    if source.is_dir():
        raise ExportError(
            f"{source}: export.onnx: is a folder, not an ONNX file: pass the path of its model.onnx"
        )
    if not source.is_file():
        raise ExportError(f"{source}: export.onnx: not an ONNX file: pass the model.onnx path")
    check_onnx_file(source)
    _, outputs = onnx_io(source)
    expected = set(info.task_record.output_names)
    if not expected <= {t.name for t in outputs}:
        raise ExportError(
            f"{source}: graph outputs {sorted(t.name for t in outputs)} lack {sorted(expected)} "
            f"for task {info.task}: export it with `tritonkit export --task {info.task}`"
        )
    problems = graph_mismatches(source, info)
    if problems:
        raise ExportError("\n".join(problems))


def graph_mismatches(source: Path, info: ModelInfo) -> list[str]:
    """Every way the graph does not fit the model folder, one line each."""
    task = info.task_record
    facts = graph_facts(source, task.raw_output, task.label_output)
    problems = []
    if set(facts.input_names) != set(info.input_names):
        problems.append(
            f"{source}: graph inputs ({', '.join(facts.input_names)}) differ from what the "
            f"tokenizer feeds a {info.model_type} model ({', '.join(info.input_names)}): {_FIX}"
        )
    if facts.embedding_rows is not None and info.vocab_size > facts.embedding_rows:
        problems.append(
            f"{source}: the graph's embedding table has {facts.embedding_rows} rows but "
            f"{info.model_dir / 'tokenizer.json'} has {info.vocab_size} token ids: {_FIX}"
        )
    if task.needs_labels and facts.class_count not in (None, len(info.labels)):
        problems.append(
            f"{source}: the graph scores {facts.class_count} classes but "
            f"{info.model_dir / 'config.json'} has {len(info.labels)} labels (id2label): {_FIX}"
        )
    return problems


def tensorrt_source(
    spec: DeploymentSpec, onnx: Path, tokenizer: TokenizerParams, work: Path
) -> TensorRTModel:
    """Build the plan for `spec`'s trt-* variant from `onnx` (on a machine with TensorRT)."""
    from tritonkit.tensorrt.build import BuildOptions, build_plan
    from tritonkit.tensorrt.profiles import plan_profiles

    trt = spec.tensorrt
    options = BuildOptions(
        profiles=plan_profiles(tokenizer, spec.max_batch_size, trt.opt_batch_size),
        precision="int8" if spec.variant == "trt-int8" else "fp16",
        workspace_mib=trt.workspace_mib,
        timing_cache=trt.timing_cache,
        optimization_level=trt.optimization_level,
        hardware_compatibility=trt.hardware_compatibility,
        version_compatible=trt.version_compatible,
        per_compute_capability=trt.per_cc,
        triton_image=spec.triton_image,
    )
    version_dir = work / "plan" / "1"
    record = build_plan(onnx, version_dir, options)
    return TensorRTModel(onnx, version_dir, record, trt.per_cc, trt.cuda_graphs)
