"""Where the served model comes from when it is not a fresh export: a given ONNX file (checked
against the model folder) or a TensorRT plan built from the export."""

from __future__ import annotations

from pathlib import Path

from tritonkit.errors import ExportError, PlanBuildError
from tritonkit.model.inspect import ModelInfo
from tritonkit.model.onnx_io import check_onnx_file, graph_facts, onnx_io
from tritonkit.repository.plan import TensorRTModel
from tritonkit.runtime.tokenizer import TokenizerParams
from tritonkit.spec import DeploymentSpec
from tritonkit.tasks import Precision
from tritonkit.tensorrt.versions import TensorRTRelease

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


def tensorrt_target(spec: DeploymentSpec) -> TensorRTRelease:
    """The TensorRT the spec's Triton image runs, refusing before any work what cannot be
    served: an image whose TensorRT is unknown, a TensorRT 8.x target (its plans take int32
    token inputs and the tokenizer sends int64: onnx2trt_utils.cpp 8.6-GA :357-358;
    tensorrt_backend binds INT64 only from r24.05), per-cc plan names (the pod builds one plan,
    for its own GPU)."""
    from tritonkit.tensorrt.versions import serving_tensorrt, version_tuple

    serving = serving_tensorrt(spec.triton_image, spec.tensorrt.tensorrt_version)
    if version_tuple(serving.version) < (10,):
        raise PlanBuildError(
            f"{spec.triton_image} runs TensorRT {serving.version}: TensorRT 8 plans take int32 "
            "token inputs but the tokenizer sends int64 (TensorRT 10 keeps INT64; "
            "tensorrt_backend binds it from 24.05): deploy a Triton image >= 24.05"
        )
    if spec.tensorrt.per_cc:
        raise PlanBuildError(
            "tensorrt.per_cc: generate builds one plan on the GPU that serves it; per-cc plan "
            "names are for tritonkit build-plan into a shared model folder"
        )
    return serving


def tensorrt_source(spec: DeploymentSpec, onnx: Path, tokenizer: TokenizerParams) -> TensorRTModel:
    """The recipe for `spec`'s trt-* variant from `onnx` (the unfused export, or the int8-qdq
    model for trt-int8), for the TensorRT the spec's Triton image runs."""
    from tritonkit.repository.plan import PLAN_ONNX
    from tritonkit.tensorrt.profiles import plan_profiles
    from tritonkit.tensorrt.recipe import BuildOptions, make_recipe

    trt = spec.tensorrt
    serving = tensorrt_target(spec)
    profiles = plan_profiles(tokenizer, spec.max_batch_size, trt.opt_batch_size)
    precision: Precision = "int8" if spec.variant == "trt-int8" else "fp16"
    options = BuildOptions.from_section(trt, profiles, precision, spec.triton_image)
    recipe = make_recipe(onnx, options, serving, PLAN_ONNX)
    batches = (1, profiles[0].opt[0], spec.max_batch_size) if trt.cuda_graphs else ()
    return TensorRTModel(onnx, recipe, trt.cuda_graphs, batches)
