"""Issue 12 defect 6 (one repository per release), defect 4 (rollouts fail by default) and the
smaller defects of item 8: Job names, restarts on test-text changes, ephemeral storage, the
tritonkit image nobody can pull, extraArgs that conflict with the chart's flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.chart import HelmFailed, Rendered, template

POD_MODE = {"modelRepository": {"generate": {"mode": "pod"}}}
AUTO = {"modelRepository": {"generate": {"spec": {"variant": "auto"}}}}
# Helm refuses release names over 53 characters; the longest one is the worst case.
LONG_RELEASE = "r" * 53


def repository_mount(rendered: Rendered) -> dict[str, Any]:
    (mount,) = [m for m in rendered.server()["volumeMounts"] if m["name"] == "repositories"]
    return dict(mount)


def test_one_repository_per_release(helm: Path) -> None:
    """Defect 6: generated once by a Job into a claim, served read-only by every pod, so all
    replicas serve the same variant and no pod repeats the export."""
    rendered = template(helm, AUTO, {"replicaCount": 4})
    job = rendered.job("generate")
    output = yaml.safe_load(rendered.named("ConfigMap", "-spec")["data"]["tritonkit.yaml"])[
        "output"
    ]
    key = output.removeprefix("/repositories/")
    assert job["metadata"]["annotations"]["tritonkit.dev/repository"] == key
    job_pod = job["spec"]["template"]["spec"]
    claim = rendered.one("PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    name = claim["metadata"]["name"]
    job_volumes = {v["name"]: v for v in job_pod["volumes"]}
    assert job_volumes["repositories"]["persistentVolumeClaim"] == {"claimName": name}
    pod = rendered.pod()
    assert [c["name"] for c in pod["initContainers"]] == ["repository"]  # waits, builds nothing
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["repositories"]["persistentVolumeClaim"] == {"claimName": name, "readOnly": True}
    assert repository_mount(rendered) == {
        "name": "repositories", "mountPath": "/models", "readOnly": True, "subPath": key,
    }  # fmt: skip
    wait = rendered.container("repository")
    assert {e["name"]: e["value"] for e in wait["env"]}["TRITONKIT_REPOSITORY"] == output


def test_the_repository_key_follows_the_content_only(helm: Path) -> None:
    """Replicas or memory do not regenerate; the spec, the CPU request's whole cores (the
    instance layout follows them) or an image does. A rollback renders
    the old key again, and the idempotent Job finds the folder (or rebuilds it)."""
    base = template(helm)
    key = repository_mount(base)["subPath"]
    assert repository_mount(template(helm, {"replicaCount": 5, "resources": {}}))["subPath"] == key
    same_cores = {"resources": {"requests": {"cpu": "2500m", "memory": "5Gi"}}}
    assert repository_mount(template(helm, same_cores))["subPath"] == key
    changed: list[dict[str, Any]] = [
        {"modelRepository": {"generate": {"spec": {"max_batch_size": 4}}}},
        {"resources": {"requests": {"cpu": "4"}}},  # the instance layout follows the cores
        {"image": {"tag": "24.11-py3"}},
        {"tritonkitImage": {"tag": "0.1.1"}},
    ]
    keys = {repository_mount(template(helm, values))["subPath"] for values in changed}
    assert key not in keys and len(keys) == len(changed)


def test_the_generate_job_is_a_new_job_when_its_template_changes(helm: Path) -> None:
    """A Job's pod template is immutable: a changed template gets a new name."""
    names = {
        template(helm, values).job("generate")["metadata"]["name"]
        for values in (
            {},
            {"modelRepository": {"generate": {"resources": {"limits": {"memory": "7Gi"}}}}},
        )
    }
    assert len(names) == 2


def test_the_generate_job_is_idempotent_and_marks_completion_last(helm: Path) -> None:
    script = template(helm).container("generate", "Job")["command"][2].splitlines()
    assert script[1] == 'if [ -e "$TRITONKIT_REPOSITORY/.tritonkit-complete" ]; then'
    assert script[-2] == 'touch "$TRITONKIT_REPOSITORY/.tritonkit-complete"'


