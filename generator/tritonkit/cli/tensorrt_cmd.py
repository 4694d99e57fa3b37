"""`tritonkit build-plan`."""

from __future__ import annotations

from pathlib import Path

import click

_PATH = click.Path(path_type=Path)


def _buckets(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        buckets = tuple(int(b) for b in value.split(",") if b.strip())
    except ValueError:
        raise click.BadParameter(
            f"'{value}': use comma-separated lengths, e.g. 16,32,128"
        ) from None
    if any(b < 1 for b in buckets):
        raise click.BadParameter(f"'{value}': bucket lengths must be positive")
    return buckets


@click.command("build-plan")
@click.argument("onnx_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    "model_dir",
    type=_PATH,
    required=True,
    help="Model folder REPO/NAME: writes NAME/1/<plan>, NAME/1/tensorrt.json, NAME/config.pbtxt.",
)
@click.option("--max-length", type=click.IntRange(1), required=True, help="Tokenizer max_length.")
@click.option(
    "--buckets",
    default="",
    callback=_buckets,
    help="Tokenizer buckets, e.g. 16,32,64,128 (none: it pads each request to its own length).",
)
@click.option("--max-batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option(
    "--opt-batch-size", type=click.IntRange(1), help="Batch TensorRT tunes for [default: max]."
)
@click.option(
    "--profiles",
    "layout",
    type=click.Choice(["per-bucket", "single"]),
    help="One profile per bucket, or one range [default: per-bucket with buckets].",
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "fp16", "int8"]),
    default="fp16",
    show_default=True,
    help="int8 takes the QDQ model of the int8-static variant (explicit quantization).",
)
@click.option("--workspace-mib", type=click.IntRange(1), default=4096, show_default=True)
@click.option("--timing-cache", type=_PATH, help="Timing cache file, reused across builds.")
@click.option("--optimization-level", type=click.IntRange(0, 5), default=3, show_default=True)
@click.option(
    "--hardware-compatibility",
    type=click.Choice(["none", "ampere+"]),
    default="none",
    show_default=True,
    help="ampere+: one plan for every GPU from Ampere on, somewhat slower.",
)
@click.option(
    "--version-compatible",
    is_flag=True,
    help="Loadable by later TensorRT 1x.y (server needs version-compatible=true).",
)
@click.option(
    "--per-cc", is_flag=True, help="Name the plan model_sm<cc>.plan (cc_model_filenames)."
)
@click.option("--triton-image", help="Triton image the plan is built in and served by.")
@click.option("--instances", type=click.IntRange(1), default=1, show_default=True)
@click.option("--cuda-graphs", is_flag=True, help="Capture CUDA graphs per bucket and batch.")
@click.option(
    "--builder",
    type=click.Choice(["api", "trtexec"]),
    help="[default: the TensorRT Python API if it imports, else trtexec]",
)
@click.option("--model-version", type=click.IntRange(1), default=1, show_default=True)
def build_plan(
    onnx_path: Path,
    model_dir: Path,
    max_length: int,
    buckets: tuple[int, ...],
    max_batch_size: int,
    opt_batch_size: int | None,
    layout: str | None,
    precision: str,
    workspace_mib: int,
    timing_cache: Path | None,
    optimization_level: int,
    hardware_compatibility: str,
    version_compatible: bool,
    per_cc: bool,
    triton_image: str | None,
    instances: int,
    cuda_graphs: bool,
    builder: str | None,
    model_version: int,
) -> None:
    """Build a TensorRT plan whose profiles cover the tokenizer's buckets (needs a GPU node).

    Uses the TensorRT Python API when it imports, else trtexec on PATH (NVIDIA's images have
    both); elsewhere it stops and says so. Writes the plan, its metadata (TensorRT version,
    GPU, compute capability, profiles) and the model's tensorrt_plan config.pbtxt.

    \b
        tritonkit build-plan repo/minilm_onnx/1/model.onnx -o repo/minilm_trt \\
            --max-length 256 --buckets 16,32,64,256 --max-batch-size 32 --precision fp16 \\
            --timing-cache /cache/minilm.timing --triton-image nvcr.io/nvidia/tritonserver:24.10-py3
    """
    from typing import cast

    from tritonkit.pbtxt import DynamicBatching, render_config
    from tritonkit.tensorrt import (
        Builder,
        BuildOptions,
        HardwareCompatibility,
        Precision,
        read_metadata,
    )
    from tritonkit.tensorrt import build_plan as build
    from tritonkit.trt_profiles import ProfileLayout, plan_profiles
    from tritonkit.trt_triton import cuda_graph_shapes, model_plan_from_build

    try:
        profiles = plan_profiles(
            buckets, max_length, max_batch_size, opt_batch_size, cast(ProfileLayout, layout)
        )
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    options = BuildOptions(
        profiles=profiles,
        precision=cast(Precision, precision),
        workspace_mib=workspace_mib,
        timing_cache=timing_cache,
        optimization_level=optimization_level,
        hardware_compatibility=cast(HardwareCompatibility, hardware_compatibility),
        version_compatible=version_compatible,
        per_compute_capability=per_cc,
        triton_image=triton_image,
    )
    version_dir = model_dir / str(model_version)
    record = build(onnx_path, version_dir, options, cast("Builder | None", builder))
    opt_batch = profiles[0].opt[0]
    model = model_plan_from_build(
        onnx_path,
        model_dir,
        read_metadata(version_dir),
        max_batch_size=max_batch_size,
        instance_count=instances,
        dynamic_batching=DynamicBatching(),
        graph_shapes=(
            cuda_graph_shapes(buckets, max_length, (1, opt_batch, max_batch_size))
            if cuda_graphs
            else None
        ),
    )
    (model_dir / "config.pbtxt").write_text(render_config(model), encoding="utf-8")
    click.echo(
        f"built {version_dir / record.file} with {record.builder}: TensorRT "
        f"{record.tensorrt_version} on {record.gpu_name} (compute capability "
        f"{record.compute_capability}), {len(profiles)} profile(s), {precision}"
    )
    click.echo(f"wrote {version_dir / 'tensorrt.json'} and {model_dir / 'config.pbtxt'}")


COMMANDS = (build_plan,)
