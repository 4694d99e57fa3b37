"""Issue 12 defect 1 (Triton's control APIs exposed) and defect 5 (the NGC entrypoint skipped):
the restricted APIs, the admin key's Secret, the Ingress allowlists, args instead of command."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from tests.helm.chart import FULLNAME, Rendered, template

CATEGORIES = "model-repository,model-config,shared-memory,logging,trace"
KEY = "tritonkit-admin-key=$(TRITONKIT_ADMIN_KEY)"


def server_args(rendered: Rendered) -> list[str]:
    return list(rendered.server()["args"])


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def test_control_apis_are_restricted_by_default(helm: Path) -> None:
    """Triton's secure deployment guide (docs/customization_guide/deploy.md): restrict the
    control APIs with --http-restricted-api / --grpc-restricted-protocol and a key header."""
    rendered = template(helm)
    args = server_args(rendered)
    assert f"--http-restricted-api={CATEGORIES}:{KEY}" in args
    assert f"--grpc-restricted-protocol={CATEGORIES}:{KEY}" in args
    # $(VAR) in args is expanded by Kubernetes from the container's env
    # (https://kubernetes.io/docs/tasks/inject-data-application/define-command-argument-container/)
    key_env = env_of(rendered.server())["TRITONKIT_ADMIN_KEY"]
    ref = {"name": f"{FULLNAME}-admin-key", "key": "admin-key"}
    assert key_env == {"name": "TRITONKIT_ADMIN_KEY", "valueFrom": {"secretKeyRef": ref}}
    secret = rendered.named("Secret", "-admin-key")
    key = base64.b64decode(secret["data"]["admin-key"]).decode()
    assert len(key) == 48 and key.isalnum()  # nothing that could break the flag's syntax
    other = base64.b64decode(template(helm).named("Secret", "-admin-key")["data"]["admin-key"])
    assert other.decode() != key  # random, not derived from anything in the values


def test_an_existing_secret_replaces_the_generated_one(helm: Path) -> None:
    values = {"server": {"restrictedApi": {"existingSecret": "ops-key", "secretKey": "k"}}}
    rendered = template(helm, values)
    assert "Secret" not in rendered.kinds()
    ref = env_of(rendered.server())["TRITONKIT_ADMIN_KEY"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "ops-key", "key": "k"}


def test_categories_and_header_are_values(helm: Path) -> None:
    values = {"server": {"restrictedApi": {"categories": ["model-repository"], "header": "x-k"}}}
    args = server_args(template(helm, values))
    assert "--http-restricted-api=model-repository:x-k=$(TRITONKIT_ADMIN_KEY)" in args


def test_restriction_can_be_switched_off(helm: Path) -> None:
    rendered = template(helm, {"server": {"restrictedApi": {"enabled": False}}})
    assert not any("restricted" in arg for arg in server_args(rendered))
    assert "Secret" not in rendered.kinds()
    assert "TRITONKIT_ADMIN_KEY" not in env_of(rendered.server())
    assert "TRITONKIT_ADMIN_KEY" not in env_of(rendered.container("check", "Job"))


def test_the_test_hook_gets_the_key(helm: Path) -> None:
    """tritonkit check reads the served configs (model-config is restricted): the hook's steps
    get the key from the same Secret and send the header (tritonkit.server.client)."""
    rendered = template(helm)
    server_ref = env_of(rendered.server())["TRITONKIT_ADMIN_KEY"]
    for step in ("check", "loadtest"):
        assert env_of(rendered.container(step, "Job"))["TRITONKIT_ADMIN_KEY"] == server_ref


def test_tritonserver_runs_through_the_image_entrypoint(helm: Path) -> None:
    """Defect 5: args, no command, as NVIDIA's deploy/ charts and KServe's Triton runtime, so
    /opt/nvidia/nvidia_entrypoint.sh (CUDA compatibility checks) runs first."""
    server = template(helm).server()
    assert "command" not in server
    assert server["args"][0] == "tritonserver"
    assert server["args"][1].startswith("--model-repository=")


# The Ingress: which request paths reach the Service. Kubernetes' path matching
# (https://kubernetes.io/docs/concepts/services-networking/ingress/#path-types): Exact is the
# whole path, case-sensitive; Prefix matches element by element, split on "/".


def _matches(rule: dict[str, Any], path: str) -> bool:
    if rule["pathType"] == "Exact":
        return bool(path == rule["path"])
    prefix = [part for part in rule["path"].split("/") if part]
    parts = [part for part in path.split("/") if part]
    return parts[: len(prefix)] == prefix


def routed(ingress: dict[str, Any], path: str) -> str | None:
    """The backend port name a request path reaches, or None."""
    for rule in ingress["spec"]["rules"]:
        for entry in rule["http"]["paths"]:
            if _matches(entry, path):
                return str(entry["backend"]["service"]["port"]["name"])
    return None


ALLOWED = [
    "/v2",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models/minilm",
    "/v2/models/minilm/ready",
    "/v2/models/minilm/infer",
    "/v2/models/minilm/stats",
]
DENIED = [
    "/v2/repository/index",
    "/v2/repository/models/evil/load",
    "/v2/repository/models/minilm/unload",
    "/v2/models/minilm/config",
    "/v2/models/minilm/trace/setting",
    "/v2/trace/setting",
    "/v2/logging",
    "/v2/systemsharedmemory/region/x/register",
    "/v2/cudasharedmemory/status",
    "/v2/models/minilm_onnx/infer",
    "/v2/models/minilm_tokenizer/infer",
    "/metrics",
]


def test_ingress_routes_only_inference_health_metadata_and_statistics(helm: Path) -> None:
    ingress = template(helm, {"ingress": {"enabled": True}}).one("Ingress")
    assert {path: routed(ingress, path) for path in ALLOWED} == dict.fromkeys(ALLOWED, "http")
    assert {path: routed(ingress, path) for path in DENIED} == dict.fromkeys(DENIED)


def test_a_host_can_widen_the_ingress(helm: Path) -> None:
    hosts = [{"host": "t.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}]
    ingress = template(helm, {"ingress": {"enabled": True, "hosts": hosts}}).one("Ingress")
    assert all(routed(ingress, path) == "http" for path in ALLOWED + DENIED)


@pytest.mark.parametrize("method", ["ModelInfer", "ModelStreamInfer", "ServerReady", "ModelReady"])
def test_grpc_ingress_routes_inference_methods(helm: Path, method: str) -> None:
    values = {"ingress": {"grpc": {"enabled": True, "host": "g.example.com"}}}
    ingress = template(helm, values).named("Ingress", "-grpc")
    assert routed(ingress, f"/inference.GRPCInferenceService/{method}") == "grpc"
    annotations = ingress["metadata"]["annotations"]
    # https://kubernetes.github.io/ingress-nginx/examples/grpc/: GRPC backend, TLS on the host
    assert annotations["nginx.ingress.kubernetes.io/backend-protocol"] == "GRPC"
    assert ingress["spec"]["tls"] == [{"hosts": ["g.example.com"]}]


@pytest.mark.parametrize(
    "method",
    ["RepositoryModelLoad", "RepositoryIndex", "LogSettings", "TraceSetting", "ModelConfig"],
)
def test_grpc_ingress_does_not_route_control_methods(helm: Path, method: str) -> None:
    ingress = template(helm, {"ingress": {"grpc": {"enabled": True}}}).named("Ingress", "-grpc")
    assert routed(ingress, f"/inference.GRPCInferenceService/{method}") is None


def test_grpc_port_declares_h2c(helm: Path) -> None:
    """appProtocol kubernetes.io/h2c: gRPC is HTTP/2 over cleartext
    (https://kubernetes.io/docs/concepts/services-networking/service/#application-protocol)."""
    ports = {p["name"]: p for p in template(helm).one("Service")["spec"]["ports"]}
    assert ports["grpc"]["appProtocol"] == "kubernetes.io/h2c"
    assert ports["http"]["appProtocol"] == "http"
