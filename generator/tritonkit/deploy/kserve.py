"""A KServe InferenceService for a deployment, for clusters that standardise on KServe.

KServe's Triton runtime (ClusterServingRuntime `kserve-tritonserver`) starts tritonserver on
/mnt/models, where its storage initializer downloads `storage_uri` (the repository `tritonkit
generate` wrote, synced to object storage or a volume). RawDeployment mode needs no Knative.
The pod gets the chart's hardening: non-root, read-only root filesystem, no capabilities, the
restricted control APIs keyed by a Secret, and the inference readiness probe that catches a dead
Python-backend stub (helm/files/inference_probe.py, the chart's own script).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from tritonkit import __version__
from tritonkit.errors import SpecError
from tritonkit.spec import TRT_VARIANTS, DeploymentSpec
from tritonkit.util.resources import data_dir

# KServe names an InferenceService like a Knative/Kubernetes DNS-1035 label.
_DNS_1035 = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_RESTRICTED = "model-repository,model-config,shared-memory,logging,trace"
_HTTP_PORT = 8080  # the port KServe's Triton runtime gives tritonserver --http-port
_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _check(spec: DeploymentSpec, source: str) -> tuple[str, str]:
    problems = []
    if not _DNS_1035.fullmatch(spec.name):
        problems.append(
            f"{source}: name: '{spec.name}' is not a DNS-1035 label, which KServe requires: use "
            "lower-case letters, digits and '-', starting with a letter (at most 63)"
        )
    if spec.variant in TRT_VARIANTS:
        problems.append(
            f"{source}: variant: {spec.variant}: KServe's predictor has no per-pod plan build "
            "step: deploy with the Helm chart, or an ONNX variant"
        )
    if spec.kserve.storage_uri is None:
        problems.append(
            f"{source}: kserve.storage_uri: required: where the generated repository was synced "
            "(e.g. s3://bucket/minilm); pass --storage-uri"
        )
    if spec.kserve.image is None:
        problems.append(
            f"{source}: kserve.image: required: the stock Triton runtime image lacks `tokenizers` "
            "for the tokenizer model; build helm/images/triton/Dockerfile and pass --image"
        )
    try:
        cores = cpu_cores(spec.kserve.cpu)
    except SpecError as e:
        problems.append(f"{source}: {e}")
    else:
        target = spec.target.cpus
        if cores is not None and target is not None and cores < target:
            problems.append(
                f"{source}: kserve.cpu: {spec.kserve.cpu} is less than target.cpus {target}, the "
                f"cores the repository's instances and threads were generated for: raise --cpu "
                f"to {target}, or generate again with a smaller --target-cpus"
            )
    if spec.kserve.min_replicas > spec.kserve.max_replicas:
        problems.append(f"{source}: kserve.min_replicas: exceeds max_replicas")
    if problems:
        raise SpecError("\n".join(problems))
    return str(spec.kserve.storage_uri), str(spec.kserve.image)


def cpu_cores(quantity: str | None) -> float | None:
    """Cores in a Kubernetes CPU quantity ("2", "1.5", "500m"); None for None."""
    if quantity is None:
        return None
    match = re.fullmatch(r"\+?([0-9]+(?:\.[0-9]+)?)(m|[eE][0-9]+)?", quantity)
    if match is None:  # a memory-style suffix (k, Ki, ...) on a CPU request
        raise SpecError(f"kserve.cpu: '{quantity}' is not a CPU quantity, e.g. 2, 1.5, 500m")
    number, suffix = float(match.group(1)), match.group(2) or ""
    if suffix == "m":
        return number / 1000
    return number * 10 ** int(suffix[1:]) if suffix else number


def request_cpu(spec: DeploymentSpec) -> str:
    """The CPU request: set, else the target's cores the layout was generated for, else 2."""
    if spec.kserve.cpu is not None:
        return spec.kserve.cpu
    return str(spec.target.cpus) if spec.target.cpus is not None else "2"


def _probe() -> dict[str, Any]:
    script = (data_dir("helm") / "files" / "inference_probe.py").read_text(encoding="utf-8")
    command = ["python3", "-c", script, f"127.0.0.1:{_HTTP_PORT}"]
    return {"exec": {"command": command}, "periodSeconds": 10, "timeoutSeconds": 10,
            "failureThreshold": 3}  # fmt: skip


