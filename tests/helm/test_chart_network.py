"""Issue 12 defect 3: NetworkPolicy and Ingress together must admit the ingress controller.

`admits` evaluates a rendered NetworkPolicy the way Kubernetes does
(https://kubernetes.io/docs/concepts/services-networking/network-policies/): a connection is
allowed when one ingress rule lists its port (or no ports) and one of its `from` peers selects
the client; a peer with both namespaceSelector and podSelector needs both to match, a bare
podSelector means the policy's own namespace."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helm.chart import NAMESPACE, template


@dataclass(frozen=True)
class Client:
    namespace: str
    namespace_labels: dict[str, str]
    pod_labels: dict[str, str]


NGINX = Client(
    "ingress-nginx",
    {"kubernetes.io/metadata.name": "ingress-nginx"},
    {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"},
)
STRANGER = Client("web", {"kubernetes.io/metadata.name": "web"}, {"app": "shop"})
NEIGHBOUR = Client(NAMESPACE, {"kubernetes.io/metadata.name": NAMESPACE}, {"app": "api"})


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector  # the chart renders no expressions
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _peer_admits(peer: dict[str, Any], client: Client) -> bool:
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], client.namespace_labels):
            return False
    elif client.namespace != NAMESPACE:
        return False
    return _selects(peer.get("podSelector", {}), client.pod_labels)


def admits(policy: dict[str, Any], client: Client, port: str) -> bool:
    for rule in policy["spec"]["ingress"]:
        ports = [p["port"] for p in rule.get("ports", [])]
        if ports and port not in ports:
            continue
        if any(_peer_admits(peer, client) for peer in rule.get("from", [])):
            return True
    return False


def policy(helm: Path, *values: dict[str, Any]) -> dict[str, Any]:
    base = {"networkPolicy": {"enabled": True}}
    return template(helm, base, *values).one("NetworkPolicy")


def test_ingress_nginx_reaches_http_when_the_ingress_is_on(helm: Path) -> None:
    rendered = policy(helm, {"ingress": {"enabled": True}})
    assert admits(rendered, NGINX, "http")
    assert not admits(rendered, NGINX, "grpc")  # no gRPC Ingress
    assert not admits(rendered, STRANGER, "http")
    assert admits(rendered, NEIGHBOUR, "http")  # default ingressFrom: this namespace


def test_grpc_ingress_opens_the_grpc_port_to_the_controller(helm: Path) -> None:
    rendered = policy(helm, {"ingress": {"grpc": {"enabled": True}}})
    assert admits(rendered, NGINX, "grpc") and not admits(rendered, NGINX, "http")


def test_no_ingress_no_controller(helm: Path) -> None:
    assert not admits(policy(helm), NGINX, "http")


def test_another_controller_can_be_named(helm: Path) -> None:
    traefik = Client("traefik", {"team": "edge"}, {"app.kubernetes.io/name": "traefik"})
    values = {
        "ingress": {"enabled": True},
        "networkPolicy": {
            "ingressControllerFrom": [
                {
                    "namespaceSelector": {"matchLabels": {"team": "edge"}},
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "traefik"}},
                }
            ]
        },
    }
    rendered = policy(helm, values)
    assert admits(rendered, traefik, "http") and not admits(rendered, NGINX, "http")


@pytest.mark.parametrize("client", [NGINX, STRANGER, NEIGHBOUR])
def test_metrics_stay_open_to_every_namespace_by_default(helm: Path, client: Client) -> None:
    assert admits(policy(helm), client, "metrics")
