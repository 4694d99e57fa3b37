"""`tritonkit generate`: spec -> export -> plan -> render -> validate -> atomic move."""

from __future__ import annotations

import json
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from tritonkit import __version__
from tritonkit.errors import CheckError, ExportError, RepositoryError
from tritonkit.export import ModelInfo, check_onnx_file, export_model, inspect_model_dir
from tritonkit.pbtxt import environment
from tritonkit.repository import (
    RepositoryPlan,
    check_output,
    commit,
    metadata,
    plan_repository,
    staging_dir,
    write_files,
)
from tritonkit.resources import package_versions
from tritonkit.spec import TRT_VARIANTS, DeploymentSpec
from tritonkit.validate import validate_repository

Progress = Callable[[str], None]
TASK_OUTPUTS = {
    "feature-extraction": ("embeddings",),
    "text-classification": ("probabilities",),
    "token-classification": ("label_ids", "scores"),
}


@dataclass
class GenerateResult:
    output: Path
    plan: RepositoryPlan
    max_length: int
    export_max_diff: float | None
    timings: dict[str, float] = field(default_factory=dict)
    variant: dict[str, Any] | None = None  # the deployed variant's record (not for fp32)


def _versions() -> dict[str, str]:
    names = ("torch", "transformers", "optimum-onnx", "onnx", "onnxruntime", "tokenizers")
    return {
        "tritonkit": __version__,
        "python": platform.python_version(),
        **package_versions(names),
    }


def pad_token_id(model_dir: Path, tokenizer: Tokenizer) -> int:
    """The padding id: tokenizer_config.json's pad_token, else the tokenizer's own padding."""
    config_path = model_dir / "tokenizer_config.json"
    if config_path.is_file():
        pad = json.loads(config_path.read_text(encoding="utf-8")).get("pad_token")
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


def _use_given_onnx(source: Path, target: Path, task: str) -> None:
    check_onnx_file(source)
    shutil.copyfile(source, target)
    from tritonkit.repository import onnx_io

    _, outputs = onnx_io(target)
    expected = set(TASK_OUTPUTS[task])
    if not expected <= {t.name for t in outputs}:
        raise ExportError(
            f"{source}: graph outputs {sorted(t.name for t in outputs)} lack {sorted(expected)} "
            f"for task {task}: export it with `tritonkit export --task {task}`"
        )


def _docs(
    plan: RepositoryPlan,
    info: ModelInfo,
    max_length: int,
    output: Path,
    variant: dict[str, Any] | None,
) -> dict[str, str]:
    env = environment()
    versions = _versions()
    common = {"spec": plan.spec, "version": __version__}
    readme = env.get_template("repository_README.md.j2").render(
        **common,
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        repo_hint=str(output),
        ensemble=plan.ensemble,
        models=plan.models,
        labels=info.labels,
        max_length=max_length,
        versions=versions,
        variant=variant,
    )
    dockerfile = env.get_template("Dockerfile.j2").render(
        **common,
        triton_version_hint="2.51.0 = NGC 24.10",
        tokenizers_version=versions["tokenizers"],
    )
    return {"README.md": readme, "Dockerfile": dockerfile}


def resolve_buckets(spec: DeploymentSpec, tokenizer_file: Path, max_length: int) -> tuple[int, ...]:
    """The tokenizer's length buckets: as given, or derived from a corpus (least padding)."""
    if spec.tokenizer.buckets:
        return tuple(min(b, max_length) for b in spec.tokenizer.buckets)
    if spec.tokenizer.bucket_count == 0:
        return ()
    from tritonkit.buckets import optimal_buckets, token_lengths
    from tritonkit.check import load_texts
    from tritonkit.loadtest import default_corpus

    corpus = spec.tokenizer.bucket_corpus or default_corpus()
    try:
        texts = load_texts(corpus)
    except CheckError as e:
        raise RepositoryError(f"tokenizer.bucket_corpus: {e}") from None
    lengths = token_lengths(tokenizer_file, texts, max_length)
    return optimal_buckets(lengths, spec.tokenizer.bucket_count, max_length)


def _require_tensorrt(spec: DeploymentSpec) -> None:
    """TensorRT variants: refuse early, before any export, where no plan can be built."""
    if spec.variant not in TRT_VARIANTS:
        return
    if spec.device != "gpu":
        raise RepositoryError(
            f"variant {spec.variant}: TensorRT plans are for GPU targets: set device: gpu"
        )
    from tritonkit.tensorrt import choose_builder

    choose_builder(spec.model / "model.onnx")


