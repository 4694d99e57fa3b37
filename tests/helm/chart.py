"""Render, lint and validate the chart with the real helm binary (no cluster needed)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
# TRITONKIT_HELM_CHART renders another copy, e.g. to show a test fails on an older chart.
CHART = Path(os.environ.get("TRITONKIT_HELM_CHART", ROOT / "helm"))
RELEASE = "t"
NAMESPACE = "ml"
FULLNAME = f"{RELEASE}-tritonkit"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and two newer ones.
KUBE_VERSIONS = ("1.25", "1.30", "1.35")
# No public tritonkit image exists, so the chart needs one named; every render starts from this
# layer unless a test asks for the bare defaults.
BASE: dict[str, Any] = {"tritonkitImage": {"repository": "registry.example.com/ml/tritonkit"}}

# The Prometheus Operator CRD is not in kubernetes-validate: this strict schema covers the
# fields the chart writes (monitoring.coreos.com/v1 ServiceMonitor), so a typo still fails.
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "labels": _LABELS, "annotations": _LABELS},
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchLabels": _LABELS},
                },
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchNames": {"type": "array", "items": {"type": "string"}}},
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                        },
                    },
                },
            },
        },
    },
}


# monitoring.coreos.com/v1 PrometheusRule: the fields the chart writes; the rules themselves are
# checked by the real `promtool check rules` and evaluated in a real Prometheus
# (test_chart_prometheus.py).
_RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["expr"],
    "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
    "properties": {
        "record": {"type": "string"},
        "alert": {"type": "string"},
        "expr": {"type": "string"},
        "for": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h|d|w|y))+$"},
        "labels": _LABELS,
        "annotations": _LABELS,
    },
}
PROMETHEUS_RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": SERVICE_MONITOR_SCHEMA["properties"]["metadata"],
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string"},
                            "rules": {"type": "array", "items": _RULE},
                        },
                    },
                }
            },
        },
    },
}
CRD_SCHEMAS = {"ServiceMonitor": SERVICE_MONITOR_SCHEMA, "PrometheusRule": PROMETHEUS_RULE_SCHEMA}


class HelmFailed(AssertionError):
    """helm exited non-zero; the message holds its stderr."""

    def __init__(self, args: list[str], stderr: str) -> None:
        super().__init__(f"helm {' '.join(args[1:3])} failed:\n{stderr}")
        self.stderr = stderr


@dataclass(frozen=True)
class Rendered:
    """The documents `helm template` wrote, with lookups by kind and name."""

    docs: tuple[dict[str, Any], ...]
    text: str

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def named(self, kind: str, suffix: str) -> dict[str, Any]:
        """The one object of `kind` whose name ends with `suffix`."""
        found = [doc for doc in self.all(kind) if doc["metadata"]["name"].endswith(suffix)]
        assert len(found) == 1, f"expected one {kind} *{suffix}, rendered {len(found)}"
        return found[0]

    def job(self, component: str) -> dict[str, Any]:
        """The Job of a component: generate or test."""
        found = [
            doc
            for doc in self.all("Job")
            if doc["metadata"]["labels"]["app.kubernetes.io/component"] == component
        ]
        assert len(found) == 1, f"expected one {component} Job, rendered {len(found)}"
        return found[0]

    def pod(self, kind: str = "Deployment", component: str = "") -> dict[str, Any]:
        obj = self.job(component) if kind == "Job" else self.one(kind)
        return dict(obj["spec"]["template"]["spec"])

    def one(self, kind: str) -> dict[str, Any]:
        found = self.all(kind)
        assert len(found) == 1, f"expected one {kind}, rendered {len(found)}"
        return found[0]

    def kinds(self) -> set[str]:
        return {doc["kind"] for doc in self.docs}

    def pod_specs(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for doc in self.docs:
            if doc["kind"] in ("Deployment", "Job"):
                yield doc["kind"], doc["spec"]["template"]["spec"]

    def containers(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every container of every pod template: (kind/name, container)."""
        for kind, pod in self.pod_specs():
            for container in [*pod.get("initContainers", []), *pod["containers"]]:
                yield f"{kind}/{container['name']}", container

    def container(self, name: str, kind: str = "Deployment") -> dict[str, Any]:
        """The one container called `name` in the pod templates of `kind`."""
        found = [
            dict(container)
            for obj in self.all(kind)
            for container in [
                *obj["spec"]["template"]["spec"].get("initContainers", []),
                *obj["spec"]["template"]["spec"]["containers"],
            ]
            if container["name"] == name
        ]
        assert len(found) == 1, f"{kind}: expected one container {name}, found {len(found)}"
        return found[0]

    def server(self) -> dict[str, Any]:
        return self.container("tritonserver")


def merged(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge values layers, later ones winning (as helm does with several -f files)."""
    result: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(result.get(key), dict):
                result[key] = merged(result[key], value)
            else:
                result[key] = value
    return result


def _run(
    helm: Path, args: list[str], values: Iterable[Mapping[str, Any] | Path], bare: bool = False
) -> str:
    values = list(values) if bare else [BASE, *values]
    with tempfile.TemporaryDirectory(prefix="tk-helm-") as tmp:
        files = []
        for index, layer in enumerate(values):
            if isinstance(layer, Path):
                files.append(layer)
                continue
            path = Path(tmp) / f"values{index}.yaml"
            path.write_text(yaml.safe_dump(dict(layer)))
            files.append(path)
        cmd = [str(helm), *args, *(arg for f in files for arg in ("-f", str(f)))]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    if result.returncode != 0:
        raise HelmFailed(cmd, result.stderr)
    return result.stdout


def template(
    helm: Path, *values: Mapping[str, Any] | Path, bare: bool = False, release: str = RELEASE
) -> Rendered:
    """`helm template` (hooks included, so the test Job is there too); `bare`: without BASE."""
    args = ["template", release, str(CHART), "--namespace", NAMESPACE]
    text = _run(helm, args, values, bare)
    docs = tuple(doc for doc in yaml.safe_load_all(text) if doc)
    return Rendered(docs, text)


def lint(helm: Path, *values: Mapping[str, Any] | Path, bare: bool = False) -> str:
    """`helm lint --strict`: warnings fail too."""
    return _run(helm, ["lint", "--strict", str(CHART), "--namespace", NAMESPACE], values, bare)


def kubernetes_errors(docs: Iterable[dict[str, Any]], versions: Iterable[str]) -> list[str]:
    """Every object against the Kubernetes schemas (strict: unknown fields fail); CRDs this
    chart uses against their own schema above. An object with no known schema is an error."""
    import jsonschema
    import kubernetes_validate

    errors = []
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in CRD_SCHEMAS:
            validator = jsonschema.Draft7Validator(CRD_SCHEMAS[doc["kind"]])
            errors += [f"{where}: {e.json_path}: {e.message}" for e in validator.iter_errors(doc)]
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                path = ".".join(str(part) for part in e.path)
                errors.append(f"{where} (Kubernetes {version}): {path}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError as e:
                errors.append(f"{where} (Kubernetes {version}): {e.message}")
    return errors
