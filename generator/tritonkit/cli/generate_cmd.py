"""`tritonkit export`, `generate` and `validate`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from tritonkit.cli.common import console, offline
from tritonkit.errors import RepositoryError
from tritonkit.spec import TASKS, TRT_VARIANTS, build_spec

_PATH = click.Path(path_type=Path)


@click.command()
@click.argument("model_dir", type=_PATH)
@click.option("--task", type=click.Choice(TASKS), default="feature-extraction", show_default=True)
@click.option("-o", "--output", type=_PATH, required=True, help="Folder for model.onnx.")
@click.option("--opset", type=int, default=None, help="ONNX opset (default: the exporter's).")
@click.option("--atol", type=float, default=1e-4, show_default=True, help="Parity tolerance.")
def export(model_dir: Path, task: str, output: Path, opset: int | None, atol: float) -> None:
    """Export a local Hugging Face model folder to ONNX and check it against PyTorch.

    The task's post-processing is part of the graph: mean pooling + L2 normalisation for
    feature-extraction, softmax for text-classification, argmax + score for
    token-classification. Batch and sequence axes are dynamic.

    \b
        tritonkit export ./all-MiniLM-L6-v2 --task feature-extraction -o ./onnx
    """
    from tritonkit.export import export_model

    offline()
    if output.exists() and any(output.iterdir()):
        raise RepositoryError(f"{output}: output folder is not empty: choose another -o")
    output.mkdir(parents=True, exist_ok=True)
    with console.status(f"exporting {model_dir} ({task})"):
        result = export_model(model_dir, task, output, opset=opset, atol=atol)
    console.print(
        f"[green]exported[/] {result.onnx_path} (opset {result.opset}, outputs "
        f"{', '.join(result.output_names)}) in {result.seconds:.1f}s; "
        f"max |ONNX Runtime - PyTorch| = {result.max_abs_diff:.2e} (atol {atol:g})"
    )


def _overrides(options: dict[str, Any]) -> dict[str, Any]:
    """Map generate's flags onto spec keys; None means 'not given'."""
    preferred = options["preferred_batch_size"] or None
    return {
        "model": options["model_dir"],
        "task": options["task"],
        "name": options["name"],
        "output": options["output"],
        "max_sequence_length": options["max_sequence_length"],
        "max_batch_size": options["max_batch_size"],
        "dynamic_batching": {
            "enabled": options["dynamic_batching"],
            "max_queue_delay_us": options["max_queue_delay_us"],
            "preferred_batch_sizes": preferred,
        },
        "instances": {"model": options["instances"], "tokenizer": options["tokenizer_instances"]},
        "device": options["device"],
        "triton_image": options["triton_image"],
        "export": {"opset": options["opset"], "atol": options["atol"], "onnx": options["onnx"]},
        "variant": options["variant"],
        "tokenizer": {
            "buckets": options["buckets"] or None,
            "bucket_count": options["bucket_count"],
            "bucket_corpus": options["bucket_corpus"],
        },
        "tensorrt": {
            "accelerator": options["tensorrt_accelerator"],
            "precision": options["tensorrt_precision"],
        },
        "optimize": {
            "variants": options["variants"] or None,
            "calibration_file": options["calibration_file"],
            "calibration_method": options["calibration_method"],
            "quantization_preset": options["quantization_preset"],
            "eval_file": options["eval_file"],
            "max_accuracy_drop": options["max_accuracy_drop"],
            "threads": options["threads"],
            "variants_dir": options["variants_dir"],
        },
        "force": True if options["force"] else None,
    }


