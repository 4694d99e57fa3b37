"""`tritonkit helm-values`."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

_PATH = click.Path(path_type=Path)


@click.command("helm-values")
@click.option("--spec", "spec_file", type=_PATH, required=True, help="Deployment spec (YAML).")
@click.option("-o", "--output", type=_PATH, help="Values file to write [default: stdout].")
@click.option("--model-pvc", help="PersistentVolumeClaim that holds the model folder.")
@click.option("--model-sub-path", help="Folder of the model inside that volume.")
def helm_values(
    spec_file: Path, output: Path | None, model_pvc: str | None, model_sub_path: str | None
) -> None:
    """Write Helm chart values from a deployment spec (the spec stays the source of truth).

    Sets modelName, the Triton image, GPU or CPU mode, the spec the chart's init container
    runs `tritonkit generate --spec` with, and the test hook's check tolerances and texts.
    Layer node pools, autoscaling and monitoring in a second values file.

    \b
        tritonkit helm-values --spec tritonkit.yaml -o values-spec.yaml --model-pvc hf-models
        helm install minilm CHART -f values-spec.yaml -f values-gpu-pool.yaml
    """
    from tritonkit.deploy.helm_values import values_from_spec, values_yaml, write_values
    from tritonkit.spec import build_spec
    from tritonkit.util.resources import data_dir

    spec = build_spec(spec_file)
    result = values_from_spec(
        spec, source=str(spec_file), model_pvc=model_pvc, model_sub_path=model_sub_path
    )
    for notice in result.notices:
        click.echo(f"notice: {notice}", err=True)
    if output is None:
        sys.stdout.write(values_yaml(result, str(spec_file)))
        return
    write_values(result, output, str(spec_file))
    release = re.sub(r"[^a-z0-9-]+", "-", spec.name.lower()).strip("-")  # a valid release name
    click.echo(f"wrote {output}\n  helm install {release} {data_dir('helm')} -f {output}", err=True)


COMMANDS = (helm_values,)
