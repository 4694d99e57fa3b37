"""`helm lint --strict` and `helm template` over a matrix of values; every rendered object is
validated against the Kubernetes schemas of several versions (strict: unknown fields fail)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from tests.helm.chart import CHART, KUBE_VERSIONS, kubernetes_errors, lint, merged, template

SOURCES: dict[str, dict[str, Any]] = {
    "generate-pvc-model": {
        "modelRepository": {
            "source": "generate",
            "generate": {"spec": {"task": "feature-extraction"}},
        },
        "modelSource": {"pvc": {"claimName": "hf-models", "subPath": "minilm"}},
    },
    "generate-baked-model-per-pod": {
        "modelRepository": {
            "source": "generate",
            "generate": {"mode": "pod", "bundleTokenizers": False},
        },
        "test": {"check": {"texts": ["one", "two"]}},
    },
    "pvc": {"modelRepository": {"source": "pvc", "pvc": {"claimName": "repo", "subPath": "r"}}},
    "s3-secret": {
        "modelRepository": {
            "source": "objectStorage",
            "objectStorage": {"url": "s3://b/r", "existingSecret": "aws", "region": "eu-west-1"},
        }
    },
    "s3-workload-identity": {
        "modelRepository": {
            "source": "objectStorage",
            "objectStorage": {"url": "s3://b/r", "credentials": "workloadIdentity"},
        },
        "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/r"}},
    },
    "gs-secret": {
        "modelRepository": {
            "source": "objectStorage",
            "objectStorage": {"url": "gs://b/r", "existingSecret": "gcs"},
        }
    },
    "as-secret": {
        "modelRepository": {
            "source": "objectStorage",
            "objectStorage": {"url": "as://acct/c/r", "existingSecret": "azure"},
        }
    },
    "image": {"modelRepository": {"source": "image"}, "test": {"check": {"enabled": False}}},
}
HPA: dict[str, dict[str, Any]] = {
    "hpa-off": {"autoscaling": {"enabled": False}},
    "hpa-resource": {"autoscaling": {"enabled": True, "metric": "resource", "maxReplicas": 3}},
    "hpa-custom": {"autoscaling": {"enabled": True, "metric": "custom"}},
}
GPU = {"gpu": {"gpu": {"enabled": True}}, "cpu": {"gpu": {"enabled": False}}}
EXTRAS: dict[str, dict[str, Any]] = {
    "sm": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
    "no-sm": {"serviceMonitor": {"enabled": False}},
    "all-optional": {
        "serviceMonitor": {"enabled": True},
        "networkPolicy": {"enabled": True},
        "ingress": {"enabled": True, "className": "nginx", "tls": [{"secretName": "tls"}]},
        "runtimeClassName": "nvidia",
        "server": {"modelControlMode": "explicit", "extraArgs": ["--log-info=true"]},
        "podDisruptionBudget": {"minAvailable": "50%"},
        "prometheusRule": {"enabled": True},
        "grafanaDashboard": {"enabled": True},
    },
}
# GPU-only flows and the extension points, each linted and validated on its own.
TRT = {"modelRepository": {"generate": {"spec": {"variant": "trt-fp16"}}}}
SPECIAL: dict[str, dict[str, Any]] = {
    "trt-fp16-release": merged(TRT, {"tensorrt": {"timingCache": {"existingClaim": "trt-cache"}}}),
    "trt-fp16-pod": merged(TRT, {"modelRepository": {"generate": {"mode": "pod"}}}),
    "mig-mixed": {
        "gpu": {"resourceName": "nvidia.com/mig-1g.10gb", "migStrategy": "mixed"},
        "modelRepository": {"generate": {"persistence": {"existingClaim": "repos"}}},
    },
    "extension-points": {
        "global": {"imageRegistry": "mirror.example.com:5000"},
        "commonLabels": {"team": "ml"},
        "commonAnnotations": {"owner": "ml-platform"},
        "extraVolumes": [{"name": "extra", "emptyDir": {}}],
        "server": {
            "extraVolumeMounts": [{"name": "extra", "mountPath": "/extra"}],
            "extraEnvFrom": [{"configMapRef": {"name": "triton-env"}}],
            "restrictedApi": {"existingSecret": "triton-admin"},
        },
        "sidecars": [{"name": "proxy", "image": "envoyproxy/envoy:v1.31.0"}],
        "initContainers": [{"name": "hello", "image": "busybox:1.36", "command": ["true"]}],
        "service": {
            "type": "LoadBalancer",
            "nodePorts": {"http": 30080},
            "loadBalancerSourceRanges": ["10.0.0.0/8"],
            "externalTrafficPolicy": "Local",
        },
        "ingress": {"enabled": True, "grpc": {"enabled": True}},
        "networkPolicy": {"enabled": True},
        "progressDeadlineSeconds": 7200,
    },
}


def _matrix() -> list[tuple[str, dict[str, str], dict[str, Any]]]:
    """Every source in GPU and CPU mode; HPA and the optional objects cycle across them so that
    each HPA choice and ServiceMonitor on/off meet both GPU and CPU."""
    hpa = itertools.cycle(HPA.items())
    extras = itertools.cycle(EXTRAS.items())
    entries = []
    for (source, source_values), (mode, mode_values) in itertools.product(
        SOURCES.items(), GPU.items()
    ):
        hpa_name, hpa_values = next(hpa)
        extra_name, extra_values = next(extras)
        values = merged(source_values, mode_values, hpa_values, extra_values)
        dims = {"source": source, "mode": mode, "hpa": hpa_name, "extras": extra_name}
        dims["serviceMonitor"] = "on" if values["serviceMonitor"]["enabled"] else "off"
        entries.append(("-".join(dims.values()), dims, values))
    return entries


MATRIX = _matrix()
EXAMPLES = sorted((CHART / "examples").glob("values-*.yaml"))


def test_matrix_covers_every_dimension() -> None:
    pairs = {(d["mode"], d[key]) for _, d, _ in MATRIX for key in ("hpa", "serviceMonitor")}
    for mode in GPU:
        assert {(mode, hpa) for hpa in HPA} <= pairs
        assert {(mode, "on"), (mode, "off")} <= pairs
    assert {(d["source"], d["mode"]) for _, d, _ in MATRIX} == set(itertools.product(SOURCES, GPU))


@pytest.mark.parametrize("values", [v for _, _, v in MATRIX], ids=[n for n, _, _ in MATRIX])
def test_lint_template_and_validate(helm: Path, values: dict[str, Any]) -> None:
    lint(helm, values)
    rendered = template(helm, values)
    assert {"Deployment", "Service", "ServiceAccount", "PodDisruptionBudget"} <= rendered.kinds()
    assert ("HorizontalPodAutoscaler" in rendered.kinds()) == (values["autoscaling"]["enabled"])
    assert ("ServiceMonitor" in rendered.kinds()) == values["serviceMonitor"]["enabled"]
    assert kubernetes_errors(rendered.docs, KUBE_VERSIONS) == []


@pytest.mark.parametrize("name", SPECIAL)
def test_special_flows_lint_and_validate(helm: Path, name: str) -> None:
    lint(helm, SPECIAL[name])
    rendered = template(helm, SPECIAL[name])
    assert kubernetes_errors(rendered.docs, KUBE_VERSIONS) == []


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_examples_lint_and_validate(helm: Path, example: Path) -> None:
    lint(helm, example)
    rendered = template(helm, example)
    assert kubernetes_errors(rendered.docs, KUBE_VERSIONS) == []


def test_defaults_lint_and_validate(helm: Path) -> None:
    """The defaults plus the one value without a default (the tritonkit image: none is public)."""
    lint(helm)
    assert kubernetes_errors(template(helm).docs, KUBE_VERSIONS) == []


def test_validation_catches_a_bad_object(helm: Path) -> None:
    """The validator is not a no-op: an unknown field and a CRD typo are both reported."""
    rendered = template(helm, {"serviceMonitor": {"enabled": True}})
    deployment = rendered.one("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["gpus"] = 1
    monitor = rendered.one("ServiceMonitor")
    monitor["spec"]["endpoints"][0]["intervall"] = "15s"
    errors = kubernetes_errors([deployment, monitor], KUBE_VERSIONS[:1])
    assert any("'gpus' was unexpected" in e for e in errors), errors
    assert any("'intervall' was unexpected" in e for e in errors), errors
