"""What the chart renders, run here: the init containers' commands against the rendered
ConfigMap spec, tritonserver with the rendered arguments, and the `helm test` hook's commands
against it. Only pod paths, the Service host and local-only flags are substituted.

Chain: spec -> `tritonkit helm-values` -> chart -> generate + bundle-tokenizers -> validate ->
real tritonserver (rendered args) -> check + loadtest (rendered commands)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tokenizers
import tritonclient.http as httpclient
import yaml

from tests.helm.chart import FULLNAME, Rendered, merged, template
from tritonkit.cli import main
from tritonkit.deploy.helm_values import values_from_spec
from tritonkit.repository.validate import validate_repository
from tritonkit.server.install import ServerInstall, find_server
from tritonkit.server.process import TritonServer, free_port
from tritonkit.spec import build_spec

pytestmark = pytest.mark.integration

TRITONKIT = str(Path(sys.executable).parent / "tritonkit")
NAME = "tkhelm"


@pytest.fixture(scope="module")
def install() -> ServerInstall:
    return find_server(log=lambda line: print(f"[tritonkit] {line}"))


@dataclass
class Pod:
    """Pod paths mapped to local folders; `local()` rewrites a rendered string."""

    paths: dict[str, str]

    def local(self, text: str) -> str:
        """One pass, longest pod path first; only whole path components match."""
        keys = "|".join(re.escape(key) for key in sorted(self.paths, key=len, reverse=True))
        pattern = rf"(?<![\w/.-])({keys})(?![\w.-])"
        return re.sub(pattern, lambda match: self.paths[match.group(1)], text)

    def command(self, container: Mapping[str, Any]) -> list[str]:
        argv = [self.local(arg) for arg in [*container["command"], *container.get("args", [])]]
        return [TRITONKIT if argv[0] == "tritonkit" else argv[0], *argv[1:]]

    def env(self, container: Mapping[str, Any]) -> dict[str, str]:
        env = dict(os.environ)
        env.update({e["name"]: self.local(e["value"]) for e in container.get("env", [])})
        return env


def run(pod: Pod, container: Mapping[str, Any], timeout: float = 300) -> str:
    result = subprocess.run(
        pod.command(container),
        env=pod.env(container),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{container['name']} failed ({result.returncode}):\n{output}"
    return output


@contextlib.contextmanager
def tritonserver(install: ServerInstall, repo: Path, args: list[str], log: Path) -> Iterator[str]:
    """The real tritonserver with the chart's arguments plus local-only flags; yields HOST:PORT."""
    prefix = f"tkhelm{os.getpid()}_"
    local_only = [
        f"--backend-directory={install.backend_dir}",
        *(f"--{kind}-address=127.0.0.1" for kind in ("http", "grpc", "metrics")),
        f"--backend-config=python,shm-region-prefix-name={prefix}",
    ]
    http = next(a.split("=", 1)[1] for a in args if a.startswith("--http-port="))
    url = f"127.0.0.1:{http}"
    env = TritonServer(repo, install).environment()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(install.tritonserver), *args, *local_only],
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
        yield url
    finally:
        for sig in (signal.SIGINT, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(15)
                break
        for path in Path("/dev/shm").glob(f"{prefix}*"):
            path.unlink(missing_ok=True)


@dataclass
class Deployed:
    rendered: Rendered
    values: dict[str, Any]
    pod: Pod
    repo: Path
    url: str


def _values(tmp: Path, model: Path, gpu: bool, ports: dict[str, int]) -> dict[str, Any]:
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
    local = {"gpu": {"enabled": gpu}, "ports": ports, "test": {"loadtest": {"duration": "5s"}}}
    return merged(from_spec, local)


@pytest.fixture(scope="module")
def deployed(
    helm: Path,
    install: ServerInstall,
    tiny_model_dirs: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployed]:
    tmp = tmp_path_factory.mktemp("chart_pod")
    model = tiny_model_dirs["text-classification"]
    ports = {"http": free_port(), "grpc": free_port(), "metrics": free_port()}
    values = _values(tmp, model, gpu=False, ports=ports)
    rendered = template(helm, values)
    bundle = tmp / "triton-python"
    shutil.copytree(Path(tokenizers.__file__).parent, bundle / "tokenizers")
    pod = Pod(
        {
            "/etc/tritonkit": str(tmp / "etc"),
            "/workspace": str(tmp / "workspace"),
            "/model": str(model),
            "/tmp": str(tmp / "tmp"),
            "/opt/tritonkit/triton-python": str(bundle),
            FULLNAME: "127.0.0.1",
        }
    )
    for folder in ("etc", "workspace", "tmp"):
        (tmp / folder).mkdir()
    for key, text in rendered.one("ConfigMap")["data"].items():  # the ConfigMap volume
        (tmp / "etc" / key).write_text(pod.local(text))

    run(pod, rendered.container("generate"))
    repo = Path(pod.local("/workspace/repository"))
    assert validate_repository(repo) == []
    run(pod, rendered.container("bundle-tokenizers"))
    args = [pod.local(arg) for arg in rendered.server()["args"]]
    with tritonserver(install, repo, args, tmp / "tritonserver.log") as url:
        yield Deployed(rendered, values, pod, repo, url)


def test_init_container_builds_a_valid_repository(deployed: Deployed) -> None:
    spec = yaml.safe_load(deployed.rendered.one("ConfigMap")["data"]["tritonkit.yaml"])
    assert (spec["model"], spec["output"]) == ("/model", "/workspace/repository")
    assert sorted(p.name for p in deployed.repo.iterdir() if p.is_dir()) == [
        NAME, f"{NAME}_onnx", f"{NAME}_tokenizer",
    ]  # fmt: skip
    bundled = deployed.repo / f"{NAME}_tokenizer" / "1" / "tokenizers" / "__init__.py"
    assert bundled.is_file()
    assert validate_repository(deployed.repo) == []


def test_rendered_arguments_serve_the_repository(deployed: Deployed) -> None:
    assert "--model-control-mode=none" in deployed.rendered.server()["args"]
    client = httpclient.InferenceServerClient(deployed.url)
    assert client.is_model_ready(NAME)
    text = httpclient.InferInput("TEXT", [1, 1], "BYTES")
    text.set_data_from_numpy(np.array([[b"helm"]], dtype=object))
    result = client.infer(NAME, [text]).as_numpy("PROBABILITIES")
    client.close()
    assert result is not None and result.shape == (1, 2)


def test_hook_check_passes(deployed: Deployed) -> None:
    check = deployed.rendered.container("check", "Job")
    assert "--texts" in check["command"]
    output = run(deployed.pod, check)
    assert "comparisons passed" in output


def test_hook_loadtest_meets_its_slos(deployed: Deployed) -> None:
    if "loadtest" not in main.commands:
        pytest.skip("tritonkit loadtest is not part of this build yet")
    loadtest = deployed.rendered.container("loadtest", "Job")
    run(deployed.pod, loadtest, timeout=180)  # exit 0: every SLO met
    assert any(Path(deployed.pod.local("/tmp/loadtest")).iterdir())


def test_hook_loadtest_fails_on_an_slo_breach(deployed: Deployed, helm: Path) -> None:
    """What fails `helm test`: the step exits non-zero when an SLO is missed."""
    if "loadtest" not in main.commands:
        pytest.skip("tritonkit loadtest is not part of this build yet")
    strict = {"test": {"loadtest": {"p95Ms": 0.001, "duration": "3s"}}}
    loadtest = template(helm, merged(deployed.values, strict)).container("loadtest", "Job")
    assert "p95_ms=0.001" in loadtest["command"]
    result = subprocess.run(
        deployed.pod.command(loadtest),
        env=deployed.pod.env(loadtest),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr


def test_gpu_mode_arguments_are_accepted(
    deployed: Deployed, helm: Path, install: ServerInstall, tmp_path: Path
) -> None:
    """GPU-mode flags on this CPU machine: the server starts and serves (the repository is the
    CPU one; KIND_GPU instances cannot load without a GPU)."""
    ports = {"http": free_port(), "grpc": free_port(), "metrics": free_port()}
    model = Path(deployed.pod.paths["/model"])
    rendered = template(helm, _values(tmp_path, model, gpu=True, ports=ports))
    args = [deployed.pod.local(arg) for arg in rendered.server()["args"]]
    assert "--allow-gpu-metrics=true" in args
    assert not any(a.startswith("--pinned-memory-pool-byte-size") for a in args)
    with tritonserver(install, deployed.repo, args, tmp_path / "gpu-args.log") as url:
        client = httpclient.InferenceServerClient(url)
        assert client.is_model_ready(NAME)
        client.close()


def test_python_backend_imports_from_the_version_folder(
    install: ServerInstall, tmp_path: Path
) -> None:
    """Why bundle-tokenizers copies into NAME_tokenizer/1/: the stub ignores PYTHONPATH but puts
    the version folder on sys.path."""
    model = tmp_path / "repo" / "probe"
    (model / "1" / "only_here").mkdir(parents=True)
    (model / "1" / "only_here" / "__init__.py").write_text("VALUE = 41\n")
    (model / "1" / "model.py").write_text(
        "import only_here\n"
        "import triton_python_backend_utils as pb_utils\n\n\n"
        "class TritonPythonModel:\n"
        "    def execute(self, requests):\n"
        "        out = []\n"
        "        for request in requests:\n"
        "            x = pb_utils.get_input_tensor_by_name(request, 'X').as_numpy()\n"
        "            y = pb_utils.Tensor('Y', x + only_here.VALUE)\n"
        "            out.append(pb_utils.InferenceResponse([y]))\n"
        "        return out\n"
    )
    (model / "config.pbtxt").write_text(
        'name: "probe"\nbackend: "python"\nmax_batch_size: 0\n'
        'input [{ name: "X" data_type: TYPE_INT32 dims: [1] }]\n'
        'output [{ name: "Y" data_type: TYPE_INT32 dims: [1] }]\n'
        "instance_group [{ kind: KIND_CPU count: 1 }]\n"
    )
    ports = [free_port() for _ in range(3)]
    server = TritonServer(
        tmp_path / "repo", install, http_port=ports[0], grpc_port=ports[1], metrics_port=ports[2]
    )
    with server:
        client = httpclient.InferenceServerClient(server.http_url)
        x = httpclient.InferInput("X", [1], "INT32")
        x.set_data_from_numpy(np.array([1], dtype=np.int32))
        y = client.infer("probe", [x]).as_numpy("Y")
        client.close()  # an open connection delays the server's exit
        assert y is not None and y.tolist() == [42]
