"""`tritonkit loadtest` against the real local tritonserver serving a generated repository.

A tiny text classifier (`cls`: ensemble, tokenizer, ONNX model) keeps each Locust run to a few
seconds. SLOs pass and fail, the server-side breakdown matches the client's counts, gRPC and
correctness sampling work, a server that dies mid-run still gets its reports, and a Locust
whose exit hangs is ended.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from click.testing import CliRunner

from tests.fixtures.tiny_models import perturbed_classifier
from tests.integration.conftest import start_server
from tritonkit.cli import main
from tritonkit.loadtest.run import LoadtestConfig, run_loadtest
from tritonkit.pipeline.generate import generate
from tritonkit.server.install import ServerInstall
from tritonkit.server.process import TritonServer
from tritonkit.spec import build_spec
from tritonkit.util.resources import data_dir

pytestmark = pytest.mark.integration

REPORTS = (
    "locust_stats.csv",
    "locust_stats_history.csv",
    "locust_failures.csv",
    "report.html",
    "summary.json",
    "junit.xml",
    "breakdown.png",
    "locust.log",
)
HANG = "locust still running"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs: dict[str, Path]) -> Path:
    output = tmp_path_factory.mktemp("loadtest") / "repo"
    model = tiny_model_dirs["text-classification"]
    spec = {"model": model, "task": "text-classification", "name": "cls", "output": output}
    return generate(build_spec(None, spec)).output


@pytest.fixture(scope="module")
def served(repo: Path, triton_install: ServerInstall) -> Iterator[TritonServer]:
    server = start_server(repo, triton_install)
    yield server
    server.stop()


def _urls(server: TritonServer) -> list[str]:
    return ["--url", server.http_url, "--grpc-url", server.grpc_url,
            "--metrics-url", server.metrics_url]  # fmt: skip


def _run(server: TritonServer, output: Path, *args: str) -> Any:
    base = ["loadtest", *_urls(server), "--name", "cls", "-u", "2", "-t", "3s", "-o", str(output)]
    return CliRunner().invoke(main, [*base, *args])


def _summary(output: Path) -> dict[str, Any]:
    return dict(json.loads((output / "summary.json").read_text()))


def _junit(output: Path) -> ET.Element:
    suite = ET.parse(output / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    return suite


def test_slos_met_exit_0_with_every_report_and_the_breakdown(
    served: TritonServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path.parent)
    slos = ("--slo", "p95_ms=5000", "--slo", "error_rate=0", "--slo", "min_rps=1")
    result = _run(served, Path(tmp_path.name), *slos)  # relative to the working folder
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("passed: 3 SLOs met")
    assert "server, ms per request (statistics API)" in result.output
    for name in REPORTS:
        assert (tmp_path / name).is_file(), name
    summary = _summary(tmp_path)
    client = summary["client"]
    assert summary["passed"] and summary["complete"]
    assert client["requests"] > 10 and client["failures"] == 0 and client["error_rate"] == 0
    assert 0 < client["p50_ms"] <= client["p95_ms"] <= client["p99_ms"] <= client["max_ms"]
    assert 0 < client["cpu_share"] < 1
    with (tmp_path / "locust_stats.csv").open() as handle:
        aggregated = [row for row in csv.DictReader(handle) if row["Name"] == "Aggregated"]
    # Locust rewrites its CSV every second: the last second may be missing from it
    assert 0.8 * client["requests"] <= int(aggregated[0]["Request Count"]) <= client["requests"]
    server = summary["server"]
    assert server["source"] == "statistics API"
    rows = {row["model"]: row for row in server["models"]}
    assert list(rows) == ["cls", "cls_tokenizer", "cls_onnx"]
    for row in rows.values():
        # the server may finish a request that Locust abandoned when the run ended
        assert client["requests"] <= row["requests"] <= client["requests"] + 2
    for step in ("cls_tokenizer", "cls_onnx"):
        assert 0 < rows[step]["executions"] <= rows[step]["requests"]
        assert rows[step]["avg_batch_size"] >= 1
        assert rows[step]["avg_compute_infer_us"] > 0
    suite = _junit(tmp_path)
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "0", "0")


def test_a_missed_slo_exits_1_naming_it(served: TritonServer, tmp_path: Path) -> None:
    result = _run(served, tmp_path, "--slo", "p95_ms=0.001", "--slo", "error_rate=0")
    assert result.exit_code == 1, result.output
    lines = result.output.rstrip().splitlines()
    missed = [line for line in lines if line.startswith("SLO missed:")]
    assert len(missed) == 1
    assert re.fullmatch(r"SLO missed: p95_ms = \d+(\.\d+)? > 0\.001", missed[0])
    assert lines[-1] == "Error: 1 of 2 SLOs missed"
    summary = _summary(tmp_path)
    assert not summary["passed"]
    assert [slo["passed"] for slo in summary["slos"]] == [False, True]
    failures = _junit(tmp_path).findall("testcase/failure")
    assert [f.get("message") for f in failures] == [missed[0]]
    assert (tmp_path / "breakdown.png").stat().st_size > 10_000


def test_grpc_user_checks_results_and_exits_by_itself(
    served: TritonServer, tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    config = LoadtestConfig(
        url=served.http_url,
        grpc_url=served.grpc_url,
        metrics_url=served.metrics_url,
        name="cls",
        output=tmp_path,
        protocol="grpc",
        users=2,
        duration_s=3,
        batch_size=4,
        check_fraction=0.5,
        model_dir=tiny_model_dirs["text-classification"],
    )
    result = run_loadtest(config)
    assert result.complete and result.passed, result.warnings
    assert result.requests > 10 and result.failures == 0
    assert result.checked > 0 and result.wrong == 0
    assert result.texts_per_s == pytest.approx(4 * result.rps)
    onnx = {row.model: row for row in result.breakdown}["cls_onnx"]
    assert onnx.inferences >= 4 * result.requests
    assert HANG not in (tmp_path / "locust.log").read_text().lower()


def test_wrong_results_count_as_failures(
    served: TritonServer, tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    """References from the same classifier with other weights: every checked answer is wrong."""
    other = perturbed_classifier(
        tiny_model_dirs["text-classification"], tmp_path / "other", (3.0, -3.0)
    )
    output = tmp_path / "out"
    result = _run(served, output, "--check-fraction", "1", "--model-dir", str(other),
                  "--slo", "error_rate=0")  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "correctness: " in result.output
    client = _summary(output)["client"]
    assert client["checked"] == client["wrong"] == client["failures"] == client["requests"] > 0
    assert client["wrong_examples"]
    failures = (output / "locust_failures.csv").read_text()
    assert "wrong result vs the PyTorch reference (text-classification)" in failures


def test_fixed_rate_shape(served: TritonServer, tmp_path: Path) -> None:
    result = _run(served, tmp_path, "--shape", "rate", "--rate", "20", "-t", "4s")
    assert result.exit_code == 0, result.output
    rps = _summary(tmp_path)["client"]["rps"]
    assert 14 <= rps <= 22


def test_step_shape_adds_users(served: TritonServer, tmp_path: Path) -> None:
    args = ("--shape", "step", "-u", "4", "--step-users", "2", "--step-time", "2s", "-t", "5s")
    result = _run(served, tmp_path, *args)
    assert result.exit_code == 0, result.output
    with (tmp_path / "locust_stats_history.csv").open() as handle:
        users = [int(row["User Count"]) for row in csv.DictReader(handle)]
    assert 2 in users and 4 in users
    assert max(users) == 4


def _kill_after_traffic(server: TritonServer, pid: int, requests: int = 20) -> None:
    """SIGKILL the server's process group once the ensemble has answered `requests` requests
    (read from the statistics API, which is not restricted), or after 20 s."""
    deadline = time.monotonic() + 20
    url = f"http://{server.http_url}/v2/models/cls/stats"
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
            with urllib.request.urlopen(url, timeout=2) as response:
                stats = json.load(response)["model_stats"][0]["inference_stats"]["success"]
            if int(stats["count"]) >= requests:
                break
        time.sleep(0.05)
    os.killpg(pid, signal.SIGKILL)


def test_a_server_that_dies_mid_run_still_gets_its_reports(
    repo: Path, triton_install: ServerInstall, tmp_path: Path
) -> None:
    server = start_server(repo, triton_install)
    flag = f"--http-port={server.http_url.rpartition(':')[2]}"
    (process,) = [p for p in psutil.Process().children() if flag in p.cmdline()]
    # a crash once requests flow (so some succeed and some fail, on a slow machine too):
    # SIGKILL to tritonserver and its stubs (a graceful stop keeps serving for a while)
    killer = threading.Thread(target=_kill_after_traffic, args=(server, process.pid))
    killer.start()
    try:
        result = _run(server, tmp_path, "-t", "5s", "--slo", "error_rate=0")
    finally:
        killer.join()
        server.stop()
    assert result.exit_code == 1, result.output
    assert re.search(r"^SLO missed: error_rate = 0\.\d+ > 0$", result.output, re.MULTILINE)
    assert "no server-side breakdown" in result.output
    for name in REPORTS:
        assert (tmp_path / name).is_file(), name
    summary = _summary(tmp_path)
    assert summary["complete"] and summary["client"]["failures"] > 0
    assert summary["server"] == {"source": "unavailable", "models": []}
    assert _junit(tmp_path).get("failures") == "1"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--url", "127.0.0.1:{closed}"], "Error: 127.0.0.1:{closed}: cannot reach the Triton "
         "server over HTTP: start it (tritonkit serve) or fix --url"),
        (["--name", "nope"], "Error: model 'nope' is not ready on {http} (ready: cls, cls_onnx, "
         "cls_tokenizer): check --name"),
        (["--name", "cls_onnx"], "Error: model 'cls_onnx' does not take one TYPE_STRING input: "
         "send the load to the deployment's ensemble (--name)"),
        (["--protocol", "grpc", "--grpc-url", "127.0.0.1:{closed}"], "Error: 127.0.0.1:{closed}: "
         "cannot reach model 'cls' over gRPC: fix --grpc-url (default: the --url port + 1)"),
        (["--metrics-url", "127.0.0.1:{closed}"], "Error: 127.0.0.1:{closed}: cannot read "
         "Triton's /metrics: fix --metrics-url (default: the --url host, port 8002)"),
        (["--batch-size", "64"], "Error: --batch-size 64: model 'cls' takes at most 32 texts per "
         "request (max_batch_size): lower --batch-size"),
        (["--texts", "{empty}"], "Error: {empty}: no texts in the file: add one text per line"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_one_line(
    served: TritonServer, tmp_path: Path, args: list[str], expected: str
) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    values = {"closed": _closed_port(), "http": served.http_url, "empty": empty}
    output = tmp_path / "reports"
    base = ["loadtest", *_urls(served), "--name", "cls", "-t", "2s", "-o", str(output)]
    result = CliRunner().invoke(main, [*base, *(a.format(**values) for a in args)])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [expected.format(**values)]
    assert not output.exists()


def test_locust_is_ended_when_its_exit_hangs(served: TritonServer, tmp_path: Path) -> None:
    """A non-daemon thread that never ends (as gRPC under gevent can leave behind) would keep
    Locust alive after its run; the locustfile's watchdog ends the process."""
    hang = tmp_path / "hang.py"
    hang.write_text(
        "import threading, time\nthreading.Thread(target=time.sleep, args=(3600,)).start()\n"
    )
    config = {
        "model": "cls", "input": "TEXT", "outputs": ["PROBABILITIES"],
        "http_url": served.http_url, "grpc_url": served.grpc_url,
        "texts": ["a short text", "another one"], "batch_size": 1, "shape": "users",
        "users": 1, "rate": None, "step_users": 1, "step_time_s": 10.0, "check": None,
        "result": str(tmp_path / "result.json"), "latencies": str(tmp_path / "latencies.f64"),
        "exit_grace_s": 2.0,
    }  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(config))
    locustfile = data_dir("loadtest") / "locustfile.py"
    command = [sys.executable, "-m", "locust", "-f", f"{locustfile},{hang}", "--headless",
               "-u", "1", "-r", "1", "-t", "2s", "KServeHttpUser"]  # fmt: skip
    env = {**os.environ, "TRITONKIT_LOADTEST_CONFIG": str(tmp_path / "config.json")}
    started = time.monotonic()
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Locust still running 2 s after quit: exiting" in done.stderr
    assert time.monotonic() - started < 30
    assert json.loads((tmp_path / "result.json").read_text())["successes"] > 0
