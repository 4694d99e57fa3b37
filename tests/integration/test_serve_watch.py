"""Issue 10 items 2, 5, 12: `tritonkit serve` watches its deployment and its server, as a user
runs it (a subprocess), against the real tritonserver: a killed Python stub is recovered, a
dead server or an unrecoverable model ends serve non-zero with the reason, SIGHUP stops it
cleanly, `kill -9` of serve takes tritonserver down, and a load that would hang fails at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.fixtures.tiny_onnx import tiny_config, write_tiny_model
from tests.integration.conftest import fresh_copy
from tritonkit.errors import ServerError
from tritonkit.server.install import ServerInstall
from tritonkit.server.process import TritonServer, free_port
from tritonkit.server.watch import python_stubs

pytestmark = pytest.mark.integration
TRITONKIT = [sys.executable, "-m", "tritonkit"]
INFER = json.dumps(
    {"inputs": [{"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": ["good"]}]}
).encode()


def wait_until(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"not {what} after {seconds} s")
        time.sleep(0.1)


class Serve:
    """`tritonkit serve REPO` on free ports, its output collected as it comes."""

    def __init__(self, repo: Path, *args: str) -> None:
        self.repo = repo
        self.http = free_port()
        ports = ["--http-port", str(self.http), "--grpc-port", str(free_port()),
                 "--metrics-port", str(free_port())]  # fmt: skip
        self.process = subprocess.Popen(
            [*TRITONKIT, "serve", str(repo), *ports, *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "COLUMNS": "300"},
        )  # fmt: skip
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        wait_until(lambda: "Press Ctrl-C to stop." in self.output or self.process.poll() is not
                   None, 120, "ready")  # fmt: skip
        assert self.process.poll() is None, self.output

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def server_pid(self) -> int:
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                argv = cmdline.read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"/tritonserver") and f"--http-port={self.http}".encode() in argv:
                return int(cmdline.parent.name)
        raise AssertionError(f"no tritonserver on port {self.http}:\n{self.output}")

    def stub(self, instance: str, server: int) -> int:
        return next(pid for pid, name in python_stubs(server).items() if name == instance)

    def infer(self, name: str = "cls") -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http}/v2/models/{name}/infer", data=INFER, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as e:
            return int(e.code)
        except OSError:
            return 0

    def exit_code(self, seconds: float = 60) -> int:
        code = self.process.wait(seconds)
        time.sleep(0.2)  # the reader thread drains the pipe
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _stub_regions(server: int) -> list[str]:
    """The /dev/shm regions of the server's stubs."""
    regions = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) > 5 and argv[5] == str(server).encode():
            regions.append(argv[2].decode())
    return regions


@pytest.fixture()
def repo(cls_deployment: Path, tmp_path: Path) -> Path:
    return fresh_copy(cls_deployment, tmp_path / "repo")


def test_a_killed_stub_is_recovered_and_sighup_stops_cleanly(repo: Path) -> None:
    serve = Serve(repo, "--watch-interval", "1")
    try:
        server = serve.server_pid()
        assert serve.infer() == 200
        for instance in ("cls_tokenizer_0_0", "cls_onnx_0_0"):
            stub = serve.stub(instance, server)
            os.kill(stub, signal.SIGKILL)
            killed = time.monotonic()
            died = f"{instance} (pid {stub}) died"
            wait_until(lambda d=died: "recovered in" in serve.output.partition(d)[2], 30,
                       f"{instance} recovered")  # fmt: skip
            assert serve.infer() == 200
            print(f"{instance}: serving again {time.monotonic() - killed:.1f} s after kill -9")
            model = instance.removesuffix("_0_0")
            assert (
                f"model '{model}': its Python stub {instance} (pid {stub}) died: reloading it"
                in serve.output
            )
        regions = _stub_regions(server)
        serve.process.send_signal(signal.SIGHUP)
        assert serve.exit_code() == 0, serve.output
        assert "stopping tritonserver" in serve.output
        assert not alive(server)
        assert not any(Path(f"/dev/shm/{r}").exists() for r in regions)
    finally:
        serve.stop()
    assert not list(repo.rglob("__pycache__"))


def test_serve_exits_with_the_log_when_tritonserver_dies(repo: Path) -> None:
    serve = Serve(repo)
    try:
        server = serve.server_pid()
        stubs = list(python_stubs(server))
        os.kill(server, signal.SIGKILL)
        assert serve.exit_code(30) == 1, serve.output
    finally:
        serve.stop()
    assert f"Error: tritonserver was killed by SIGKILL while serving {repo}: the deployment is " \
        "down; read the log for the cause" in serve.output  # fmt: skip
    assert "--- last lines of " in serve.output
    assert "successfully loaded 'cls'" in serve.output  # the log's lines themselves
    wait_until(lambda: not any(alive(s) for s in stubs), 10, "stubs gone")


def test_kill_9_of_serve_takes_tritonserver_down(repo: Path) -> None:
    serve = Serve(repo)
    try:
        server = serve.server_pid()
        stubs = list(python_stubs(server))
        regions = _stub_regions(server)
        serve.process.kill()
        serve.process.wait(10)
        wait_until(lambda: not alive(server), 20, "tritonserver gone")
        wait_until(lambda: not any(alive(s) for s in stubs), 10, "stubs gone")
        assert not any(Path(f"/dev/shm/{r}").exists() for r in regions)  # SIGTERM: it cleaned up
    finally:
        serve.stop()


def test_serve_exits_when_a_model_cannot_be_recovered(repo: Path) -> None:
    serve = Serve(repo, "--watch-interval", "1")
    try:
        server = serve.server_pid()
        (repo / "cls_tokenizer" / "1" / "model.py").write_text("this is not python (\n")
        os.kill(serve.stub("cls_tokenizer_0_0", server), signal.SIGKILL)
        assert serve.exit_code(60) == 1, serve.output
    finally:
        serve.stop()
    error = next(line for line in serve.lines if line.startswith("Error: "))
    assert error.startswith(
        "Error: model 'cls_tokenizer' could not be recovered after its Python stub "
        "cls_tokenizer_0_0 (pid "
    )
    assert "SyntaxError" in error
    assert "the deployment is down" in error
    assert not alive(server)


def test_a_load_that_would_hang_fails_at_once(
    tmp_path: Path, triton_install: ServerInstall
) -> None:
    """A Python model without model.py: its stub exits before it reports, and in 2.51 the load
    request never answers. The log says so at once; the start stops there."""
    write_tiny_model(tmp_path, "tiny", tiny_config("tiny"))
    (tmp_path / "broken" / "1").mkdir(parents=True)
    (tmp_path / "broken" / "config.pbtxt").write_text(
        'name: "broken"\nbackend: "python"\nmax_batch_size: 0\n'
        'input [ { name: "IN" data_type: TYPE_FP32 dims: [ 1 ] } ]\n'
        'output [ { name: "OUT" data_type: TYPE_FP32 dims: [ 1 ] } ]\n'
    )
    ports = {"http_port": free_port(), "grpc_port": free_port(), "metrics_port": free_port()}
    server = TritonServer(tmp_path, triton_install, **ports)
    started = time.monotonic()
    with pytest.raises(ServerError) as info:
        server.start(timeout=120)
    elapsed = time.monotonic() - started
    first = str(info.value).splitlines()[0]
    assert first == (
        "tritonserver: Failed to preinitialize Python stub: Python model file not found in "
        f"'{tmp_path}/broken/1/model.py': fix the model or its config.pbtxt"
    )
    assert elapsed < 30, f"took {elapsed:.0f} s"
    assert server.pid is None
