"""Gaps to the charts platform teams run (issue 12): bitnami-style extension points, the
Service's exposure settings, and the observability objects (PrometheusRule checked by the real
promtool, the Grafana dashboard's queries too)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.chart import FULLNAME, NAMESPACE, Rendered, template
from tests.helm.system_tools import require

EVERYTHING = {
    "serviceMonitor": {"enabled": True},
    "prometheusRule": {"enabled": True},
    "grafanaDashboard": {"enabled": True},
    "networkPolicy": {"enabled": True},
    "ingress": {"enabled": True, "grpc": {"enabled": True}},
    "autoscaling": {"enabled": True},
}


def test_extra_volumes_mounts_env_sidecars_and_init_containers(helm: Path) -> None:
    values = {
        "extraVolumes": [{"name": "certs", "secret": {"secretName": "c"}}],
        "server": {
            "extraVolumeMounts": [{"name": "certs", "mountPath": "/certs", "readOnly": True}],
            "extraEnvFrom": [{"configMapRef": {"name": "env"}}],
        },
        "sidecars": [{"name": "proxy", "image": "envoyproxy/envoy:v1.31.0"}],
        "initContainers": [{"name": "warm", "image": "busybox:1.36", "command": ["true"]}],
    }
    rendered = template(helm, values)
    pod = rendered.pod()
    assert [c["name"] for c in pod["containers"]] == ["tritonserver", "proxy"]
    assert [c["name"] for c in pod["initContainers"]][-1] == "warm"  # after the chart's own
    assert {"name": "certs", "secret": {"secretName": "c"}} in pod["volumes"]
    assert {"name": "certs", "mountPath": "/certs", "readOnly": True} in rendered.server()[
        "volumeMounts"
    ]
    assert rendered.server()["envFrom"] == [{"configMapRef": {"name": "env"}}]


def test_the_specs_own_files_are_mountable_in_the_generate_step(helm: Path) -> None:
    """Calibration texts, a bucket corpus: volumes for the generate Job (or init container)."""
    generate = {
        "extraVolumes": [{"name": "data", "configMap": {"name": "calibration"}}],
        "extraVolumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
        "spec": {"optimize": {"calibration_file": "/data/calib.jsonl"}},
    }
    for mode, kind in (("release", "Job"), ("pod", "Deployment")):
        values = {"modelRepository": {"generate": {**generate, "mode": mode}}}
        rendered = template(helm, values)
        mounts = rendered.container("generate", kind)["volumeMounts"]
        assert {"name": "data", "mountPath": "/data", "readOnly": True} in mounts
        obj = rendered.job("generate") if kind == "Job" else rendered.one(kind)
        assert {"name": "data", "configMap": {"name": "calibration"}} in obj["spec"]["template"][
            "spec"
        ]["volumes"]


def test_common_labels_and_annotations_reach_every_object(helm: Path) -> None:
    values = {"commonLabels": {"team": "ml"}, "commonAnnotations": {"owner": "platform"}}
    rendered = template(helm, EVERYTHING, values)
    for doc in rendered.docs:
        assert doc["metadata"]["labels"]["team"] == "ml", doc["kind"]
        assert doc["metadata"]["annotations"]["owner"] == "platform", doc["kind"]
    hook = rendered.job("test")["metadata"]["annotations"]
    assert hook["helm.sh/hook"] == "test" and hook["owner"] == "platform"


@pytest.mark.parametrize(
    ("registry", "expected"),
    [
        ("mirror.example.com", "mirror.example.com/nvidia/tritonserver:24.10-py3"),
        (
            "mirror.example.com:5000/cache",
            "mirror.example.com:5000/cache/nvidia/tritonserver:24.10-py3",
        ),
    ],
)
def test_global_image_registry_replaces_every_registry(
    helm: Path, registry: str, expected: str
) -> None:
    values = {
        "global": {"imageRegistry": registry},
        "tritonkitImage": {
            "repository": "ml/tritonkit"
        },  # no registry host: the mirror is put in front
        "modelRepository": {"generate": {"spec": {"variant": "trt-fp16"}}},
    }
    rendered = template(helm, values)
    assert rendered.server()["image"] == expected
    assert rendered.container("build-plan")["image"] == expected.replace("tritonserver", "tensorrt")
    assert rendered.container("generate", "Job")["image"] == f"{registry}/ml/tritonkit:0.1.0"


def test_service_exposure_settings(helm: Path) -> None:
    values = {
        "service": {
            "type": "LoadBalancer",
            "nodePorts": {"http": 30080, "grpc": 30081},
            "loadBalancerSourceRanges": ["10.0.0.0/8"],
            "externalTrafficPolicy": "Local",
        }
    }
    spec = template(helm, values).one("Service")["spec"]
    assert spec["externalTrafficPolicy"] == "Local"
    assert spec["loadBalancerSourceRanges"] == ["10.0.0.0/8"]
    assert {p["name"]: p.get("nodePort") for p in spec["ports"]} == {
        "http": 30080, "grpc": 30081, "metrics": None,
    }  # fmt: skip
    cluster_ip = template(helm, {"service": {"nodePorts": {"http": 30080}}}).one("Service")["spec"]
    assert all("nodePort" not in p for p in cluster_ip["ports"])


def test_revision_history_limit(helm: Path) -> None:
    assert (
        template(helm, {"revisionHistoryLimit": 2}).one("Deployment")["spec"][
            "revisionHistoryLimit"
        ]
        == 2
    )


# Observability


def rule_groups(rendered: Rendered) -> list[dict[str, Any]]:
    return list(rendered.one("PrometheusRule")["spec"]["groups"])


def promtool_check(tmp_path: Path, groups: list[dict[str, Any]]) -> str:
    promtool = require("promtool")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    result = subprocess.run(
        [str(promtool), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_prometheus_rule_passes_promtool(helm: Path, tmp_path: Path) -> None:
    rendered = template(helm, {"prometheusRule": {"enabled": True, "labels": {"release": "kps"}}})
    rule = rendered.one("PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kps"
    groups = rule_groups(rendered)
    names = [r.get("record") or r.get("alert") for r in groups[0]["rules"]]
    assert names == [
        "tritonkit:queue_time_per_request_us",
        "TritonkitNotReady",
        "TritonkitErrorRate",
        "TritonkitQueueTimeHigh",
    ]
    assert "SUCCESS: 4 rules found" in promtool_check(tmp_path, groups)


def test_alert_thresholds_are_values(helm: Path) -> None:
    values = {
        "prometheusRule": {"enabled": True, "queueTimeSloMs": 20, "errorRatio": 0.05, "for": "2m"}
    }
    rules = {r.get("alert"): r for r in rule_groups(template(helm, values))[0]["rules"]}
    assert rules["TritonkitQueueTimeHigh"]["expr"].rstrip().endswith("> 20000")
    assert rules["TritonkitErrorRate"]["expr"].rstrip().endswith("> 0.05")
    assert rules["TritonkitErrorRate"]["for"] == "2m"


def dashboard(rendered: Rendered) -> dict[str, Any]:
    (text,) = rendered.named("ConfigMap", "-dashboard")["data"].values()
    return dict(json.loads(text))


def dashboard_queries(board: dict[str, Any]) -> dict[str, str]:
    return {
        f"{panel['title']} [{target['refId']}]": target["expr"]
        for panel in board["panels"]
        for target in panel["targets"]
    }


def test_grafana_dashboard_for_the_sidecar(helm: Path, tmp_path: Path) -> None:
    rendered = template(helm, {"grafanaDashboard": {"enabled": True, "namespace": "monitoring"}})
    configmap = rendered.named("ConfigMap", "-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["namespace"] == "monitoring"
    board = dashboard(rendered)
    assert board["title"] == f"tritonkit {NAMESPACE}/{FULLNAME}"
    assert len(board["uid"]) <= 40
    titles = [panel["title"] for panel in board["panels"]]
    for wanted in ("Queue time per request, by model", "Compute time per request, by model",
                   "Throughput", "Errors, by model", "GPU utilisation"):  # fmt: skip
        assert wanted in titles
    queries = dashboard_queries(board)
    assert all(f'namespace="{NAMESPACE}", service="{FULLNAME}"' in q for q in queries.values())
    # Every query is valid PromQL: promtool parses each as a recording rule.
    rules = [
        {"record": f"dashboard:q{i}", "expr": q.replace("$__rate_interval", "1m")}
        for i, q in enumerate(queries.values())
    ]
    assert f"SUCCESS: {len(rules)} rules found" in promtool_check(
        tmp_path, [{"name": "d", "rules": rules}]
    )
