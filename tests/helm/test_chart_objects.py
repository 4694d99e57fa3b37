"""Assertions on the rendered objects: GPU and CPU mode, probes, security, secrets, the
repository sources, autoscaling and the `helm test` hook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.chart import FULLNAME, Rendered, template

CPU = {"gpu": {"enabled": False}}
S3_SECRET = {
    "modelRepository": {
        "source": "objectStorage",
        "objectStorage": {"url": "s3://bucket/repo", "existingSecret": "aws-creds"},
    }
}
GS_SECRET = {
    "modelRepository": {
        "source": "objectStorage",
        "objectStorage": {"url": "gs://bucket/repo", "existingSecret": "gcs-key"},
    }
}
AS_SECRET = {
    "modelRepository": {
        "source": "objectStorage",
        "objectStorage": {"url": "as://account/container/repo", "existingSecret": "azure"},
    }
}
S3_IDENTITY = {
    "modelRepository": {
        "source": "objectStorage",
        "objectStorage": {"url": "s3://bucket/repo", "credentials": "workloadIdentity"},
    },
    "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/r"}},
}
EVERY_SOURCE: dict[str, dict[str, Any]] = {
    "generate": {},
    "pvc": {"modelRepository": {"source": "pvc", "pvc": {"claimName": "repo"}}},
    "s3-secret": S3_SECRET,
    "gs-secret": GS_SECRET,
    "as-secret": AS_SECRET,
    "s3-identity": S3_IDENTITY,
    "image": {"modelRepository": {"source": "image"}},
}


def args_of(rendered: Rendered) -> list[str]:
    """tritonserver's arguments after the executable (the container has args, no command)."""
    args = list(rendered.server()["args"])
    assert args[0] == "tritonserver" and "command" not in rendered.server()
    return args[1:]


def flag(rendered: Rendered, name: str) -> str | None:
    values = [a.split("=", 1)[1] for a in args_of(rendered) if a.startswith(f"{name}=")]
    assert len(values) <= 1, values
    return values[0] if values else None


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container.get("env", [])}


# GPU and CPU mode


