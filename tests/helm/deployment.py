"""The chart's release run here as its pods run it (tests/helm/pod.py): the generate Job, the
server pod's wait step and tritonserver, confined by bubblewrap, against the real local
tritonserver. One deployment per test session, shared by the tests that need a served release
(test_chart_local_server.py, test_chart_prometheus.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tokenizers
import yaml

from tests.helm.chart import FULLNAME, Rendered, merged, template
from tests.helm.pod import Pod, sandbox, secrets_of
from tritonkit.deploy.helm_values import values_from_spec
from tritonkit.server.install import ServerInstall
from tritonkit.server.process import TritonServer, free_port
from tritonkit.spec import build_spec

NAME = "tkhelm"


def run(
    pod: Pod, container: Mapping[str, Any], timeout: float = 300, image_files: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """The container's command in the sandbox; `image_files`: local stand-ins of image content."""
    writable, readonly = pod.mounts(container)
    argv = sandbox(pod.argv(container), writable, [*readonly, *image_files])
    return subprocess.run(
        argv, env=pod.env(container), capture_output=True, text=True, timeout=timeout, check=False
    )


def run_ok(pod: Pod, container: Mapping[str, Any], **kwargs: Any) -> str:
    result = run(pod, container, **kwargs)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{container['name']} failed ({result.returncode}):\n{output}"
    return output


@dataclass
class Server:
    url: str
    metrics_url: str
    process: subprocess.Popen[bytes]
    shm_prefix: str
    log: Path


@contextlib.contextmanager
def tritonserver(
    install: ServerInstall, pod: Pod, container: Mapping[str, Any], log: Path
) -> Iterator[Server]:
    """The rendered tritonserver container in the sandbox, plus local-only flags."""
    prefix = f"tkhelm{os.getpid()}_{time.monotonic_ns()}_"
    local_only = [
        f"--backend-directory={install.backend_dir}",
        *(f"--{kind}-address=127.0.0.1" for kind in ("http", "grpc", "metrics")),
        f"--backend-config=python,shm-region-prefix-name={prefix}",
    ]
    argv = pod.argv(container)
    writable, readonly = pod.mounts(container)
    port = {a.split("=")[0]: a.split("=", 1)[1] for a in argv if a.startswith("--") and "=" in a}
    url, metrics_url = f"127.0.0.1:{port['--http-port']}", f"127.0.0.1:{port['--metrics-port']}"
    env = pod.env(container)
    env.update({k: v for k, v in TritonServer(Path("."), install).environment().items()
                if k in ("PATH", "LD_LIBRARY_PATH")})  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            sandbox([*argv, *local_only], writable, readonly),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"tritonserver exited:\n{log.read_text()[-3000:]}"
            ready = f"http://{url}/v2/health/ready"
            with contextlib.suppress(OSError), urllib.request.urlopen(ready, timeout=1) as r:
                if r.status == 200:
                    break
            assert time.monotonic() < deadline, f"not ready:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        yield Server(url, metrics_url, process, prefix, log)
    finally:
        for sig in (signal.SIGINT, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(15)
                break


@dataclass
class Deployed:
    rendered: Rendered
    values: dict[str, Any]
    job: Pod
    server_pod: Pod
    hook: Pod
    repo: Path
    server: Server
    bundle: str
    tmp: Path


def chart_values(tmp: Path, model: Path, gpu: bool, ports: dict[str, int]) -> dict[str, Any]:
    spec_file = tmp / "tritonkit.yaml"
    spec_file.write_text(
        yaml.safe_dump(
            {
                "model": str(model),
                "task": "text-classification",
                "name": NAME,
                "max_batch_size": 8,
                "check": {"texts": ["helm test text", "a second one"]},
            }
        )
    )
    from_spec = values_from_spec(build_spec(spec_file)).values
    local = {
        "gpu": {"enabled": gpu},
        "ports": ports,
        "test": {"loadtest": {"duration": "5s"}},
        "modelSource": {"pvc": {"claimName": "hf-models"}},  # mounted read-only at /model
    }
    return merged(from_spec, local)


def free_ports() -> dict[str, int]:
    return {"http": free_port(), "grpc": free_port(), "metrics": free_port()}


def pods(rendered: Rendered, tmp: Path, model: Path, bundle: Path) -> tuple[Pod, Pod, Pod]:
    """The generate Job's pod, a server pod and the test hook's pod: each its own /tmp."""
    secrets = secrets_of(rendered)
    for folder in ("etc", "test-etc", "repositories", "job-tmp", "server-tmp", "hook-tmp", "ws"):
        (tmp / folder).mkdir(exist_ok=True)
    output = yaml.safe_load(rendered.named("ConfigMap", "-spec")["data"]["tritonkit.yaml"])[
        "output"
    ]
    common = {"/model": str(model), "/opt/tritonkit/triton-python": str(bundle)}
    job_paths = {"/etc/tritonkit": str(tmp / "etc"), "/tmp": str(tmp / "job-tmp")}
    job = Pod({**common, **job_paths, "/repositories": str(tmp / "repositories")}, secrets)
    server = Pod(
        {
            "/repositories": str(tmp / "repositories"),
            "/models": str(tmp / "repositories" / Path(output).name),  # subPath
            "/workspace": str(tmp / "ws"),
            "/tmp": str(tmp / "server-tmp"),
        },
        secrets,
    )
    hook = Pod({**common, "/etc/tritonkit": str(tmp / "test-etc"), "/tmp": str(tmp / "hook-tmp"),
                FULLNAME: "127.0.0.1"}, secrets)  # fmt: skip
    for name, pod, folder in (("-spec", job, "etc"), ("-test", hook, "test-etc")):
        for key, text in rendered.named("ConfigMap", name)["data"].items():
            (tmp / folder / key).write_text(pod.local(text))  # the ConfigMap volume
    return job, server, hook


@contextlib.contextmanager
def deploy(
    helm: Path, install: ServerInstall, model: Path, tmp: Path, extra: Mapping[str, Any]
) -> Iterator[Deployed]:
    """Render with `extra` values, run the Job and the wait step, serve; yields the release."""
    values = merged(chart_values(tmp, model, gpu=False, ports=free_ports()), extra)
    rendered = template(helm, values)
    bundle = tmp / "triton-python"  # what the tritonkit image carries for the Triton image
    shutil.copytree(Path(tokenizers.__file__).parent, bundle / "tokenizers")
    job, server_pod, hook = pods(rendered, tmp, model, bundle)
    server_pod.executables["tritonserver"] = str(install.tritonserver)

    run_ok(job, rendered.container("generate", "Job"), image_files=(str(bundle),))
    repo = Path(server_pod.paths["/models"])
    run_ok(server_pod, rendered.container("repository"), timeout=30)  # the wait step: ready
    with tritonserver(install, server_pod, rendered.server(), tmp / "tritonserver.log") as server:
        yield Deployed(rendered, values, job, server_pod, hook, repo, server, str(bundle), tmp)
