"""Issue 12 defect 2 (MIG and shared GPUs), the CPU mode's GPU visibility (defect 8), and the
chart side of issue 11: TensorRT plans built in the pod that serves them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.chart import HelmFailed, Rendered, template

MIG_MIXED = {"gpu": {"resourceName": "nvidia.com/mig-1g.10gb", "migStrategy": "mixed"}}
TRT = {"modelRepository": {"generate": {"spec": {"variant": "trt-fp16"}}}}
POD_MODE = {"modelRepository": {"generate": {"mode": "pod"}}}


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def gpu_metrics(rendered: Rendered) -> str:
    args: list[str] = rendered.server()["args"]
    (value,) = [a.split("=", 1)[1] for a in args if "allow-gpu-metrics" in a]
    return value


def test_mig_resource_keeps_the_gpu_taint_toleration(helm: Path) -> None:
    """GPU node pools are tainted nvidia.com/gpu (GKE, EKS, the GPU operator) whatever resource
    the device plugin exposes; a MIG resource name is not a taint key."""
    rendered = template(helm, {"gpu": {"resourceName": "nvidia.com/mig-1g.10gb"}})
    pod = rendered.pod()
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert rendered.server()["resources"]["limits"]["nvidia.com/mig-1g.10gb"] == 1
    custom = template(helm, MIG_MIXED, {"gpu": {"taintKey": "sku"}}).pod()["tolerations"]
    assert [t["key"] for t in custom] == ["sku"]


def test_gpu_feature_discovery_node_selectors(helm: Path) -> None:
    """GFD labels (https://github.com/NVIDIA/k8s-device-plugin#catalog-of-labels)."""
    values = {"gpu": {"product": "NVIDIA-A100-SXM4-80GB"}, "nodeSelector": {"pool": "gpu"}}
    rendered = template(helm, MIG_MIXED, values)
    assert rendered.pod()["nodeSelector"] == {
        "pool": "gpu",
        "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB",
        "nvidia.com/mig.strategy": "mixed",
    }
    assert "nodeSelector" not in template(helm, {"gpu": {"enabled": False}, **{}}).pod()


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, "true"),
        (MIG_MIXED, "false"),
        ({"gpu": {"migStrategy": "single"}}, "false"),
        ({**MIG_MIXED, "gpu": {**MIG_MIXED["gpu"], "metrics": "on"}}, "true"),
        ({"gpu": {"metrics": "off"}}, "false"),
        ({"gpu": {"enabled": False, "metrics": "on"}}, "false"),
    ],
)
def test_gpu_metrics_are_off_where_they_cannot_work(
    helm: Path, values: dict[str, Any], expected: str
) -> None:
    assert gpu_metrics(template(helm, values)) == expected


def test_cpu_mode_hides_the_gpus_of_the_node(helm: Path) -> None:
    """NGC images set NVIDIA_VISIBLE_DEVICES=all; "void" makes the NVIDIA runtime behave as runc
    (NVIDIA Container Toolkit, GPU enumeration)."""
    env = env_of(template(helm, {"gpu": {"enabled": False}}).server())
    assert env["NVIDIA_VISIBLE_DEVICES"] == {"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"}
    assert "NVIDIA_VISIBLE_DEVICES" not in env_of(template(helm).server())


# TensorRT (issue 11): generate writes the recipe on CPU, build-plan builds on the pod's GPU.


def _init(rendered: Rendered) -> list[str]:
    return [c["name"] for c in rendered.pod()["initContainers"]]


def test_trt_fp16_builds_the_plan_on_the_serving_gpu(helm: Path) -> None:
    rendered = template(helm, TRT, {"gpu": {"count": 2}})
    script = rendered.container("generate", "Job")["command"][2]
    assert "tritonkit generate --spec /etc/tritonkit/tritonkit.yaml --force --defer-plan" in script
    assert _init(rendered) == ["repository", "build-plan"]
    copy = rendered.container("repository")["command"][2]
    assert 'cp -R "$TRITONKIT_REPOSITORY" /workspace/repository' in copy
    build = rendered.container("build-plan")
    # The TensorRT of the serving release: Triton 24.10 <-> TensorRT container 24.10
    assert build["image"] == "nvcr.io/nvidia/tensorrt:24.10-py3"
    assert "command" not in build  # the NGC entrypoint runs, then the args
    assert build["args"] == [
        "timeout", "-k", "30", "1800", "python3", "/workspace/repository/minilm_trt/build_plan.py",
    ]  # fmt: skip
    assert build["resources"]["limits"]["nvidia.com/gpu"] == 2  # the GPUs the server then gets
    mounts = {m["mountPath"]: m for m in build["volumeMounts"]}
    assert mounts["/workspace"] == {"name": "workspace", "mountPath": "/workspace"}  # writable
    assert "TRITONKIT_TIMING_CACHE" not in env_of(build)
    server_mounts = {m["mountPath"]: m for m in rendered.server()["volumeMounts"]}
    assert server_mounts["/workspace"]["readOnly"] is True
    assert "--model-repository=/workspace/repository" in rendered.server()["args"]
    assert not any("version-compatible" in a for a in rendered.server()["args"])


