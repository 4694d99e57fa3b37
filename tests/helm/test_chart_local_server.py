"""What the chart renders, run here as its pods run it: the generate Job's script against the
rendered ConfigMap spec, the server pod's wait step and tritonserver with the rendered
arguments, each under bubblewrap with a read-only root, a fresh /tmp, only the container's own
writable mounts and uid 1000 (tests/helm/pod.py); then the readiness probe's command, the
restricted APIs, and the `helm test` hook's commands against that server. Only pod paths, the
Service host and local-only flags (addresses, backend directory) are substituted.

Chain: spec -> `tritonkit helm-values` -> chart -> generate Job -> validate -> wait step ->
real tritonserver (rendered args) -> probe, restricted APIs, check + loadtest (rendered commands).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as httpclient
import yaml

from tests.helm.chart import Rendered, merged, template
from tests.helm.deployment import (
    NAME,
    Deployed,
    chart_values,
    free_ports,
    run,
    run_ok,
    tritonserver,
)
from tests.helm.pod import Pod, secrets_of
from tritonkit.cli import main
from tritonkit.repository.validate import validate_repository
from tritonkit.server.install import ServerInstall
from tritonkit.server.process import TritonServer, free_port

pytestmark = pytest.mark.integration


def test_generate_job_builds_a_valid_repository_confined(deployed: Deployed) -> None:
    spec = yaml.safe_load(deployed.rendered.named("ConfigMap", "-spec")["data"]["tritonkit.yaml"])
    assert spec["model"] == "/model" and spec["output"].startswith("/repositories/")
    assert sorted(p.name for p in deployed.repo.iterdir() if p.is_dir()) == [
        NAME, f"{NAME}_onnx", f"{NAME}_tokenizer",
    ]  # fmt: skip
    bundled = deployed.repo / f"{NAME}_tokenizer" / "1" / "tokenizers" / "__init__.py"
    assert bundled.is_file()
    assert (deployed.repo / ".tritonkit-complete").is_file()
    assert validate_repository(deployed.repo) == []


def test_generate_job_is_idempotent(deployed: Deployed) -> None:
    """A re-run Job (or a rollback to this content) finds the folder and returns at once."""
    started = time.monotonic()
    output = run_ok(deployed.job, deployed.rendered.container("generate", "Job"))
    assert "is already generated for this spec and these images" in output
    assert time.monotonic() - started < 10


def test_rendered_arguments_serve_the_repository(deployed: Deployed) -> None:
    args = deployed.rendered.server()["args"]
    assert args[0] == "tritonserver" and "--model-control-mode=none" in args
    client = httpclient.InferenceServerClient(deployed.server.url)
    assert client.is_model_ready(NAME)
    text = httpclient.InferInput("TEXT", [1, 1], "BYTES")
    text.set_data_from_numpy(np.array([[b"helm"]], dtype=object))
    result = client.infer(NAME, [text]).as_numpy("PROBABILITIES")
    client.close()
    assert result is not None and result.shape == (1, 2)


def _status(url: str, method: str = "GET", key: str | None = None) -> tuple[int, str]:
    headers = {"tritonkit-admin-key": key} if key is not None else {}
    data = b"{}" if method == "POST" else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_restricted_apis_answer_only_with_the_key(deployed: Deployed) -> None:
    """The rendered --http-restricted-api, with the key Kubernetes expands from the Secret."""
    base = f"http://{deployed.server.url}/v2"
    key = deployed.server_pod.container_env(deployed.rendered.server())["TRITONKIT_ADMIN_KEY"]
    for url, method in [
        (f"{base}/repository/index", "POST"),
        (f"{base}/models/{NAME}/config", "GET"),
        (f"{base}/logging", "GET"),
        (f"{base}/trace/setting", "GET"),
        (f"{base}/systemsharedmemory/status", "GET"),
    ]:
        code, body = _status(url, method)
        assert (code, json.loads(body)["error"]) == (
            403, "This API is restricted, expecting header 'tritonkit-admin-key'",
        ), url  # fmt: skip
        assert _status(url, method, key="wrong")[0] == 403, url
        assert _status(url, method, key=key)[0] == 200, url
    for url in (f"{base}/health/ready", f"{base}/models/{NAME}", f"{base}/models/{NAME}/stats"):
        assert _status(url)[0] == 200, url


def probe_command(rendered: Rendered, pod: Pod) -> list[str]:
    return pod.argv({"command": rendered.server()["readinessProbe"]["exec"]["command"]})


def test_readiness_probe_runs_one_inference(deployed: Deployed) -> None:
    """The rendered exec probe, with the container's python3 standing in (stdlib only)."""
    command = probe_command(deployed.rendered, deployed.server_pod)
    assert command[0] == "python3"
    result = subprocess.run(command, capture_output=True, text=True, timeout=15, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def run_hook(pod: Pod, container: Mapping[str, Any]) -> tuple[int, str]:
    """A hook step, run as the pod runs it; tritonkit's clients send the admin key from the
    Secret (TRITONKIT_ADMIN_KEY), which the restricted server requires."""
    result = run(pod, container, timeout=180)
    return result.returncode, result.stdout + result.stderr


def test_hook_check_passes(deployed: Deployed) -> None:
    check = deployed.rendered.container("check", "Job")
    assert "--texts" in check["command"]
    code, output = run_hook(deployed.hook, check)
    assert code == 0, output
    assert "comparisons passed" in output


def test_hook_loadtest_meets_its_slos(deployed: Deployed) -> None:
    if "loadtest" not in main.commands:
        pytest.skip("tritonkit loadtest is not part of this build yet")
    loadtest = deployed.rendered.container("loadtest", "Job")
    code, output = run_hook(deployed.hook, loadtest)
    assert code == 0, output  # every SLO met
    assert any(Path(deployed.hook.local("/tmp/loadtest")).iterdir())


def test_hook_loadtest_fails_on_an_slo_breach(deployed: Deployed, helm: Path) -> None:
    """What fails `helm test`: the step exits non-zero when an SLO is missed."""
    if "loadtest" not in main.commands:
        pytest.skip("tritonkit loadtest is not part of this build yet")
    strict = {"test": {"loadtest": {"p95Ms": 0.001, "duration": "3s"}}}
    loadtest = template(helm, merged(deployed.values, strict)).container("loadtest", "Job")
    assert "p95_ms=0.001" in loadtest["command"]
    code, output = run_hook(deployed.hook, loadtest)
    assert code == 1 and "SLO missed" in output, output


def _stubs(prefix: str) -> dict[str, int]:
    """Python backend stubs of one server: model instance name -> pid (found in /proc)."""
    stubs = {}
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if argv[0].endswith(b"triton_python_backend_stub") and prefix.encode() in argv[2]:
                stubs[Path(argv[1].decode()).parts[-3]] = int(entry.name)
    return stubs


def test_a_dead_python_stub_fails_the_readiness_probe(
    deployed: Deployed, helm: Path, install: ServerInstall
) -> None:
    """Issue 10 item 2: after kill -9 of the tokenizer's stub, /v2/health/ready stays 200 and
    every request fails; the chart's inference probe notices."""
    values = merged(deployed.values, {"ports": free_ports()})
    rendered = template(helm, values)
    pod = Pod({**deployed.server_pod.paths, "/tmp": str(deployed.tmp / "stub-tmp")},
              secrets_of(rendered), dict(deployed.server_pod.executables))  # fmt: skip
    Path(pod.paths["/tmp"]).mkdir()
    with tritonserver(install, pod, rendered.server(), deployed.tmp / "stub.log") as server:
        command = probe_command(rendered, pod)
        assert subprocess.run(command, capture_output=True, timeout=15, check=False).returncode == 0
        deadline = time.monotonic() + 20
        while f"{NAME}_tokenizer" not in (stubs := _stubs(server.shm_prefix)):
            assert time.monotonic() < deadline, stubs
            time.sleep(0.2)
        os.kill(stubs[f"{NAME}_tokenizer"], signal.SIGKILL)
        time.sleep(1)
        assert _status(f"http://{server.url}/v2/health/ready")[0] == 200  # the http probe passes
        result = subprocess.run(command, capture_output=True, text=True, timeout=15, check=False)
        assert result.returncode == 1
        assert "inference probe: HTTP 500" in result.stderr and "is not healthy" in result.stderr


def test_gpu_mode_arguments_are_accepted(
    deployed: Deployed, helm: Path, install: ServerInstall, tmp_path: Path
) -> None:
    """GPU-mode flags on this CPU machine: the server starts and serves (the repository is the
    CPU one; KIND_GPU instances cannot load without a GPU)."""
    values = chart_values(
        tmp_path, Path(deployed.hook.paths["/model"]), gpu=True, ports=free_ports()
    )
    rendered = template(helm, values)
    args = rendered.server()["args"]
    assert "--allow-gpu-metrics=true" in args
    assert not any(a.startswith("--pinned-memory-pool-byte-size") for a in args)

    (tmp_path / "server-tmp").mkdir()
    pod = Pod({"/models": str(deployed.repo), "/tmp": str(tmp_path / "server-tmp")},
              secrets_of(rendered), dict(deployed.server_pod.executables))  # fmt: skip
    with tritonserver(install, pod, rendered.server(), tmp_path / "gpu-args.log") as server:
        client = httpclient.InferenceServerClient(server.url)
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