def test_an_existing_claim_is_used_as_is(helm: Path) -> None:
    values = {"modelRepository": {"generate": {"persistence": {"existingClaim": "shared"}}}}
    rendered = template(helm, values)
    assert "PersistentVolumeClaim" not in rendered.kinds()
    volumes = {v["name"]: v for v in rendered.pod()["volumes"]}
    assert volumes["repositories"]["persistentVolumeClaim"]["claimName"] == "shared"


def test_the_job_is_scheduled_like_the_server_without_a_gpu(helm: Path) -> None:
    rendered = template(helm, {"nodeSelector": {"pool": "inference"}})
    job_pod = rendered.pod("Job", "generate")
    assert job_pod["nodeSelector"] == {"pool": "inference"}
    assert job_pod["tolerations"] == rendered.pod()["tolerations"]
    assert "nvidia.com/gpu" not in yaml.safe_dump(job_pod["containers"][0]["resources"])


def test_auto_variant_is_allowed_for_a_release(helm: Path) -> None:
    spec = template(helm, AUTO).named("ConfigMap", "-spec")["data"]["tritonkit.yaml"]
    assert yaml.safe_load(spec)["variant"] == "auto"


def test_auto_variant_is_refused_per_pod(helm: Path) -> None:
    with pytest.raises(HelmFailed) as failed:
        template(helm, AUTO, POD_MODE)
    assert (
        "values: modelRepository.generate.spec.variant: auto benchmarks on each pod's node, so "
        "replicas could serve different variants: set modelRepository.generate.mode: release"
    ) in failed.value.stderr


# Defect 4: progressDeadlineSeconds covers what a new pod may take.


@pytest.mark.parametrize(
    ("values", "budget"),
    [
        ({}, 300 + 600 + 1800),
        (POD_MODE, 300 + 600 + 1800),
        ({"modelRepository": {"generate": {"spec": {"variant": "trt-fp16"}}}}, 300 + 600 + 3600),
        ({"modelRepository": {"source": "image"}}, 300 + 600),
        ({"probes": {"startup": {"failureThreshold": 120}}}, 300 + 1200 + 1800),
    ],
)
def test_progress_deadline_covers_the_rollout(
    helm: Path, values: dict[str, Any], budget: int
) -> None:
    """A rollout whose pod spends its whole budget must not be reported failed
    (https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#progress-deadline-seconds);
    Kubernetes' default is 600 s, less than the startup probe alone allows."""
    assert template(helm, values).one("Deployment")["spec"]["progressDeadlineSeconds"] == budget


def test_the_steps_before_tritonserver_are_bounded(helm: Path) -> None:
    assert template(helm).job("generate")["spec"]["activeDeadlineSeconds"] == 1800
    wait = template(helm).container("repository")
    assert {e["name"]: e["value"] for e in wait["env"]}["TRITONKIT_TIMEOUT_SECONDS"] == "1800"
    assert template(helm, POD_MODE).container("generate")["command"][:4] == [
        "timeout",
        "-k",
        "30",
        "1800",
    ]


def test_a_progress_deadline_below_the_budget_is_refused(helm: Path) -> None:
    assert (
        template(helm, {"progressDeadlineSeconds": 9000}).one("Deployment")["spec"][
            "progressDeadlineSeconds"
        ]
        == 9000
    )
    with pytest.raises(HelmFailed) as failed:
        template(helm, {"progressDeadlineSeconds": 600})
    assert "values: progressDeadlineSeconds (600) is shorter than a new pod may take (2700 s" in (
        failed.value.stderr
    )


# Defect 8


def test_job_names_fit_in_a_label_with_the_longest_release_name(helm: Path) -> None:
    """Job names become the batch.kubernetes.io/job-name label of their pods: 63 characters."""
    rendered = template(helm, release=LONG_RELEASE)
    names = [doc["metadata"]["name"] for doc in rendered.docs]
    assert names and all(len(name) <= 63 for name in names), names
    assert {job["metadata"]["name"][-5:] for job in rendered.all("Job")} >= {"-test"}


