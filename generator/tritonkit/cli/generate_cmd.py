"""`tritonkit export`, `generate` and `validate`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from tritonkit.cli.common import PATH, SPEC_OPTION, console, offline, repository_folder
from tritonkit.cli.options import add_flags, overrides, select, spec_flags
from tritonkit.errors import RepositoryError
from tritonkit.spec import DeploymentSpec

# Every key of the deployment and of the stages `generate` runs; the serving sections belong
# to serve/check/loadtest/tune, and optimize.max_length is set from max_sequence_length.
GENERATE_FLAGS = spec_flags(
    DeploymentSpec,
    sections=(
        "dynamic_batching",
        "target",
        "instances",
        "export",
        "optimize",
        "tokenizer",
        "tensorrt",
    ),
    exclude=("optimize.max_length",),
)


EXPORT_FLAGS = select(spec_flags(DeploymentSpec, sections=("export",)), "task", "export.opset",
                      "export.atol")  # fmt: skip


@click.command()
@click.argument("model_dir", type=PATH, required=False)
@click.option("-o", "--output", type=PATH, required=True, help="Folder for model.onnx.")
@SPEC_OPTION
@add_flags(EXPORT_FLAGS)
def export(model_dir: Path | None, output: Path, spec_file: Path | None, **values: Any) -> None:
    """Export a local Hugging Face model folder to ONNX and check it against PyTorch.

    The task's post-processing is part of the graph: mean pooling + L2 normalisation for
    feature-extraction, softmax for text-classification, argmax + score for
    token-classification. Batch and sequence axes are dynamic. MODEL_DIR defaults to the
    spec's model.

    \b
        tritonkit export ./all-MiniLM-L6-v2 --task feature-extraction -o ./onnx
        tritonkit export --spec tritonkit.yaml -o ./onnx
    """
    from tritonkit.pipeline.export import export_to
    from tritonkit.spec import build_spec

    offline()
    if model_dir is None and spec_file is None:
        raise click.UsageError("give MODEL_DIR or --spec FILE")
    given = overrides(EXPORT_FLAGS, values) | ({"model": model_dir} if model_dir else {})
    spec = build_spec(spec_file, given)
    with console.status(f"exporting {spec.model} ({spec.task})"):
        result = export_to(spec.model, spec.task, output, opset=spec.export.opset,
                           atol=spec.export.atol)  # fmt: skip
    console.print(
        f"[green]exported[/] {result.onnx_path} (opset {result.opset}, outputs "
        f"{', '.join(result.output_names)}) in {result.seconds:.1f}s; "
        f"max |ONNX Runtime - PyTorch| = {result.max_abs_diff:.2e} (atol {spec.export.atol:g})"
    )


@click.command()
@click.argument("model_dir", type=PATH, required=False)
@SPEC_OPTION
@add_flags(GENERATE_FLAGS)
@click.option(
    "--defer-plan", is_flag=True,
    help="trt-* variants: write the plan's recipe and build script instead of the plan (the "
    "serving GPU pod runs NAME_trt/build_plan.py; the Helm chart does).",
)  # fmt: skip
def generate(
    model_dir: Path | None, spec_file: Path | None, defer_plan: bool, **values: Any
) -> None:
    """Build a Triton model repository from a Hugging Face model folder.

    Writes an ensemble NAME (TEXT in, results out), NAME_tokenizer (Python backend) and
    NAME_onnx (ONNX Runtime), every config validated against Triton's ModelConfig
    protobuf. The repository is built beside the target and moved into place only when
    valid; an existing output is replaced only with --force, and only if tritonkit wrote it.

    \b
        tritonkit generate ./my-model --task text-classification --name sentiment -o repo
        tritonkit generate --spec tritonkit.yaml            # unattended (init container)
        tritonkit generate --spec tritonkit.yaml --device gpu --force
        tritonkit generate ./my-model --variant auto -o repo   # fastest that passes the gate
        tritonkit generate --spec tritonkit.yaml --variant trt-fp16 --defer-plan
    """
    from tritonkit.pipeline.generate import generate as run_generate
    from tritonkit.spec import build_spec

    offline()
    if model_dir is None and spec_file is None:
        raise click.UsageError("give MODEL_DIR or --spec FILE")
    given = overrides(GENERATE_FLAGS, values) | ({"model": model_dir} if model_dir else {})
    spec = build_spec(spec_file, given)
    with console.status("generating") as status:
        result = run_generate(
            spec, progress=lambda message: status.update(message), defer_plan=defer_plan
        )
    names = ", ".join(result.plan.deployment.model_names()[::-1])
    diff = result.export_max_diff
    parity = f"; export parity max |diff| {diff:.2e}" if diff is not None else ""
    console.print(f"[green]wrote[/] {result.output} (models: {names}){parity}")
    if result.variant is not None:
        variant = result.variant
        console.print(
            f"  variant {variant['name']}: {variant['why']}; {variant['accuracy']['reason']}"
        )
    for stage, seconds in result.timings.items():
        console.print(f"  {stage}: {seconds:.1f}s")


@click.command()
@click.argument("repo", type=PATH, required=False)
@SPEC_OPTION
def validate(repo: Path | None, spec_file: Path | None) -> None:
    """Validate a Triton model repository: configs and ensemble wiring.

    Every config.pbtxt is parsed with Triton's ModelConfig protobuf; each ensemble step's
    input_map/output_map must name real tensors with matching dtypes and compatible dims;
    model files must exist and match their configs; a repository tritonkit wrote must keep
    its contract (tokenizer parameters, TensorRT profiles covering every shape). All problems
    are reported at once.

    \b
        tritonkit validate model_repository
        tritonkit validate --spec tritonkit.yaml      # the spec's output folder
    """
    from tritonkit.repository.validate import repository_notes, validate_repository

    repo = repository_folder(repo, spec_file)
    problems = validate_repository(repo)
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        raise RepositoryError(f"{repo}: {len(problems)} problem(s) found")
    for note in repository_notes(repo):
        click.echo(note)
    console.print(f"[green]valid[/] {repo}")


@click.command("spec")
@click.argument("spec_file", type=PATH, required=False)
def spec_command(spec_file: Path | None) -> None:
    """Print the reference spec, or check a spec file and print it as tritonkit reads it.

    Without SPEC_FILE: every key with its default, its flag and what it does (commented YAML
    to start a tritonkit.yaml from). With SPEC_FILE: every problem at once, or the effective
    spec (defaults filled in, paths resolved against the file's folder).

    \b
        tritonkit spec > tritonkit.yaml
        tritonkit spec tritonkit.yaml
    """
    from tritonkit.spec import build_spec, spec_to_yaml
    from tritonkit.spec.reference import reference_yaml

    if spec_file is None:
        click.echo(reference_yaml(), nl=False)
        return
    click.echo(spec_to_yaml(build_spec(spec_file)), nl=False)


COMMANDS = (export, generate, validate, spec_command)
