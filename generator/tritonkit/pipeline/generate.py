"""`tritonkit generate`: spec -> model (export, a variant, or a TensorRT plan) -> plan ->
render -> validate -> atomic move. The library entry point of the main job."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from tritonkit.errors import ModelSourceError, RepositoryError, SpecError
from tritonkit.model.export import export_model
from tritonkit.model.inspect import ModelInfo, inspect_model_dir, load_tokenizer_file
from tritonkit.model.onnx_io import onnx_io
from tritonkit.model.runners import reference_tokenizer_file
from tritonkit.pipeline.model_source import check_given_onnx, tensorrt_source, tensorrt_target
from tritonkit.repository.buckets import corpus_buckets
from tritonkit.repository.docs import documents
from tritonkit.repository.layout import ServingLayout, resolve_layout
from tritonkit.repository.plan import ModelSource, OnnxModel, RepositoryPlan, plan_repository
from tritonkit.repository.writer import check_output, staging_dir, write_repository
from tritonkit.runtime.tokenizer import TokenizerParams
from tritonkit.spec import TENSORRT_INT8_VARIANT, TRT_VARIANTS, DeploymentSpec, bucket_count

Progress = Callable[[str], None]


@dataclass
class GenerateResult:
    output: Path
    plan: RepositoryPlan
    max_length: int
    export_max_diff: float | None
    timings: dict[str, float] = field(default_factory=dict)
    variant: dict[str, Any] | None = None  # the deployed variant's record (not for fp32)
    layout: ServingLayout | None = None


def pad_token_id(model_dir: Path, tokenizer: Tokenizer) -> int:
    """The padding id: tokenizer_config.json's pad_token, else the tokenizer's own padding."""
    config_path = model_dir / "tokenizer_config.json"
    if config_path.is_file():
        try:
            pad = json.loads(config_path.read_text(encoding="utf-8")).get("pad_token")
        except (ValueError, AttributeError, UnicodeDecodeError):
            raise ModelSourceError(f"{config_path}: not a JSON object: fix or re-save it") from None
        if isinstance(pad, dict):
            pad = pad.get("content")
        pad_id = tokenizer.token_to_id(pad) if isinstance(pad, str) else None
        if pad_id is not None:
            return int(pad_id)
    if tokenizer.padding is not None:
        return int(tokenizer.padding["pad_id"])
    return 0


def resolve_max_length(spec: DeploymentSpec, info: ModelInfo) -> int:
    if spec.max_sequence_length is None:
        return info.max_length
    if spec.max_sequence_length > info.max_length:
        raise RepositoryError(
            f"max_sequence_length: {spec.max_sequence_length} exceeds the model's maximum "
            f"{info.max_length}: lower it"
        )
    return spec.max_sequence_length


def resolve_buckets(spec: DeploymentSpec, tokenizer_file: Path, max_length: int) -> tuple[int, ...]:
    """The tokenizer's length buckets: as given, or derived from a corpus (least padding)."""
    if spec.tokenizer.buckets:
        return tuple(min(b, max_length) for b in spec.tokenizer.buckets)
    count = bucket_count(spec.tokenizer, spec.device)
    if count == 0:
        return ()
    return corpus_buckets(tokenizer_file, spec.tokenizer.bucket_corpus, count, max_length)


def _model_source(
    spec: DeploymentSpec, info: ModelInfo, max_length: int, work: Path, progress: Progress
) -> tuple[OnnxModel, dict[str, Any]]:
    """The ONNX model to serve (or build a plan from), and what tritonkit.json records of it."""
    if spec.export.onnx is not None:
        progress(f"using the given ONNX model {spec.export.onnx}")
        return OnnxModel(spec.export.onnx), {"export_max_abs_diff": None, "variant": None}
    if spec.variant not in ("fp32", "trt-fp16"):
        from tritonkit.pipeline.variant import deploy_variant

        # trt-int8 is built from the int8-qdq variant, gated like every variant
        chosen = spec.model_copy(update={"variant": TENSORRT_INT8_VARIANT})
        deployed = deploy_variant(
            chosen if spec.variant == "trt-int8" else spec, info, max_length, work, progress
        )
        record_file = work / "variant.json"
        record_file.write_text(json.dumps(deployed.record, indent=2) + "\n", encoding="utf-8")
        source = OnnxModel(deployed.onnx, {"variant.json": record_file})
        return source, {"export_max_abs_diff": None, "variant": deployed.record}
    progress(f"exporting {spec.model} to ONNX ({spec.task})")
    result = export_model(
        spec.model, spec.task, work / "export", opset=spec.export.opset, atol=spec.export.atol
    )
    source = OnnxModel(result.onnx_path, {"export.json": work / "export" / "export.json"})
    return source, {"export_max_abs_diff": result.max_abs_diff, "variant": None}


