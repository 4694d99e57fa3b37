"""Helm chart values from a deployment spec, so that the spec stays the one source of truth.

`tritonkit helm-values --spec tritonkit.yaml` writes the deployment-specific part of the chart's
values (the ensemble name, the Triton image, GPU or CPU, the spec for the generate init container
and the check's tolerances and texts); cluster-specific values (node pools, autoscaling,
monitoring) live in a second values file layered after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tritonkit import __version__
from tritonkit.errors import SpecError
from tritonkit.spec import DeploymentSpec
from tritonkit.spec.sections import VARIANT_PRECISION
from tritonkit.tasks import PRECISION_TOLERANCES, Tolerance

# The chart sets these spec keys itself (paths inside the pod, modelName, gpu.enabled, image);
# `check` becomes test.check. Everything else is carried into modelRepository.generate.spec.
CHART_OWNED_KEYS = ("model", "output", "name", "device", "triton_image", "force")
CHECK_KEY = "check"
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


@dataclass(frozen=True)
class HelmValues:
    """Values for the chart, and what of the spec could not be carried into the cluster."""

    values: dict[str, Any]
    notices: tuple[str, ...]


def split_image(reference: str, source: str = "spec") -> dict[str, str]:
    """`registry/repo:tag` or `registry/repo@sha256:...` -> the chart's repository/tag/digest."""
    repository, _, digest = reference.partition("@")
    tag = ""
    slash = repository.rfind("/")
    colon = repository.rfind(":")
    if colon > slash:
        repository, tag = repository[:colon], repository[colon + 1 :]
    if digest and not _DIGEST.match(digest):
        raise SpecError(
            f"{source}: triton_image: '{reference}' has an invalid digest: use @sha256:<64 hex>"
        )
    if not repository or not (tag or digest):
        raise SpecError(
            f"{source}: triton_image: '{reference}' has no tag: pin one, "
            "e.g. nvcr.io/nvidia/tritonserver:24.10-py3"
        )
    if tag == "latest" and not digest:
        raise SpecError(
            f"{source}: triton_image: '{reference}' uses 'latest': pin a release tag, "
            "e.g. nvcr.io/nvidia/tritonserver:24.10-py3"
        )
    return {"repository": repository, "tag": tag, "digest": digest}


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


def _check_texts(spec: DeploymentSpec) -> list[str]:
    texts = list(spec.check.texts)
    if spec.check.file is not None:
        from tritonkit.util.texts import read_texts

        texts.extend(read_texts(spec.check.file))
    return texts


def values_from_spec(
    spec: DeploymentSpec,
    *,
    source: str = "spec",
    model_pvc: str | None = None,
    model_sub_path: str | None = None,
) -> HelmValues:
    """The chart values that `spec` decides; `source` names the spec in error messages."""
    notices = []
    precision = spec.check.precision or VARIANT_PRECISION.get(spec.variant, "fp32")
    base = PRECISION_TOLERANCES[precision]
    tolerance = Tolerance(
        spec.check.min_cosine or base.min_cosine, spec.check.max_prob_diff or base.max_prob_diff
    )
    # the loadtest section belongs to the chart's test hook (test.loadtest), not to generate
    generate = spec.model_dump(
        mode="json", exclude={*CHART_OWNED_KEYS, CHECK_KEY, "loadtest", "serve", "tune", "kserve"}
    )
    if spec.export.onnx is not None:
        notices.append(
            f"export.onnx ({spec.export.onnx}) is a local file: not carried into the cluster; "
            "the init container exports from the model folder"
        )
    generate["export"].pop("onnx", None)
    values: dict[str, Any] = {
        "modelName": spec.name,
        "image": split_image(spec.triton_image, source),
        "gpu": {"enabled": spec.device == "gpu"},
        "modelRepository": {"source": "generate", "generate": {"spec": _drop_none(generate)}},
        "test": {
            "check": {
                "minCosine": tolerance.min_cosine,
                "maxProbDiff": tolerance.max_prob_diff,
                "texts": _check_texts(spec),
            }
        },
    }
    if model_pvc:
        pvc = {"claimName": model_pvc, **({"subPath": model_sub_path} if model_sub_path else {})}
        values["modelSource"] = {"pvc": pvc}
    elif model_sub_path:
        raise SpecError("--model-sub-path needs --model-pvc: name the claim that holds the model")
    return HelmValues(values, tuple(notices))


def values_yaml(result: HelmValues, source: str) -> str:
    """The values as a YAML document with a header saying where they came from."""
    header = (
        f"# Written by `tritonkit helm-values` {__version__} from {source}: regenerate it from\n"
        "# the spec instead of editing it. Layer cluster settings in a second file:\n"
        "#   helm install NAME CHART -f this.yaml -f cluster.yaml\n"
    )
    body = yaml.safe_dump(result.values, sort_keys=False, allow_unicode=True)
    return header + body


def write_values(result: HelmValues, output: Path, source: str) -> None:
    """Write the values file (replacing it atomically)."""
    partial = output.with_name(f".{output.name}.partial")
    try:
        partial.write_text(values_yaml(result, source), encoding="utf-8")
        partial.replace(output)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise SpecError(f"{output}: cannot write the values file: {e.strerror}") from None