def test_trt_in_pod_mode(helm: Path) -> None:
    rendered = template(helm, TRT, POD_MODE)
    assert _init(rendered) == ["generate", "bundle-tokenizers", "build-plan"]
    assert rendered.container("generate")["command"][-1] == "--defer-plan"


def test_timing_cache_volume(helm: Path) -> None:
    values = {"tensorrt": {"timingCache": {"existingClaim": "trt-cache", "subPath": "l4"}}}
    rendered = template(helm, TRT, values)
    build = rendered.container("build-plan")
    assert env_of(build)["TRITONKIT_TIMING_CACHE"]["value"] == "/var/cache/tritonkit/timing-cache"
    mounts = {m["name"]: m for m in build["volumeMounts"]}
    assert mounts["timing-cache"]["mountPath"] == "/var/cache/tritonkit/timing-cache"
    assert mounts["timing-cache"]["subPath"] == "l4"
    volumes = {v["name"]: v for v in rendered.pod()["volumes"]}
    assert volumes["timing-cache"]["persistentVolumeClaim"] == {"claimName": "trt-cache"}


@pytest.mark.parametrize(
    "values",
    [
        {"modelRepository": {"generate": {"spec": {"tensorrt": {"version_compatible": True}}}}},
        {"tensorrt": {"versionCompatible": True}},
    ],
)
def test_version_compatible_plans_are_served_as_such(helm: Path, values: dict[str, Any]) -> None:
    """tensorrt_backend deserializes a version-compatible plan only with this backend config
    (issue 11 item 4)."""
    args = template(helm, TRT, values).server()["args"]
    assert "--backend-config=tensorrt,version-compatible=true" in args


@pytest.mark.parametrize(
    ("values", "image"),
    [
        ({"image": {"tag": "25.01-py3"}}, "nvcr.io/nvidia/tensorrt:25.01-py3"),
        ({"image": {"tag": "24.10-py3-tokenizers"}}, "nvcr.io/nvidia/tensorrt:24.10-py3"),
        (
            {"tensorrt": {"image": {"tag": "24.10-py3-custom"}}},
            "nvcr.io/nvidia/tensorrt:24.10-py3-custom",
        ),
        (
            {
                "tensorrt": {
                    "image": {"repository": "r.example.com/trt", "digest": "sha256:" + "a" * 64}
                }
            },
            "r.example.com/trt@sha256:" + "a" * 64,
        ),
    ],
)
def test_tensorrt_image_follows_the_triton_release(
    helm: Path, values: dict[str, Any], image: str
) -> None:
    assert template(helm, TRT, values).container("build-plan")["image"] == image


def test_the_spec_asks_for_a_gpu_build(helm: Path) -> None:
    spec = yaml.safe_load(template(helm, TRT).named("ConfigMap", "-spec")["data"]["tritonkit.yaml"])
    assert spec["variant"] == "trt-fp16" and spec["device"] == "gpu"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"gpu": {"enabled": False}},
            "values: modelRepository.generate.spec.variant: trt-fp16 builds a TensorRT plan on the "
            "serving GPU: set gpu.enabled: true or choose an ONNX variant",
        ),
        (
            {"image": {"tag": "", "digest": "sha256:" + "b" * 64}},
            'values: tensorrt.image.tag is empty and image.tag "" names no YY.MM release',
        ),
    ],
)
def test_tensorrt_render_errors(helm: Path, values: dict[str, Any], message: str) -> None:
    with pytest.raises(HelmFailed) as failed:
        template(helm, TRT, values)
    assert message in failed.value.stderr