def _build_plan_here(model: str, timing_cache: Path | None) -> Callable[[Path], None]:
    """Where TensorRT exists: build the deferred plan in the staged repository, so that it is
    validated with the rest before the repository moves into place."""

    def build(staged: Path) -> None:
        from tritonkit.tensorrt.build import RECIPE_FILE, build_from_recipe

        folder = staged / model
        recipe = json.loads((folder / RECIPE_FILE).read_text(encoding="utf-8"))
        build_from_recipe(folder, recipe, cache_dir=timing_cache)

    return build


def generate(
    spec: DeploymentSpec, progress: Progress = lambda _: None, *, defer_plan: bool = False
) -> GenerateResult:
    """Build the repository for `spec` at spec.output; nothing is left behind on failure.

    A trt-* variant's plan is built here where TensorRT exists; with `defer_plan` the model
    folder holds its recipe and build script instead (the serving pod builds it)."""
    timings: dict[str, float] = {}
    output = spec.output.resolve()
    protected = (spec.model,)
    check_output(output, spec.force, protected)
    if defer_plan and spec.variant not in TRT_VARIANTS:
        raise SpecError(
            f"--defer-plan: variant {spec.variant} has no TensorRT plan to defer (only "
            f"{', '.join(TRT_VARIANTS)}): drop --defer-plan"
        )
    if spec.variant in TRT_VARIANTS:
        tensorrt_target(spec)  # refuse early an image whose TensorRT is unknown
    if spec.variant in TRT_VARIANTS and not defer_plan:
        from tritonkit.tensorrt.build import choose_builder

        choose_builder(spec.model / "model.onnx")  # refuse early where no plan can be built
    start = time.perf_counter()
    info = inspect_model_dir(spec.model, spec.task)
    max_length = resolve_max_length(spec, info)
    tokenizer = load_tokenizer_file(spec.model / "tokenizer.json")
    if spec.export.onnx is not None:  # before any folder is made
        check_given_onnx(spec.export.onnx, info)
    with staging_dir(output) as work:
        tokenizer_file = reference_tokenizer_file(spec.model, work / "tokenizer.json")
        source, record = _model_source(spec, info, max_length, work, progress)
        timings["export"] = time.perf_counter() - start
        start = time.perf_counter()
        progress("rendering and validating the Triton model repository")
        inputs, _ = onnx_io(source.onnx)
        params = TokenizerParams(
            max_length=max_length,
            pad_token_id=pad_token_id(spec.model, tokenizer),
            emit_token_type_ids="token_type_ids" in {t.name for t in inputs},
            emit_offsets=info.task_record.emits_offsets,
            buckets=resolve_buckets(spec, tokenizer_file, max_length),
        )
        model_source: ModelSource = source
        build = None
        if spec.variant in TRT_VARIANTS:
            model_source = tensorrt_source(spec, source.onnx, params)
            if not defer_plan:
                progress(f"building the TensorRT plan ({spec.variant})")
                build = _build_plan_here(spec.model_name, spec.tensorrt.timing_cache)
        layout = resolve_layout(spec, params.buckets)
        plan = plan_repository(spec, model_source, tokenizer_file, info.labels, params, layout)
        record |= {
            "max_length": max_length,
            "buckets": list(params.buckets),
            "layout": layout.as_record(),
        }
        plan = plan.with_files(*documents(plan, spec, info.labels, record))
        write_repository(plan, output, force=spec.force, protected=protected, before=build)
        timings["repository"] = time.perf_counter() - start
    return GenerateResult(
        output, plan, max_length, record["export_max_abs_diff"], timings, record["variant"], layout
    )