@pytest.mark.parametrize("mode", [{}, POD_MODE])
def test_test_texts_do_not_restart_the_server_pods(helm: Path, mode: dict[str, Any]) -> None:
    def pod_template(texts: list[str]) -> str:
        rendered = template(helm, mode, {"test": {"check": {"texts": texts}}})
        return yaml.safe_dump(rendered.one("Deployment")["spec"]["template"])

    assert pod_template(["one"]) == pod_template(["two", "three"])


def _bytes(quantity: str) -> int:
    units = {"Gi": 1 << 30, "Mi": 1 << 20}
    return int(quantity[:-2]) * units[quantity[-2:]]


@pytest.mark.parametrize(
    ("values", "volumes"),
    [
        ({}, ["tmp"]),
        (POD_MODE, ["tmp", "workspace"]),
        (
            {"modelRepository": {"generate": {"spec": {"variant": "trt-fp16"}}}},
            ["tmp", "workspace"],
        ),
        ({"modelRepository": {"source": "image"}}, ["tmp"]),
    ],
)
def test_disk_emptydirs_are_requested_as_ephemeral_storage(
    helm: Path, values: dict[str, Any], volumes: list[str]
) -> None:
    """The scheduler counts emptyDir usage against a node only through requests
    (https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/#local-ephemeral-storage)."""
    rendered = template(helm, values)
    pod_volumes = {v["name"]: v for v in rendered.pod()["volumes"]}
    disk = [
        name for name, v in pod_volumes.items() if "emptyDir" in v and "medium" not in v["emptyDir"]
    ]
    assert sorted(disk) == volumes
    expected = sum(_bytes(pod_volumes[name]["emptyDir"]["sizeLimit"]) for name in volumes)
    assert int(rendered.server()["resources"]["requests"]["ephemeral-storage"]) == expected
    own = template(helm, values, {"resources": {"requests": {"ephemeral-storage": "1Gi"}}})
    assert own.server()["resources"]["requests"]["ephemeral-storage"] == "1Gi"


def test_the_default_tritonkit_image_is_refused_with_what_to_do(helm: Path) -> None:
    """No public tritonkit image exists: say so at install time, not as ImagePullBackOff."""
    with pytest.raises(HelmFailed) as failed:
        template(helm, bare=True)
    assert (
        "values: tritonkitImage.repository is empty and no public tritonkit image exists: build "
        "helm/images/tritonkit/Dockerfile, push it and set tritonkitImage.repository"
    ) in failed.value.stderr
    no_tritonkit = {
        "modelRepository": {"source": "image"},
        "test": {"check": {"enabled": False}, "loadtest": {"enabled": False}},
    }
    assert "Deployment" in template(helm, no_tritonkit, bare=True).kinds()


@pytest.mark.parametrize(
    ("arg", "value"),
    [
        ("--load-model=extra", "server.loadModels"),
        ("--http-port=9000", "ports.http"),
        ("--model-control-mode=poll", "server.modelControlMode"),
        ("--http-restricted-api=trace:k=v", "server.restrictedApi"),
        ("--allow-gpu-metrics=false", "gpu.metrics"),
    ],
)
def test_extra_args_the_chart_renders_are_refused(helm: Path, arg: str, value: str) -> None:
    values = {"server": {"modelControlMode": "explicit", "extraArgs": [arg]}}
    with pytest.raises(HelmFailed) as failed:
        template(helm, values)
    flag = arg.split("=", 1)[0]
    expected = (
        f"values: server.extraArgs: {flag} is rendered by the chart and would conflict: "
        f"set {value} instead"
    )
    assert expected in failed.value.stderr


def test_other_extra_args_pass_through(helm: Path) -> None:
    args = template(helm, {"server": {"extraArgs": ["--http-thread-count=16"]}}).server()["args"]
    assert args[-1] == "--http-thread-count=16"