def test_gpu_mode_requests_gpus_and_tolerates_the_gpu_taint(helm: Path) -> None:
    rendered = template(helm, {"gpu": {"count": 2}, "runtimeClassName": "nvidia"})
    server = rendered.server()
    assert server["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert server["resources"]["limits"]["memory"] == "8Gi"  # the user's limits are kept
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    assert pod["runtimeClassName"] == "nvidia"
    assert flag(rendered, "--allow-gpu-metrics") == "true"
    spec = yaml.safe_load(rendered.one("ConfigMap")["data"]["tritonkit.yaml"])
    assert spec["device"] == "gpu"


def test_gpu_resource_name_is_configurable(helm: Path) -> None:
    rendered = template(helm, {"gpu": {"resourceName": "nvidia.com/mig-1g.10gb"}})
    assert rendered.server()["resources"]["limits"]["nvidia.com/mig-1g.10gb"] == 1
    assert "nvidia.com/gpu" not in rendered.server()["resources"]["limits"]


def test_cpu_mode_has_no_gpu_anywhere(helm: Path) -> None:
    rendered = template(helm, CPU)
    assert "nvidia.com/gpu" not in rendered.text
    assert "tolerations" not in rendered.one("Deployment")["spec"]["template"]["spec"]
    assert flag(rendered, "--allow-gpu-metrics") == "false"
    assert flag(rendered, "--pinned-memory-pool-byte-size") == "0"
    assert flag(rendered, "--cuda-memory-pool-byte-size") == "0:0"
    spec = yaml.safe_load(rendered.one("ConfigMap")["data"]["tritonkit.yaml"])
    assert spec["device"] == "cpu"


def test_user_tolerations_are_kept_beside_the_gpu_one(helm: Path) -> None:
    extra = {"key": "pool", "operator": "Equal", "value": "inference", "effect": "NoSchedule"}
    rendered = template(helm, {"tolerations": [extra]})
    tolerations = rendered.one("Deployment")["spec"]["template"]["spec"]["tolerations"]
    assert [t["key"] for t in tolerations] == ["nvidia.com/gpu", "pool"]


# Probes, ports, Service


@pytest.mark.parametrize("ports", [None, {"http": 9000, "grpc": 9001, "metrics": 9002}])
def test_probes_point_at_the_http_port_and_health_paths(
    helm: Path, ports: dict[str, int] | None
) -> None:
    rendered = template(helm, {"ports": ports} if ports else {})
    expected = ports or {"http": 8000, "grpc": 8001, "metrics": 8002}
    server = rendered.server()
    container_ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    assert container_ports == expected
    probes = {k: server[k]["httpGet"] for k in ("startupProbe", "livenessProbe")}
    assert probes == {
        "startupProbe": {"path": "/v2/health/ready", "port": "http"},
        "livenessProbe": {"path": "/v2/health/live", "port": "http"},
    }
    # readiness runs one inference on the container's own HTTP port (test_chart_probes.py)
    assert server["readinessProbe"]["exec"]["command"][3] == f"127.0.0.1:{expected['http']}"
    assert flag(rendered, "--http-port") == str(expected["http"])
    assert flag(rendered, "--grpc-port") == str(expected["grpc"])
    assert flag(rendered, "--metrics-port") == str(expected["metrics"])
    service_ports = {
        p["name"]: (p["port"], p["targetPort"]) for p in rendered.one("Service")["spec"]["ports"]
    }
    assert service_ports == {name: (port, name) for name, port in expected.items()}


def test_startup_probe_allows_minutes_of_model_loading(helm: Path) -> None:
    startup = template(helm).server()["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] == 600
    startup = template(helm, {"probes": {"startup": {"failureThreshold": 90}}}).server()
    assert startup["startupProbe"]["periodSeconds"] * 90 == 900


def test_probes_can_be_switched_off(helm: Path) -> None:
    server = template(helm, {"probes": {"startup": {"enabled": False}}}).server()
    assert "startupProbe" not in server
    assert "livenessProbe" in server


def test_service_selects_only_server_pods(helm: Path) -> None:
    rendered = template(helm)
    selector = rendered.one("Service")["spec"]["selector"]
    assert selector["app.kubernetes.io/component"] == "server"
    for job in rendered.all("Job"):
        assert not selector.items() <= job["spec"]["template"]["metadata"]["labels"].items()
    pod_labels = rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()


# Security


@pytest.mark.parametrize("source", EVERY_SOURCE)
def test_every_container_is_locked_down(helm: Path, source: str) -> None:
    rendered = template(helm, EVERY_SOURCE[source])
    for where, container in rendered.containers():
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, where
        assert context["allowPrivilegeEscalation"] is False, where
        assert context["runAsNonRoot"] is True, where
        assert context["capabilities"] == {"drop": ["ALL"]}, where
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert "privileged" not in context, where
    for kind, pod in rendered.pod_specs():
        assert pod["securityContext"]["runAsNonRoot"] is True, kind
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, kind
        assert pod["automountServiceAccountToken"] is False, kind
        assert "hostNetwork" not in pod and "hostPID" not in pod, kind
    assert rendered.one("ServiceAccount")["automountServiceAccountToken"] is False


@pytest.mark.parametrize("mode", ["release", "pod"])
def test_writable_paths_are_emptydirs_and_shm_is_memory_backed(helm: Path, mode: str) -> None:
    values = {"shm": {"sizeLimit": "2Gi"}, "modelRepository": {"generate": {"mode": mode}}}
    rendered = template(helm, values)
    pod = rendered.pod()
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["shm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "2Gi"}
    assert volumes["tmp"]["emptyDir"] == {"sizeLimit": "8Gi"}
    mounts = {m["mountPath"]: m for m in rendered.server()["volumeMounts"]}
    assert mounts["/dev/shm"]["name"] == "shm"
    assert mounts["/tmp"]["name"] == "tmp"
    repository = mounts["/models" if mode == "release" else "/workspace"]
    assert repository["readOnly"] is True  # tritonserver only reads the repository
    generate = {
        m["mountPath"]: m for m in rendered.container("generate", PODS[mode])["volumeMounts"]
    }
    assert generate["/tmp"]["name"] == "tmp"
    assert "readOnly" not in generate["/repositories" if mode == "release" else "/workspace"]
    for where, container in rendered.containers():
        command = container.get("command", [])
        if "tritonkit" in command or "tritonkit generate" in " ".join(command):
            assert env_of(container)["HOME"]["value"] == "/tmp", where


def test_token_is_mounted_only_when_asked(helm: Path) -> None:
    rendered = template(helm, {"serviceAccount": {"automountToken": True}})
    assert rendered.one("Deployment")["spec"]["template"]["spec"]["automountServiceAccountToken"]
    for job in rendered.all("Job"):
        assert job["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


# No plaintext secrets


@pytest.mark.parametrize("source", EVERY_SOURCE)
def test_no_secret_values_are_rendered(helm: Path, source: str) -> None:
    """Credentials never come from values; the only Secret is the generated admin key."""
    rendered = template(helm, EVERY_SOURCE[source])
    assert [s["metadata"]["name"] for s in rendered.all("Secret")] == [f"{FULLNAME}-admin-key"]
    credential_names = ("SECRET", "TOKEN", "PASSWORD", "ACCESS_KEY", "STORAGE_KEY")
    for where, container in rendered.containers():
        for name, entry in env_of(container).items():
            if any(word in name for word in credential_names):
                assert "value" not in entry and "secretKeyRef" in entry["valueFrom"], where


def test_s3_credentials_come_from_the_existing_secret(helm: Path) -> None:
    rendered = template(helm, S3_SECRET, {"modelRepository": {"objectStorage": {"region": "x"}}})
    server = rendered.server()
    assert server["envFrom"] == [{"secretRef": {"name": "aws-creds"}}]
    assert env_of(server)["AWS_DEFAULT_REGION"]["value"] == "x"
    assert flag(rendered, "--model-repository") == "s3://bucket/repo"


def test_gcs_key_file_is_mounted_from_the_secret(helm: Path) -> None:
    rendered = template(helm, GS_SECRET)
    server = rendered.server()
    assert "envFrom" not in server
    path = env_of(server)["GOOGLE_APPLICATION_CREDENTIALS"]["value"]
    assert path == "/var/run/secrets/tritonkit/gcs/credentials.json"
    mounts = {m["name"]: m for m in server["volumeMounts"]}
    assert mounts["gcs-credentials"]["readOnly"] is True
    assert path.startswith(mounts["gcs-credentials"]["mountPath"] + "/")
    volumes = {
        v["name"]: v for v in rendered.one("Deployment")["spec"]["template"]["spec"]["volumes"]
    }
    assert volumes["gcs-credentials"]["secret"] == {"secretName": "gcs-key"}


def test_azure_credentials_come_from_the_existing_secret(helm: Path) -> None:
    server = template(helm, AS_SECRET).server()
    assert server["envFrom"] == [{"secretRef": {"name": "azure"}}]


def test_workload_identity_uses_the_service_account_and_no_secret(helm: Path) -> None:
    rendered = template(helm, S3_IDENTITY)
    server = rendered.server()
    assert "envFrom" not in server
    assert list(env_of(server)) == ["TRITONKIT_ADMIN_KEY"]  # from the admin-key Secret only
    account = rendered.one("ServiceAccount")
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/r"
    }
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]


# Repository sources

POD_MODE = {"modelRepository": {"generate": {"mode": "pod"}}}
PODS = {"release": "Job", "pod": "Deployment"}


def test_generate_job_runs_tritonkit_generate_from_the_configmap(helm: Path) -> None:
    rendered = template(helm, {"modelSource": {"pvc": {"claimName": "hf", "subPath": "m"}}})
    generate = rendered.container("generate", "Job")
    assert generate["command"][:2] == ["sh", "-c"]
    script = generate["command"][2]
    assert "tritonkit generate --spec /etc/tritonkit/tritonkit.yaml --force\n" in script
    assert generate["image"] == "registry.example.com/ml/tritonkit:0.1.0"
    env = env_of(generate)
    assert env["HF_HUB_OFFLINE"]["value"] == "1"
    mounts = {m["mountPath"]: m for m in generate["volumeMounts"]}
    assert mounts["/model"] == {
        "name": "model-source", "mountPath": "/model", "readOnly": True, "subPath": "m",
    }  # fmt: skip
    assert mounts["/etc/tritonkit"]["readOnly"] is True
    spec = yaml.safe_load(rendered.named("ConfigMap", "-spec")["data"]["tritonkit.yaml"])
    assert spec["model"] == "/model"
    assert spec["output"] == env["TRITONKIT_REPOSITORY"]["value"]
    assert spec["output"].startswith("/repositories/")
    assert spec["name"] == "minilm"
    assert spec["triton_image"] == "nvcr.io/nvidia/tritonserver:24.10-py3"
    assert flag(rendered, "--model-repository") == "/models"
    assert "--disable-auto-complete-config" in args_of(rendered)
    bundle = "cp -R /opt/tritonkit/triton-python/. "
    assert bundle + '"$TRITONKIT_REPOSITORY/${TRITONKIT_MODEL_NAME}_tokenizer/1/"' in script


def test_pod_mode_generates_in_an_init_container(helm: Path) -> None:
    rendered = template(helm, POD_MODE)
    assert "Job" not in {d["kind"] for d in rendered.docs if "generate" in d["metadata"]["name"]}
    generate = rendered.container("generate")
    assert generate["command"] == [
        "timeout", "-k", "30", "1800",
        "tritonkit", "generate", "--spec", "/etc/tritonkit/tritonkit.yaml", "--force",
    ]  # fmt: skip
    spec = yaml.safe_load(rendered.named("ConfigMap", "-spec")["data"]["tritonkit.yaml"])
    assert spec["output"] == "/workspace/repository"
    assert flag(rendered, "--model-repository") == "/workspace/repository"
    bundle = rendered.container("bundle-tokenizers")
    assert bundle["command"] == [
        "cp", "-R", "/opt/tritonkit/triton-python/.", "/workspace/repository/minilm_tokenizer/1/",
    ]  # fmt: skip


def test_bundling_tokenizers_can_be_switched_off(helm: Path) -> None:
    off = {"modelRepository": {"generate": {"bundleTokenizers": False}}}
    init = template(helm, POD_MODE, off).pod()["initContainers"]
    assert [c["name"] for c in init] == ["generate"]
    script = template(helm, off).container("generate", "Job")["command"][2]
    assert "triton-python" not in script


def test_a_spec_change_rolls_the_pods(helm: Path) -> None:
    def pod_template(*values: dict[str, Any]) -> str:
        return yaml.safe_dump(template(helm, *values).one("Deployment")["spec"]["template"])

    change = {"modelRepository": {"generate": {"spec": {"max_batch_size": 8}}}}
    assert pod_template() != pod_template(change)  # release: another repository folder
    assert pod_template(POD_MODE) != pod_template(POD_MODE, change)  # pod: the spec checksum


def test_pvc_source_mounts_the_claim_read_only(helm: Path) -> None:
    rendered = template(
        helm, {"modelRepository": {"source": "pvc", "pvc": {"claimName": "repo", "subPath": "r"}}}
    )
    pod = rendered.pod()
    assert "initContainers" not in pod
    assert "ConfigMap" not in rendered.kinds()
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["model-repository"]["persistentVolumeClaim"] == {
        "claimName": "repo", "readOnly": True,
    }  # fmt: skip
    mounts = {m["name"]: m for m in rendered.server()["volumeMounts"]}
    assert mounts["model-repository"] == {
        "name": "model-repository", "mountPath": "/models", "readOnly": True, "subPath": "r",
    }  # fmt: skip
    assert flag(rendered, "--model-repository") == "/models"
    assert "--disable-auto-complete-config" not in args_of(rendered)


def test_image_source_reads_the_folder_in_the_image(helm: Path) -> None:
    rendered = template(helm, {"modelRepository": {"source": "image", "image": {"path": "/opt/r"}}})
    assert flag(rendered, "--model-repository") == "/opt/r"
    names = {v["name"] for v in rendered.pod()["volumes"]}
    assert names == {"tmp", "shm"}


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ({}, ["--model-control-mode=none"]),
        ({"modelControlMode": "explicit"}, ["--model-control-mode=explicit", "--load-model=*"]),
        (
            {"modelControlMode": "explicit", "loadModels": ["a", "minilm"]},
            ["--model-control-mode=explicit", "--load-model=a", "--load-model=minilm"],
        ),
        (
            {"modelControlMode": "poll", "repositoryPollSeconds": 7},
            ["--model-control-mode=poll", "--repository-poll-secs=7"],
        ),
    ],
)
def test_model_control_mode(helm: Path, server: dict[str, Any], expected: list[str]) -> None:
    args = args_of(template(helm, {"server": server}))
    assert args[1 : 1 + len(expected)] == expected