def _build_trt(
    spec: DeploymentSpec,
    plan: RepositoryPlan,
    staged: Path,
    buckets: tuple[int, ...],
    max_length: int,
) -> RepositoryPlan:
    """Replace the ONNX model with a TensorRT plan built from it (in the target image)."""
    from dataclasses import replace

    from tritonkit.tensorrt import BuildOptions, build_plan
    from tritonkit.trt_profiles import plan_profiles
    from tritonkit.trt_triton import plan_tensorrt_model

    trt = spec.tensorrt
    options = BuildOptions(
        profiles=plan_profiles(buckets, max_length, spec.max_batch_size, trt.opt_batch_size),
        precision="int8" if spec.variant == "trt-int8" else "fp16",
        workspace_mib=trt.workspace_mib,
        timing_cache=trt.timing_cache,
        optimization_level=trt.optimization_level,
        hardware_compatibility=trt.hardware_compatibility,
        version_compatible=trt.version_compatible,
        per_compute_capability=trt.per_cc,
        triton_image=spec.triton_image,
    )
    onnx_model = plan.models[1]
    name = f"{spec.name}_trt"
    onnx_dir = staged / onnx_model.name
    record = build_plan(onnx_dir / "1" / "model.onnx", staged / name / "1", options)
    shutil.rmtree(onnx_dir)
    model = plan_tensorrt_model(
        onnx_model,
        name=name,
        io_types=record.io_types,
        profile_count=len(record.profiles),
        cc_model_filenames={record.compute_capability: record.file} if trt.per_cc else None,
        cuda_graphs=trt.cuda_graphs,
    )
    first, second = plan.ensemble.steps
    ensemble = replace(plan.ensemble, steps=(first, replace(second, model_name=name)))
    prefix = f"{onnx_model.name}/"
    files = tuple(
        replace(f, path=name + "/" + f.path[len(prefix) :]) if f.path.startswith(prefix) else f
        for f in plan.files
    )
    return replace(plan, models=(plan.models[0], model), ensemble=ensemble, files=files)


def generate(spec: DeploymentSpec, progress: Progress = lambda _: None) -> GenerateResult:
    """Build the repository for `spec` at spec.output; nothing is left behind on failure."""
    timings: dict[str, float] = {}
    if spec.export.onnx is not None and spec.variant != "fp32":
        raise RepositoryError(
            f"export.onnx ({spec.export.onnx}) and variant {spec.variant} exclude each other: "
            "variants are built from the model folder; drop one of them"
        )
    output = spec.output.resolve()
    check_output(output, spec.force)
    _require_tensorrt(spec)
    start = time.perf_counter()
    info = inspect_model_dir(spec.model, spec.task)
    max_length = resolve_max_length(spec, info)
    tokenizer_file = spec.model / "tokenizer.json"
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    with staging_dir(output) as staged:
        version_dir = staged / spec.onnx_name / "1"
        version_dir.mkdir(parents=True)
        max_diff: float | None = None
        variant: dict[str, Any] | None = None
        if spec.export.onnx is not None:
            progress(f"using the given ONNX model {spec.export.onnx}")
            _use_given_onnx(spec.export.onnx, version_dir / "model.onnx", spec.task)
        elif spec.variant not in ("fp32", *TRT_VARIANTS):
            from tritonkit.select_variant import deploy_variant

            deployed = deploy_variant(spec, info, max_length, version_dir / "model.onnx", progress)
            variant = deployed.record
        else:
            progress(f"exporting {spec.model} to ONNX ({spec.task})")
            result = export_model(
                spec.model, spec.task, version_dir, opset=spec.export.opset, atol=spec.export.atol
            )
            max_diff = result.max_abs_diff
            (version_dir / "export.json").replace(staged / spec.onnx_name / "export.json")
        timings["export"] = time.perf_counter() - start
        start = time.perf_counter()
        progress("rendering and validating the Triton model repository")
        buckets = resolve_buckets(spec, tokenizer_file, max_length)
        plan = plan_repository(
            spec,
            version_dir / "model.onnx",
            tokenizer_file,
            info.labels,
            max_length,
            pad_token_id(spec.model, tokenizer),
            buckets,
        )
        if spec.variant in TRT_VARIANTS:
            progress(f"building the TensorRT plan ({spec.variant})")
            plan = _build_trt(spec, plan, staged, buckets, max_length)
        extra = _docs(plan, info, max_length, spec.output, variant)
        extra["tritonkit.json"] = metadata(
            plan,
            {
                "versions": _versions(),
                "max_length": max_length,
                "export_max_abs_diff": max_diff,
                "buckets": list(buckets),
                "variant": variant,
            },
        )
        write_files(staged, plan, extra)
        problems = validate_repository(staged)
        if problems:
            raise RepositoryError("generated repository failed validation:\n" + "\n".join(problems))
        commit(staged, output, spec.force)
        timings["repository"] = time.perf_counter() - start
    return GenerateResult(output, plan, max_length, max_diff, timings, variant)
