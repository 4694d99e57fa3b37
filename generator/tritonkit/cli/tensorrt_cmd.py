"""`tritonkit build-plan`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import click

from tritonkit.cli.common import PATH, SPEC_OPTION
from tritonkit.cli.options import add_flags, load_section, section_flags
from tritonkit.spec import TensorRTSpec

PLAN_FLAGS = section_flags(
    TensorRTSpec, "tensorrt",
    exclude=("tensorrt.accelerator", "tensorrt.precision", "tensorrt.engine_cache_path"),
)  # fmt: skip


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
    "-o", "--output", "model_dir", type=PATH, required=True,
    help="Model folder REPO/NAME: writes NAME/1/<plan>, NAME/1/tensorrt.json, NAME/config.pbtxt.",
)  # fmt: skip
@click.option("--max-length", type=click.IntRange(1), required=True, help="Tokenizer max_length.")
@click.option(
    "--buckets", default="", callback=_buckets,
    help="Tokenizer buckets, e.g. 16,32,64,128 (none: it pads each request to its own length).",
)  # fmt: skip
@click.option("--max-batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option(
    "--profiles", "layout", type=click.Choice(["per-bucket", "single"]),
    help="One profile per bucket, or one range [default: per-bucket with buckets].",
)  # fmt: skip
@click.option(
    "--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp16",
    show_default=True,
    help="int8 takes a TensorRT-valid QDQ model (explicit quantization).",
)  # fmt: skip
@SPEC_OPTION
@add_flags(PLAN_FLAGS)
@click.option("--triton-image", help="Triton image the plan is built in and served by.")
@click.option("--instances", type=click.IntRange(1), default=1, show_default=True)
@click.option(
    "--builder", type=click.Choice(["api", "trtexec"]),
    help="[default: the TensorRT Python API if it imports, else trtexec]",
)  # fmt: skip
@click.option("--model-version", type=click.IntRange(1), default=1, show_default=True)
def build_plan(onnx_path: Path, model_dir: Path, spec_file: Path | None, **values: Any) -> None:
    """Build a TensorRT plan whose profiles cover the tokenizer's buckets (needs a GPU node).

    Uses the TensorRT Python API when it imports, else trtexec (NVIDIA's images have
    both); elsewhere it stops and says so. Writes the plan, its metadata (TensorRT version,
    GPU, compute capability, profiles) and the model's tensorrt_plan config.pbtxt.

    \b
        tritonkit build-plan repo/minilm_onnx/1/model.onnx -o repo/minilm_trt \\
            --max-length 256 --buckets 16,32,64,256 --max-batch-size 32 --precision fp16 \\
            --timing-cache /cache/minilm.timing --triton-image nvcr.io/nvidia/tritonserver:24.10-py3
    """
    from tritonkit.pipeline.plans import build_model_plan
    from tritonkit.runtime.tokenizer import TokenizerParams

    options = load_section(TensorRTSpec, "tensorrt", spec_file, PLAN_FLAGS, values)
    tokenizer = TokenizerParams(max_length=values["max_length"], buckets=values["buckets"])
    record = build_model_plan(
        onnx_path, model_dir, tokenizer, options,
        precision=values["precision"], max_batch_size=values["max_batch_size"],
        instances=values["instances"], triton_image=values["triton_image"],
        layout=values["layout"], builder=cast(Any, values["builder"]),
        model_version=values["model_version"],
    )  # fmt: skip
    version_dir = model_dir / str(values["model_version"])
    click.echo(
        f"built {version_dir / record.file} with {record.builder}: TensorRT "
        f"{record.tensorrt_version} on {record.gpu_name} (compute capability "
        f"{record.compute_capability}), {len(record.profiles)} profile(s), {record.precision}"
    )
    click.echo(f"wrote {version_dir / 'tensorrt.json'} and {model_dir / 'config.pbtxt'}")


COMMANDS = (build_plan,)
