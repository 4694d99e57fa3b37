"""Talking to a running Triton: the same calls over HTTP and gRPC, the admin key that
restricted APIs need, and the served deployment read by the repository contract."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2

from tritonkit.errors import CheckError
from tritonkit.repository.contract import Deployment

# Header that unlocks the restricted APIs (model-repository, model-config, ...) of servers
# started by tritonkit or the Helm chart; the key comes from this environment variable.
ADMIN_KEY_HEADER = "tritonkit-admin-key"
ADMIN_KEY_ENV = "TRITONKIT_ADMIN_KEY"
# Triton's gRPC server matches restricted-protocol headers as metadata keys with this prefix
# (server v2.51.0 src/grpc/grpc_server.h:48, kRestrictedProtocolHeaderTemplate; verified on
# the local 2.51 binary): the
# metadata key must be lower-case "triton-grpc-protocol-<header>".
GRPC_HEADER_PREFIX = "triton-grpc-protocol-"


def grpc_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """HTTP restricted-API headers as the gRPC metadata Triton expects."""
    return {f"{GRPC_HEADER_PREFIX}{k.lower()}": v for k, v in headers.items()}


def key_file(http_url: str) -> Path:
    """Where a local server started by tritonkit keeps its admin key (0600, this user only)."""
    home = os.environ.get("TRITONKIT_HOME")
    root = Path(home).expanduser() if home else Path.home() / ".cache" / "tritonkit"
    return root / "keys" / f"{http_url.replace(':', '-').replace('/', '_')}.key"


def admin_headers(key: str | None = None, http_url: str | None = None) -> dict[str, str]:
    """The header that unlocks restricted APIs: `key`, else $TRITONKIT_ADMIN_KEY, else the key
    file a local `tritonkit serve` wrote for `http_url`, else none."""
    value = key if key is not None else os.environ.get(ADMIN_KEY_ENV)
    if not value and http_url is not None:
        with contextlib.suppress(OSError):
            value = key_file(http_url).read_text(encoding="utf-8").strip()
    return {ADMIN_KEY_HEADER: value} if value else {}


class Client:
    """tritonclient.http or tritonclient.grpc behind one interface."""

    def __init__(self, protocol: str, url: str, headers: Mapping[str, str] | None = None) -> None:
        self.protocol = protocol
        if protocol == "http":
            import tritonclient.http as module
        else:
            import tritonclient.grpc as module  # type: ignore[no-redef]
        self.module: Any = module
        self.client: Any = module.InferenceServerClient(url=url)
        self.url = url
        given = dict(headers if headers is not None else admin_headers(http_url=url))
        self.headers = grpc_headers(given) if protocol == "grpc" else given

    def ensure_ready(self, name: str) -> None:
        try:
            live = self.client.is_server_live()
        except Exception as e:
            raise CheckError(
                f"{self.protocol} {self.url}: cannot reach the server ({type(e).__name__}): "
                "start it with `tritonkit serve` or fix --url"
            ) from None
        if not live:
            raise CheckError(f"{self.protocol} {self.url}: server is not live")
        if not self.client.is_model_ready(name):
            raise CheckError(
                f"{self.protocol} {self.url}: model '{name}' is not ready on the server: "
                "check --name (and that the repository loaded)"
            )

    def config(self, name: str) -> model_config_pb2.ModelConfig:
        """The served config (restricted API: sends the admin key when one is set)."""
        try:
            if self.protocol == "http":
                data = dict(self.client.get_model_config(name, headers=self.headers))
            else:
                data = self.client.get_model_config(name, headers=self.headers, as_json=True)
                data = dict(data["config"])
        except Exception as e:
            raise CheckError(
                f"{self.protocol} {self.url}: cannot read the config of '{name}' ({_first(e)}): "
                f"if the server restricts the model-config API, set {ADMIN_KEY_ENV}"
            ) from None
        config = model_config_pb2.ModelConfig()
        json_format.ParseDict(data, config, ignore_unknown_fields=True)
        return config

    def infer(self, name: str, texts: Sequence[str], outputs: Sequence[str]) -> dict[str, Any]:
        data = np.array([[t.encode("utf-8")] for t in texts], dtype=np.object_)
        tensor = self.module.InferInput("TEXT", list(data.shape), "BYTES")
        tensor.set_data_from_numpy(data)
        requested = [self.module.InferRequestedOutput(o) for o in outputs]
        result = self.client.infer(name, [tensor], outputs=requested)
        return {o: result.as_numpy(o) for o in outputs}

    def close(self) -> None:
        self.client.close()


def _first(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def served_deployment(client: Client, name: str) -> Deployment:
    """The deployment `name` as the server serves it (the ensemble and its two steps)."""
    ensemble = client.config(name)
    configs = {name: ensemble}
    for step in ensemble.ensemble_scheduling.step:
        configs[step.model_name] = client.config(step.model_name)
    return Deployment.from_configs(configs, name, f"{client.protocol} {client.url}")