def inference_service(spec: DeploymentSpec, source: str = "spec") -> dict[str, Any]:
    """The InferenceService (serving.kserve.io/v1beta1) for `spec`; SpecError, all problems at
    once, for what KServe cannot serve."""
    storage_uri, image = _check(spec, source)
    options, name, gpu = spec.kserve, spec.name, spec.device == "gpu"
    key = options.admin_key_secret or f"{name}-tritonkit-admin-key"
    args = [
        "--strict-readiness=true",
        "--disable-auto-complete-config",
        "--model-control-mode=none",
        f"--http-restricted-api={_RESTRICTED}:tritonkit-admin-key=$(TRITONKIT_ADMIN_KEY)",
        f"--grpc-restricted-protocol={_RESTRICTED}:tritonkit-admin-key=$(TRITONKIT_ADMIN_KEY)",
        "--exit-timeout-secs=30",
    ]
    env: list[dict[str, Any]] = [
        {"name": "TRITONKIT_ADMIN_KEY",
         "valueFrom": {"secretKeyRef": {"name": key, "key": "admin-key"}}},
    ]  # fmt: skip
    limits: dict[str, str] = {"memory": _twice(options.memory)}
    if gpu:
        limits["nvidia.com/gpu"] = "1"
    else:
        args += ["--pinned-memory-pool-byte-size=0", "--cuda-memory-pool-byte-size=0:0"]
        env.append({"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"})
    probe = _probe()
    probe["exec"]["command"] += [name, "9"]
    model = {
        "modelFormat": {"name": "triton"},
        "runtime": options.runtime,
        "protocolVersion": "v2",
        "storageUri": storage_uri,
        "image": image,
        "args": args,
        "env": env,
        "resources": {
            "requests": {"cpu": request_cpu(spec), "memory": options.memory,
                         "ephemeral-storage": "8Gi"},
            "limits": limits,
        },
        "readinessProbe": probe,
        "startupProbe": {"httpGet": {"path": "/v2/health/ready", "port": _HTTP_PORT},
                         "periodSeconds": 10, "failureThreshold": 60},
        "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": _HTTP_PORT},
                          "periodSeconds": 15, "failureThreshold": 4},
        "securityContext": _SECURITY,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"},
                         {"name": "shm", "mountPath": "/dev/shm"}],
    }  # fmt: skip
    predictor: dict[str, Any] = {
        "minReplicas": options.min_replicas,
        "maxReplicas": options.max_replicas,
        "serviceAccountName": options.service_account or f"{name}-tritonkit",
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                            "fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "8Gi"}},
                    {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}],
        "model": model,
    }  # fmt: skip
    if gpu:
        predictor["tolerations"] = [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/name": "tritonkit", "app.kubernetes.io/instance": name,
                       "app.kubernetes.io/managed-by": "tritonkit"},
            "annotations": {"serving.kserve.io/deploymentMode": "RawDeployment",
                            "serving.kserve.io/autoscalerClass": "hpa",
                            "serving.kserve.io/metric": "cpu",
                            "serving.kserve.io/targetUtilizationPercentage": "70"},
        },
        "spec": {"predictor": predictor},
    }  # fmt: skip


def _twice(quantity: str) -> str:
    number = re.match(r"[+]?[0-9.]+", quantity)
    if number is None:  # KServeSpec validated the quantity already
        raise SpecError(f"kserve.memory: '{quantity}' is not a Kubernetes quantity")
    value = float(number.group(0)) * 2
    text = f"{value:g}" if value != int(value) else str(int(value))
    return text + quantity[number.end() :]


def inference_service_yaml(spec: DeploymentSpec, source: str) -> str:
    header = (
        f"# Written by `tritonkit kserve` {__version__} from {source}: regenerate it from the "
        "spec.\n# Create the admin-key Secret first: kubectl create secret generic "
        f"{spec.kserve.admin_key_secret or spec.name + '-tritonkit-admin-key'} "
        "--from-literal=admin-key=$(openssl rand -hex 24)\n"
    )
    return header + yaml.safe_dump(inference_service(spec, source), sort_keys=False)
