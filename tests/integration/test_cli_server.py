"""`tritonkit serve` and `tritonkit demo` as a user runs them (subprocesses)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tritonkit.server.process import free_port

pytestmark = pytest.mark.integration
TRITONKIT = [sys.executable, "-m", "tritonkit"]


def test_serve_port_in_use(tmp_path: Path, valid_tiny_repo: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = sock.getsockname()[1]
        result = subprocess.run(
            [
                *TRITONKIT,
                "serve",
                str(valid_tiny_repo),
                "--http-port",
                str(busy),
                "--grpc-port",
                str(free_port()),
                "--metrics-port",
                str(free_port()),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: port {busy} is already in use (--http-port): stop the process that holds it "
        "or choose another port\n"
    )


def test_serve_until_ctrl_c(valid_tiny_repo: Path) -> None:
    ports = [free_port() for _ in range(3)]
    process = subprocess.Popen(
        [
            *TRITONKIT,
            "serve",
            str(valid_tiny_repo),
            "--http-port",
            str(ports[0]),
            "--grpc-port",
            str(ports[1]),
            "--metrics-port",
            str(ports[2]),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:  # serve exits (EOF) on its own start-up timeout
            seen.append(line)
            if "Press Ctrl-C to stop." in line:
                break
        else:
            pytest.fail("serve ended before it was ready:\n" + "".join(seen))
        url = f"http://127.0.0.1:{ports[0]}/v2/models/tiny_ensemble/ready"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
        output = "".join(seen) + rest
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert f"HTTP http://127.0.0.1:{ports[0]}" in output
    assert "notice: model 'tiny_gpu' asks for KIND_GPU" in output
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/v2/health/live", timeout=2)


def test_serve_refuses_what_validate_refuses(tiny_repo: Path) -> None:
    """Triton would refuse it at load time, or hang (a missing model.py): refuse it first."""
    command = [*TRITONKIT, "serve", str(tiny_repo), "--http-port", str(free_port())]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr == (
        "Error: tiny_loose/config.pbtxt: input 'IDS' is TYPE_INT32, the ONNX graph says "
        f"TYPE_INT64\n{tiny_repo}: 1 problem(s): fix them (see `tritonkit validate {tiny_repo}`) "
        "before serving\n"
    )
    assert result.stdout == ""


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo_repo"
    env = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run(
        [*TRITONKIT, "demo", "-o", str(out)], capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo passed:" in result.stdout
    assert "FAIL" not in result.stdout
    assert (out / "minilm" / "config.pbtxt").is_file()
    again = subprocess.run(
        [*TRITONKIT, "demo", "-o", str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert again.returncode == 1
    assert again.stderr == (
        f"Error: {tmp_path}: exists and was not written by tritonkit: choose another -o\n"
    )
