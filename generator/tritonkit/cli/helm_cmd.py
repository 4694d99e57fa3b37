"""`tritonkit helm-values`."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import click

from tritonkit.cli.options import add_flags, overrides, section_flags
from tritonkit.errors import SpecError
from tritonkit.spec import KServeSpec

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


KSERVE_FLAGS = section_flags(KServeSpec, "kserve")


@click.command()
@click.option("--spec", "spec_file", type=_PATH, required=True, help="Deployment spec (YAML).")
@click.option("-o", "--output", type=_PATH, help="Manifest to write [default: stdout].")
@add_flags(KSERVE_FLAGS)
def kserve(spec_file: Path, output: Path | None, **values: Any) -> None:
    """Write a KServe InferenceService (Triton runtime) for the spec's deployment.

    RawDeployment mode on the `kserve-tritonserver` runtime, reading the repository from
    --storage-uri (sync the output of `tritonkit generate` there), with an image that has
    `tokenizers` (build helm/images/triton/Dockerfile), the control APIs restricted by the
    Secret's admin key, the inference readiness probe and a read-only, non-root pod. Every key
    can also be set in the spec's `kserve:` section.

    \b
        tritonkit kserve --spec tritonkit.yaml --storage-uri s3://models/minilm \\
            --image registry.local/triton-tokenizers:24.10 -o isvc.yaml
        kubectl apply -f isvc.yaml
    """
    from tritonkit.deploy.kserve import inference_service_yaml
    from tritonkit.spec import build_spec

    spec = build_spec(spec_file, overrides(KSERVE_FLAGS, values))
    text = inference_service_yaml(spec, str(spec_file))
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as e:
        raise SpecError(f"{output}: cannot write the manifest: {e.strerror}") from None
    click.echo(f"wrote {output}\n  kubectl apply -f {output}", err=True)


COMMANDS = (helm_values, kserve)