@click.command()
@click.argument("model_dir", type=_PATH, required=False)
@click.option("--spec", "spec_file", type=_PATH, help="Deployment spec (YAML); flags override it.")
@click.option("--task", type=click.Choice(TASKS), help="Task [default: feature-extraction].")
@click.option("--name", help="Deployment (ensemble) name [default: minilm].")
@click.option("-o", "--output", type=_PATH, help="Repository folder [default: model_repository].")
@click.option("--max-sequence-length", type=int, help="Truncate longer texts [default: model's].")
@click.option("--max-batch-size", type=int, help="max_batch_size of every model [default: 32].")
@click.option("--dynamic-batching/--no-dynamic-batching", default=None, help="[default: on]")
@click.option("--max-queue-delay-us", type=int, help="Dynamic batcher delay [default: 500].")
@click.option("--preferred-batch-size", type=int, multiple=True, help="Repeatable.")
@click.option("--instances", type=int, help="ONNX model instances [default: 1].")
@click.option("--tokenizer-instances", type=int, help="Tokenizer instances [default: 1].")
@click.option("--device", type=click.Choice(["cpu", "gpu"]), help="Instance kind [default: cpu].")
@click.option("--triton-image", help="Triton image for the generated Dockerfile.")
@click.option("--opset", type=int, help="ONNX opset.")
@click.option("--atol", type=float, help="Export parity tolerance [default: 1e-4].")
@click.option("--onnx", type=_PATH, help="Use this exported ONNX file instead of exporting.")
@click.option(
    "--variant",
    type=click.Choice(
        ["auto", "fp32", "fp32-fused", "fp16", "int8-dynamic", "int8-static", *TRT_VARIANTS]
    ),
    help="Model variant; auto: the fastest that passes the accuracy gate; trt-*: a TensorRT "
    "plan, built where TensorRT is (GPU node) [default: fp32].",
)
@click.option("--buckets", type=int, multiple=True, help="Tokenizer length buckets (repeatable).")
@click.option("--bucket-count", type=int, help="Derive this many buckets from --bucket-corpus.")
@click.option("--bucket-corpus", type=_PATH, help="Texts for --bucket-count [default: shipped].")
@click.option(
    "--tensorrt-accelerator/--no-tensorrt-accelerator",
    default=None,
    help="GPU: ONNX Runtime's TensorRT execution accelerator in the ONNX config.",
)
@click.option(
    "--tensorrt-precision",
    type=click.Choice(["fp16", "int8"]),
    help="TensorRT precision (plans and the accelerator) [default: fp16].",
)
@click.option(
    "--variants",
    type=click.Choice(["fp32", "fp32-fused", "fp16", "int8-dynamic", "int8-static"]),
    multiple=True,
    help="auto chooses among these (repeatable) [default: every variant for the device].",
)
@click.option("--calibration-file", type=_PATH, help="int8 calibration texts.")
@click.option("--calibration-method", type=click.Choice(["minmax", "entropy", "percentile"]))
@click.option(
    "--quantization-preset", type=click.Choice(["auto", "avx2", "avx512", "avx512-vnni", "arm64"])
)
@click.option("--eval-file", type=_PATH, help="Accuracy gate texts (.jsonl/.csv may hold labels).")
@click.option("--max-accuracy-drop", type=float, help="Accuracy gate, points [default: per task].")
@click.option("--threads", type=int, help="Threads for the gate and the benchmark.")
@click.option("--variants-dir", type=_PATH, help="Reuse variants built by `tritonkit optimize`.")
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
def generate(spec_file: Path | None, **options: Any) -> None:
    """Build a Triton model repository from a Hugging Face model folder.

    Writes an ensemble NAME (TEXT in, results out), NAME_tokenizer (Python backend) and
    NAME_onnx (ONNX Runtime), every config validated against Triton's ModelConfig
    protobuf. The repository is built beside the target and moved into place only when
    valid; an existing output is replaced only with --force.

    \b
        tritonkit generate ./my-model --task text-classification --name sentiment -o repo
        tritonkit generate --spec tritonkit.yaml            # unattended (init container)
        tritonkit generate --spec tritonkit.yaml --device gpu --force
        tritonkit generate ./my-model --variant auto -o repo   # fastest that passes the gate
    """
    from tritonkit.generate import generate as run_generate

    offline()
    if options["model_dir"] is None and spec_file is None:
        raise click.UsageError("give MODEL_DIR or --spec FILE")
    spec = build_spec(spec_file, _overrides(options))
    with console.status("generating") as status:
        result = run_generate(spec, progress=lambda message: status.update(message))
    diff = (
        f"; export parity max |diff| {result.export_max_diff:.2e}"
        if result.export_max_diff is not None
        else ""
    )
    console.print(
        f"[green]wrote[/] {result.output} (models: {spec.name}, "
        f"{spec.tokenizer_name}, {spec.onnx_name}){diff}"
    )
    if result.variant is not None:
        console.print(
            f"  variant {result.variant['name']}: {result.variant['why']}; "
            f"{result.variant['accuracy']['reason']}"
        )
    for stage, seconds in result.timings.items():
        console.print(f"  {stage}: {seconds:.1f}s")


@click.command()
@click.argument("repo", type=_PATH, default="model_repository")
def validate(repo: Path) -> None:
    """Validate a Triton model repository: configs and ensemble wiring.

    Every config.pbtxt is parsed with Triton's ModelConfig protobuf; each ensemble step's
    input_map/output_map must name real tensors with matching dtypes and compatible dims;
    model files must exist and match their configs. All problems are reported at once.

    \b
        tritonkit validate model_repository
    """
    from tritonkit.validate import validate_repository

    problems = validate_repository(repo)
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        raise RepositoryError(f"{repo}: {len(problems)} problem(s) found")
    console.print(f"[green]valid[/] {repo}")


COMMANDS = (export, generate, validate)