def test_digest_pins_the_image(helm: Path) -> None:
    digest = "sha256:" + "a" * 64
    rendered = template(helm, {"image": {"digest": digest}})
    assert rendered.server()["image"] == f"nvcr.io/nvidia/tritonserver@{digest}"


# Scheduling, disruption, autoscaling


def test_spread_constraints_select_this_release_by_default(helm: Path) -> None:
    pod = template(helm).one("Deployment")["spec"]["template"]["spec"]
    (constraint,) = pod["topologySpreadConstraints"]
    assert constraint["labelSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "tritonkit",
        "app.kubernetes.io/instance": "t",
        "app.kubernetes.io/component": "server",
    }


def test_pdb_min_available_replaces_max_unavailable(helm: Path) -> None:
    assert template(helm).one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    spec = template(helm, {"podDisruptionBudget": {"minAvailable": 2}}).one("PodDisruptionBudget")
    assert spec["spec"]["minAvailable"] == 2 and "maxUnavailable" not in spec["spec"]


def test_hpa_off_keeps_replicas(helm: Path) -> None:
    rendered = template(helm, {"replicaCount": 3})
    assert rendered.one("Deployment")["spec"]["replicas"] == 3
    assert "HorizontalPodAutoscaler" not in rendered.kinds()


def test_hpa_on_resource_metric(helm: Path) -> None:
    rendered = template(helm, {"autoscaling": {"enabled": True, "metric": "resource"}})
    assert "replicas" not in rendered.one("Deployment")["spec"]
    hpa = rendered.one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": FULLNAME,
    }  # fmt: skip
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70},
            },
        }
    ]


