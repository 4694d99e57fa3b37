"""`tritonkit build-plan` as a library call: one TensorRT plan for a model folder, its record
and its `tensorrt_plan` config (GPU nodes only: elsewhere it stops with one line)."""

from __future__ import annotations

from pathlib import Path

from tritonkit.errors import SpecError
from tritonkit.repository.backends.tensorrt import model_plan_from_build
from tritonkit.repository.pbtxt import DynamicBatching
from tritonkit.repository.writer import write_model_config
from tritonkit.runtime.tokenizer import TokenizerParams
from tritonkit.spec import TensorRTSpec
from tritonkit.tensorrt.build import (
    Builder,
    BuildOptions,
    PlanRecord,
    Precision,
    build_plan,
    read_metadata,
)
from tritonkit.tensorrt.profiles import ProfileLayout, plan_profiles
from tritonkit.tensorrt.versions import TensorRTRelease, serving_tensorrt


def build_model_plan(
    onnx_path: Path,
    model_dir: Path,
    tokenizer: TokenizerParams,
    options: TensorRTSpec,
    *,
    precision: Precision,
    max_batch_size: int,
    instances: int = 1,
    triton_image: str | None = None,
    layout: ProfileLayout | None = None,
    builder: Builder | None = None,
    model_version: int = 1,
) -> PlanRecord:
    """Build the plan into model_dir/VERSION/, record it, and write model_dir/config.pbtxt."""
    try:
        profiles = plan_profiles(tokenizer, max_batch_size, options.opt_batch_size, layout)
    except ValueError as e:  # options that cannot make a profile: bad input, exit 2
        raise SpecError(str(e)) from None
    build = BuildOptions.from_section(options, profiles, precision, triton_image)
    serving: TensorRTRelease | None = None
    if triton_image is not None:
        serving = serving_tensorrt(triton_image, options.tensorrt_version)
    version_dir = model_dir / str(model_version)
    record = build_plan(onnx_path, version_dir, build, builder, serving)
    batch_sizes = (1, profiles[0].opt[0], max_batch_size)
    model = model_plan_from_build(
        onnx_path,
        model_dir,
        read_metadata(version_dir),
        max_batch_size=max_batch_size,
        instance_count=instances,
        dynamic_batching=DynamicBatching(),
        graph_batches=batch_sizes if options.cuda_graphs else None,
    )
    write_model_config(model_dir, model)
    return record
