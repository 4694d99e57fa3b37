"""values.schema.json rejects wrong types and unknown keys, one test per rejection; rules the
schema cannot express fail the render with one line naming the value and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helm.chart import HelmFailed, lint, template

REJECTED: dict[str, tuple[dict[str, Any], str]] = {
    "unknown top-level key": ({"replicas": 2}, "additional properties 'replicas' not allowed"),
    "unknown nested key": ({"gpu": {"type": "a100"}}, "additional properties 'type' not allowed"),
    "replicaCount as a string": ({"replicaCount": "two"}, "/replicaCount"),
    "gpu.enabled as a string": ({"gpu": {"enabled": "yes"}}, "/gpu/enabled"),
    "gpu.count of zero": ({"gpu": {"count": 0}}, "/gpu/count"),
    "unknown repository source": (
        {"modelRepository": {"source": "ftp"}},
        "/modelRepository/source",
    ),
    "pvc source without a claim": (
        {"modelRepository": {"source": "pvc"}},
        "/modelRepository/pvc/claimName",
    ),
    "object storage without a URL": (
        {"modelRepository": {"source": "objectStorage"}},
        "/modelRepository/objectStorage/url",
    ),
    "object storage over http": (
        {"modelRepository": {"objectStorage": {"url": "http://bucket/repo"}}},
        "/modelRepository/objectStorage/url",
    ),
    "plaintext access key in values": (
        {"modelRepository": {"objectStorage": {"accessKeyId": "AKIA..."}}},
        "additional properties 'accessKeyId' not allowed",
    ),
    "plaintext secret in extraEnv": (
        {"server": {"extraEnv": [{"name": "AWS_SECRET_ACCESS_KEY", "value": "x"}]}},
        "/server/extraEnv/0",
    ),
    "unknown credentials mode": (
        {"modelRepository": {"objectStorage": {"credentials": "keys"}}},
        "/modelRepository/objectStorage/credentials",
    ),
    "image tag latest": ({"image": {"tag": "latest"}}, "/image/tag"),
    "image without tag or digest": ({"image": {"tag": ""}}, "/image/tag"),
    "malformed digest": ({"image": {"digest": "sha256:xyz"}}, "/image/digest"),
    "pull policy typo": (
        {"tritonkitImage": {"pullPolicy": "IfMissing"}},
        "/tritonkitImage/pullPolicy",
    ),
    "model name with a slash": ({"modelName": "my/model"}, "/modelName"),
    "unknown spec key": (
        {"modelRepository": {"generate": {"spec": {"batching": True}}}},
        "additional properties 'batching' not allowed",
    ),
    "spec key the chart sets": (
        {"modelRepository": {"generate": {"spec": {"model": "/elsewhere"}}}},
        "additional properties 'model' not allowed",
    ),
    "spec value of the wrong type": (
        {"modelRepository": {"generate": {"spec": {"max_batch_size": "big"}}}},
        "/modelRepository/generate/spec/max_batch_size",
    ),
    "unknown task": (
        {"modelRepository": {"generate": {"spec": {"task": "translation"}}}},
        "/modelRepository/generate/spec/task",
    ),
    "unknown autoscaling metric": ({"autoscaling": {"metric": "gpu"}}, "/autoscaling/metric"),
    "shm size not a quantity": ({"shm": {"sizeLimit": "lots"}}, "/shm/sizeLimit"),
    "port out of range": ({"ports": {"http": 70000}}, "/ports/http"),
    "probe threshold of zero": (
        {"probes": {"startup": {"failureThreshold": 0}}},
        "/probes/startup/failureThreshold",
    ),
    "unknown model control mode": (
        {"server": {"modelControlMode": "auto"}},
        "/server/modelControlMode",
    ),
    "extra arg without dashes": (
        {"server": {"extraArgs": ["log-verbose=1"]}},
        "/server/extraArgs/0",
    ),
    "service type typo": ({"service": {"type": "Headless"}}, "/service/type"),
    "scrape interval not a duration": (
        {"serviceMonitor": {"interval": "often"}},
        "/serviceMonitor/interval",
    ),
    "ingress path type typo": (
        {"ingress": {"hosts": [{"host": "a", "paths": [{"path": "/", "pathType": "prefix"}]}]}},
        "/ingress/hosts/0/paths/0/pathType",
    ),
    "load test with no users": ({"test": {"loadtest": {"users": 0}}}, "/test/loadtest/users"),
    "load test duration in words": (
        {"test": {"loadtest": {"duration": "20 seconds"}}},
        "/test/loadtest/duration",
    ),
    "error rate above one": ({"test": {"loadtest": {"errorRate": 5}}}, "/test/loadtest/errorRate"),
    "cosine above one": ({"test": {"check": {"minCosine": 1.5}}}, "/test/check/minCosine"),
    "node selector value not a string": ({"nodeSelector": {"gpu": True}}, "/nodeSelector/gpu"),
    "restricted category typo": (
        {"server": {"restrictedApi": {"categories": ["model_repository"]}}},
        "/server/restrictedApi/categories/0",
    ),
    "admin key header with a space": (
        {"server": {"restrictedApi": {"header": "admin key"}}},
        "/server/restrictedApi/header",
    ),
    "generate mode typo": (
        {"modelRepository": {"generate": {"mode": "once"}}},
        "/modelRepository/generate/mode",
    ),
    "MIG strategy typo": ({"gpu": {"migStrategy": "mix"}}, "/gpu/migStrategy"),
    "GPU metrics as a boolean": ({"gpu": {"metrics": True}}, "/gpu/metrics"),
    "GPU product with a space": ({"gpu": {"product": "A100 80GB"}}, "/gpu/product"),
    "repository volume size in words": (
        {"modelRepository": {"generate": {"persistence": {"size": "big"}}}},
        "/modelRepository/generate/persistence/size",
    ),
    "node port outside the range": (
        {"service": {"nodePorts": {"http": 80}}},
        "/service/nodePorts/http",
    ),
    "ingress host with a newline": (
        {"ingress": {"hosts": [{"host": "a.example.com\nb"}]}},
        "/ingress/hosts/0/host",
    ),
    "loaded model name with a space": (
        {"server": {"loadModels": ["a b"]}},
        "/server/loadModels/0",
    ),
    "progress deadline as a string": (
        {"progressDeadlineSeconds": "1h"},
        "/progressDeadlineSeconds",
    ),
    "probe type typo": ({"probes": {"readiness": {"type": "grpc"}}}, "/probes/readiness/type"),
    "sidecar without a name": ({"sidecars": [{"image": "x"}]}, "/sidecars/0"),
}

FAILED_RENDERS: dict[str, tuple[dict[str, Any], str]] = {
    "MIG mixed with a whole-GPU resource": (
        {"gpu": {"migStrategy": "mixed"}},
        "values: gpu.migStrategy: mixed exposes MIG slices as nvidia.com/mig-<profile>, not "
        "nvidia.com/gpu: set gpu.resourceName, e.g. nvidia.com/mig-1g.10gb",
    ),
    "MIG single with a slice resource": (
        {"gpu": {"migStrategy": "single", "resourceName": "nvidia.com/mig-1g.10gb"}},
        "values: gpu.migStrategy: single exposes MIG slices as nvidia.com/gpu, not "
        "nvidia.com/mig-1g.10gb: set gpu.resourceName: nvidia.com/gpu",
    ),
    "inference probe on a model that is not loaded": (
        {"server": {"modelControlMode": "explicit", "loadModels": ["other"]}},
        "values: server.loadModels does not load minilm, which the inference readiness probe "
        "calls: add it, or set probes.readiness.type: http",
    ),
    "minReplicas above maxReplicas": (
        {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}},
        "values: autoscaling.minReplicas (5) is above autoscaling.maxReplicas (2): lower "
        "minReplicas or raise maxReplicas",
    ),
    "secret credentials without a secret": (
        {"modelRepository": {"source": "objectStorage", "objectStorage": {"url": "s3://b/r"}}},
        "values: modelRepository.objectStorage.existingSecret is empty: name an existing Secret "
        "with the credentials, or set credentials: workloadIdentity",
    ),
    "azure with workload identity": (
        {
            "modelRepository": {
                "source": "objectStorage",
                "objectStorage": {"url": "as://a/c/r", "credentials": "workloadIdentity"},
            }
        },
        "values: modelRepository.objectStorage.credentials: Triton reads Azure storage with an "
        "account key only: set credentials: secret and existingSecret",
    ),
    "region for a non-S3 URL": (
        {
            "modelRepository": {
                "source": "objectStorage",
                "objectStorage": {"url": "gs://b/r", "existingSecret": "k", "region": "eu"},
            }
        },
        "values: modelRepository.objectStorage.region applies to s3:// only: remove it",
    ),
}


@pytest.mark.parametrize("case", REJECTED)
def test_schema_rejects(helm: Path, case: str) -> None:
    values, expected = REJECTED[case]
    with pytest.raises(HelmFailed) as failed:
        template(helm, values)
    assert "values don't meet the specifications of the schema" in failed.value.stderr
    assert expected in failed.value.stderr
    with pytest.raises(HelmFailed):
        lint(helm, values)


@pytest.mark.parametrize("case", FAILED_RENDERS)
def test_render_fails_with_one_line(helm: Path, case: str) -> None:
    values, expected = FAILED_RENDERS[case]
    with pytest.raises(HelmFailed) as failed:
        template(helm, values)
    assert expected in failed.value.stderr


def test_credentials_from_a_secret_ref_are_accepted(helm: Path) -> None:
    ref = {"secretKeyRef": {"name": "s", "key": "k"}}
    values = {"server": {"extraEnv": [{"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": ref}]}}
    env = template(helm, values).server()["env"]
    assert env[-1] == {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": ref}


def test_global_values_from_a_parent_chart_are_accepted(helm: Path) -> None:
    template(helm, {"global": {"imageRegistry": "r"}})