def test_hpa_on_queue_time_metric(helm: Path) -> None:
    hpa = template(helm, {"autoscaling": {"enabled": True}}).one("HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "triton_queue_time_per_request_us"},
                "target": {"type": "AverageValue", "averageValue": "20000"},
            },
        }
    ]
    assert hpa["spec"]["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 300}}


# Monitoring, network, ingress


def test_service_monitor_scrapes_the_metrics_port(helm: Path) -> None:
    rendered = template(helm, {"serviceMonitor": {"enabled": True, "labels": {"release": "p"}}})
    monitor = rendered.one("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "p"
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
    ]
    service_labels = rendered.one("Service")["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service_labels.items()


def test_network_policy_admits_the_test_hook(helm: Path) -> None:
    peer = {"namespaceSelector": {"matchLabels": {"team": "ml"}}}
    rendered = template(helm, {"networkPolicy": {"enabled": True, "ingressFrom": [peer]}})
    policy = rendered.one("NetworkPolicy")
    inference, metrics = policy["spec"]["ingress"]
    assert [p["port"] for p in inference["ports"]] == ["http", "grpc"]
    assert inference["from"][0] == peer
    test_labels = rendered.job("test")["spec"]["template"]["metadata"]["labels"]
    selector = inference["from"][1]["podSelector"]["matchLabels"]
    assert selector.items() <= test_labels.items()
    assert [p["port"] for p in metrics["ports"]] == ["metrics"]


def test_ingress_routes_to_the_http_port(helm: Path) -> None:
    ingress = template(helm, {"ingress": {"enabled": True}}).one("Ingress")
    for path in ingress["spec"]["rules"][0]["http"]["paths"]:
        assert path["backend"] == {"service": {"name": FULLNAME, "port": {"name": "http"}}}


def test_every_object_has_the_recommended_labels(helm: Path) -> None:
    rendered = template(
        helm,
        {
            "serviceMonitor": {"enabled": True},
            "networkPolicy": {"enabled": True},
            "ingress": {"enabled": True},
            "autoscaling": {"enabled": True},
        },
    )
    for doc in rendered.docs:
        labels = doc["metadata"]["labels"]
        for key in ("name", "instance", "version", "managed-by", "part-of"):
            assert f"app.kubernetes.io/{key}" in labels, (doc["kind"], key)


# The `helm test` hook


def test_hook_runs_check_then_loadtest_against_the_service(helm: Path) -> None:
    rendered = template(helm)
    job = rendered.job("test")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert [c["name"] for c in pod["initContainers"]] == ["check"]
    assert [c["name"] for c in pod["containers"]] == ["loadtest"]
    assert rendered.container("check", "Job")["command"] == [
        "tritonkit", "check", "--url", f"{FULLNAME}:8000", "--grpc-url", f"{FULLNAME}:8001",
        "--name", "minilm", "--min-cosine", "0.999", "--max-prob-diff", "0.001", "/model",
    ]  # fmt: skip
    assert " ".join(rendered.container("loadtest", "Job")["command"]) == (
        f"tritonkit loadtest --url {FULLNAME}:8000 --name minilm --protocol http --users 4 "
        "--duration 20s --slo p95_ms=500 --slo error_rate=0 --output /tmp/loadtest"
    )


def test_hook_values_reach_the_commands(helm: Path) -> None:
    texts = ["hello", 'a "quoted"\ntext']
    values: dict[str, Any] = {
        "modelName": "sentiment",
        "test": {
            "check": {"minCosine": 0.99, "texts": texts},
            "loadtest": {"users": 8, "duration": "1m", "p95Ms": 75.5, "errorRate": 0.01},
        },
        "ports": {"metrics": 9102},
    }
    rendered = template(helm, values)
    check = rendered.container("check", "Job")["command"]
    assert check[check.index("--min-cosine") + 1] == "0.99"
    assert check[check.index("--texts") + 1] == "/etc/tritonkit/check-texts.jsonl"
    jsonl = rendered.named("ConfigMap", "-test")["data"]["check-texts.jsonl"]
    assert [yaml.safe_load(line)["text"] for line in jsonl.splitlines()] == texts
    loadtest = " ".join(rendered.container("loadtest", "Job")["command"])
    assert "--name sentiment" in loadtest and "--users 8 --duration 1m" in loadtest
    assert "--slo p95_ms=75.5 --slo error_rate=0.01" in loadtest
    assert f"--metrics-url {FULLNAME}:9102" in loadtest


def test_hook_with_only_the_check(helm: Path) -> None:
    spec = template(helm, {"test": {"loadtest": {"enabled": False}}}).pod("Job", "test")
    assert "initContainers" not in spec
    assert [c["name"] for c in spec["containers"]] == ["check"]


def test_no_hook_when_both_steps_are_off(helm: Path) -> None:
    values = {"test": {"check": {"enabled": False}, "loadtest": {"enabled": False}}}
    jobs = template(helm, values).all("Job")
    assert [j["metadata"]["labels"]["app.kubernetes.io/component"] for j in jobs] == ["generate"]


def test_hook_reads_the_model_from_the_same_volume_as_the_init_container(helm: Path) -> None:
    rendered = template(helm, {"modelSource": {"pvc": {"claimName": "hf", "subPath": "m"}}})
    check = rendered.container("check", "Job")
    generate = rendered.container("generate", "Job")
    model_mount = [m for m in check["volumeMounts"] if m["name"] == "model-source"]
    assert model_mount == [m for m in generate["volumeMounts"] if m["name"] == "model-source"]
    assert check["command"][-1] == "/model"
