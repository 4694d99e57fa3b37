"""`tritonkit loadtest`: Locust against a served ensemble, judged against SLOs.

Locust runs as a subprocess on the packaged locustfile (loadtest/locustfile.py), configured
through one JSON file. Before and after the run the server's per-model counters are read (the
statistics API, else /metrics) for the server-side breakdown. Whatever happens to the server,
the reports are written; a Locust that does not end is stopped after a hard timeout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tritonkit.errors import CheckError, LoadtestInputError
from tritonkit.loadtest_target import Target, http_client, prepare_check, probe
from tritonkit.metrics import (
    ModelBreakdown,
    Snapshot,
    breakdown,
    counters_from_metrics,
    counters_from_statistics,
    latency,
    scrape_metrics,
)
from tritonkit.resources import data_dir
from tritonkit.slo import Slo, SloVerdict, evaluate_slos

Protocol = Literal["http", "grpc"]
Shape = Literal["users", "step", "rate"]
PROTOCOLS: tuple[Protocol, ...] = ("http", "grpc")
SHAPES: tuple[Shape, ...] = ("users", "step", "rate")
USER_CLASSES = {"http": "KServeHttpUser", "grpc": "TritonGrpcUser"}
CPU_WARNING = 0.9  # Locust runs on one core: above this share it may limit the load
DURATION_HINT = "expected a duration of at least 1s, such as 20s, 90, 2m or 1m30s"
_HOST_PORT = re.compile(r"^[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")


@dataclass(frozen=True)
class LoadtestConfig:
    """One load test. URLs are HOST:PORT; durations in seconds."""

    url: str  # HTTP (KServe v2): preflight, statistics API, and the http user
    name: str  # the ensemble
    output: Path  # reports folder (created; known files are replaced)
    protocol: Protocol = "http"
    grpc_url: str | None = None  # default: the HTTP port + 1
    metrics_url: str | None = None  # default: the HTTP host, port 8002
    texts: tuple[str, ...] = ()  # the corpus; when empty, read from texts_file
    texts_file: Path | None = None  # default: the corpus shipped with tritonkit
    batch_size: int = 1  # texts per request
    shape: Shape = "users"
    users: int = 4
    spawn_rate: float | None = None  # users started per second; default: all in the first second
    duration_s: float = 20.0
    rate: float | None = None  # requests per second (shape "rate")
    step_users: int | None = None  # users added per step (shape "step"); default: users / 4
    step_time_s: float = 10.0
    check_fraction: float = 0.0  # share of requests checked against the PyTorch reference
    model_dir: Path | None = None  # the Hugging Face folder for the reference (check_fraction > 0)
    slos: tuple[Slo, ...] = ()
    timeout_s: float | None = None  # hard limit on Locust; default: duration + 60 s

    @property
    def resolved_grpc_url(self) -> str:
        host, port = _split(self.url, "--url")
        return self.grpc_url or f"{host}:{port + 1}"

    @property
    def resolved_metrics_url(self) -> str:
        return self.metrics_url or f"{_split(self.url, '--url')[0]}:8002"


@dataclass(frozen=True)
class LoadtestResult:
    """Client-side figures (successful requests only for latency and rps), the server-side
    breakdown per model, SLO verdicts and the reports written."""

    config: LoadtestConfig
    duration_s: float  # the measured load window
    requests: int  # sent and finished: successes + failures
    failures: int  # errors and wrong results
    error_rate: float | None  # None: no request finished
    rps: float  # successful requests per second
    texts_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    max_ms: float | None
    client_cpu_share: float | None  # CPU time of the Locust process / load window (1.0 = a core)
    checked: int  # requests compared with the reference
    wrong: int
    wrong_examples: tuple[str, ...]
    breakdown: tuple[ModelBreakdown, ...]  # the ensemble, then its steps
    breakdown_source: str  # "statistics API", "/metrics" or "unavailable"
    complete: bool  # Locust finished and reported its results
    warnings: tuple[str, ...]
    verdicts: tuple[SloVerdict, ...] = ()
    reports: dict[str, Path] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.complete and all(verdict.passed for verdict in self.verdicts)


def duration_seconds(text: str) -> float | None:
    """`20s`, `90`, `2m`, `1m30s`, `1h` -> seconds; None unless a duration of at least 1 s."""
    match = re.fullmatch(r"\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds = (float(group or 0) for group in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    return total if total >= 1 else None


def parse_duration(text: str, source: str = "--duration") -> float:
    seconds = duration_seconds(text)
    if seconds is None:
        raise LoadtestInputError(f"{source} {text}: {DURATION_HINT}")
    return seconds


def _split(url: str, flag: str) -> tuple[str, int]:
    if not _HOST_PORT.match(url):
        raise LoadtestInputError(f"{flag} {url}: expected HOST:PORT, e.g. 127.0.0.1:8000")
    host, _, port = url.rpartition(":")
    return host, int(port)


def default_corpus() -> Path:
    return data_dir("loadtest") / "corpus" / "default.txt"


def load_corpus(path: Path | None) -> list[str]:
    """One text per line (or .jsonl with a "text" field); the shipped corpus by default."""
    from tritonkit.check import load_texts

    try:
        return load_texts(path or default_corpus())
    except CheckError as e:
        raise LoadtestInputError(str(e)) from None


def _validate(config: LoadtestConfig) -> None:
    for flag, url in (("--url", config.url), ("--grpc-url", config.grpc_url),
                      ("--metrics-url", config.metrics_url)):  # fmt: skip
        if url is not None:
            _split(url, flag)
    problems = [
        (config.batch_size < 1, f"--batch-size {config.batch_size}: give at least 1"),
        (config.users < 1, f"--users {config.users}: give at least 1"),
        (config.duration_s < 1, f"--duration {config.duration_s:g}s: give at least 1s"),
        (not 0 <= config.check_fraction <= 1,
         f"--check-fraction {config.check_fraction:g}: give a fraction from 0 to 1"),
        (config.check_fraction > 0 and config.model_dir is None,
         "--check-fraction needs --model-dir: the Hugging Face model folder of the reference"),
        (config.shape == "rate" and not config.rate,
         "--shape rate needs --rate: the requests per second to send"),
        (config.shape != "rate" and config.rate is not None,
         "--rate applies to --shape rate only: add --shape rate"),
        (config.rate is not None and config.rate <= 0, f"--rate {config.rate}: give more than 0"),
        (config.spawn_rate is not None and config.spawn_rate <= 0,
         f"--spawn-rate {config.spawn_rate}: give more than 0"),
        (config.step_users is not None and config.step_users < 1,
         f"--step-users {config.step_users}: give at least 1"),
        (config.step_time_s < 1, f"--step-time {config.step_time_s:g}s: give at least 1s"),
    ]  # fmt: skip
    for failed, message in problems:
        if failed:
            raise LoadtestInputError(message)


@dataclass(frozen=True)
class _Counters:
    statistics: Snapshot | None
    metrics: Snapshot | None
    problem: str | None


def _read_counters(config: LoadtestConfig) -> _Counters:
    problems = []
    statistics = metrics = None
    client = http_client(config.url)
    try:
        statistics = counters_from_statistics(client.get_inference_statistics())
    except Exception as e:
        problems.append(f"statistics API: {type(e).__name__}")
    finally:
        client.close()
    try:
        metrics = counters_from_metrics(scrape_metrics(config.resolved_metrics_url))
    except OSError as e:
        problems.append(f"/metrics: {type(e).__name__}")
    return _Counters(statistics, metrics, "; ".join(problems) or None)


def _server_breakdown(
    before: _Counters, after: _Counters, target: Target
) -> tuple[tuple[ModelBreakdown, ...], str, str | None]:
    models = (target.name, *target.steps)
    if before.statistics is not None and after.statistics is not None:
        return breakdown(before.statistics, after.statistics, models), "statistics API", None
    if before.metrics is not None and after.metrics is not None:
        return breakdown(before.metrics, after.metrics, models), "/metrics", None
    problem = after.problem or before.problem
    return (), "unavailable", f"server counters unreadable ({problem}): no server-side breakdown"


@dataclass(frozen=True)
class _LocustRun:
    returncode: int | None
    timed_out: bool
    result: dict[str, Any] | None
    latencies_ms: np.ndarray


def _locust_command(config: LoadtestConfig, output: Path) -> list[str]:
    spawn_rate = config.spawn_rate or config.users
    output = output.resolve()  # Locust runs in a scratch folder
    return [
        sys.executable, "-m", "locust", "-f", str(data_dir("loadtest") / "locustfile.py"),
        "--headless", "--only-summary", "--loglevel", "WARNING",
        "-u", str(config.users), "-r", f"{spawn_rate:g}", "-t", f"{math.ceil(config.duration_s)}s",
        "--csv", str(output / "locust"), "--html", str(output / "report.html"),
        USER_CLASSES[config.protocol],
    ]  # fmt: skip


def _run_locust(config: LoadtestConfig, run_dir: Path, output: Path) -> _LocustRun:
    timeout = config.timeout_s or config.duration_s + 60.0
    env = {**os.environ, "TRITONKIT_LOADTEST_CONFIG": str(run_dir / "config.json")}
    with (output / "locust.log").open("wb") as log:
        process = subprocess.Popen(
            _locust_command(config, output),
            cwd=run_dir,  # not the caller's folder: Locust reads ./locust.conf and pyproject.toml
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    timed_out = False
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _stop(process)
    except BaseException:
        _stop(process)
        raise
    result_path, latencies_path = run_dir / "result.json", run_dir / "latencies.f64"
    result = json.loads(result_path.read_text()) if result_path.is_file() else None
    latencies = np.fromfile(latencies_path) if latencies_path.is_file() else np.zeros(0)
    return _LocustRun(process.returncode, timed_out, result, latencies)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (Locust then writes its reports), then SIGKILL, to the whole process group."""
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait)
            return


def _locust_config(
    config: LoadtestConfig, target: Target, texts: Sequence[str], run_dir: Path
) -> dict[str, Any]:
    check = None
    if config.model_dir is not None and config.check_fraction > 0:
        check = prepare_check(config, config.model_dir, target, texts, run_dir)
    return {
        "model": target.name,
        "input": target.input,
        "outputs": list(target.outputs),
        "http_url": config.url,
        "grpc_url": config.resolved_grpc_url,
        "texts": list(texts),
        "batch_size": config.batch_size,
        "shape": config.shape,
        "users": config.users,
        "rate": config.rate,
        "step_users": config.step_users or max(1, config.users // 4),
        "step_time_s": config.step_time_s,
        "check": check,
        "result": str(run_dir / "result.json"),
        "latencies": str(run_dir / "latencies.f64"),
        "exit_grace_s": 3.0,
    }


def run_loadtest(config: LoadtestConfig) -> LoadtestResult:
    """Run one load test and write its reports; LoadtestInputError before anything is sent."""
    from tritonkit.reports import write_reports

    _validate(config)
    texts = list(config.texts) or load_corpus(config.texts_file)
    target = probe(config)
    output = config.output
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tritonkit-loadtest-") as tmp:
        run_dir = Path(tmp)
        locust_config = _locust_config(config, target, texts, run_dir)
        (run_dir / "config.json").write_text(json.dumps(locust_config))
        before = _read_counters(config)
        run = _run_locust(config, run_dir, output)
        after = _read_counters(config)
    result = _result(config, target, run, before, after)
    result = dataclasses.replace(result, verdicts=tuple(evaluate_slos(result, config.slos)))
    return dataclasses.replace(result, reports=write_reports(result))


def _result(
    config: LoadtestConfig, target: Target, run: _LocustRun, before: _Counters, after: _Counters
) -> LoadtestResult:
    data = run.result or {}
    successes, failures = int(data.get("successes", 0)), int(data.get("failures", 0))
    window = float(data.get("window_s", 0.0))
    requests = successes + failures
    cpu_share = float(data["cpu_s"]) / window if window > 0 else None
    rows, source, problem = _server_breakdown(before, after, target)
    warnings = [problem] if problem else []
    log = config.output / "locust.log"
    if run.timed_out:
        warnings.append(f"Locust did not end in time and was stopped: see {log}")
    if run.result is None:
        warnings.append(f"Locust ended (exit code {run.returncode}) without results: see {log}")
    if cpu_share is not None and cpu_share >= CPU_WARNING:
        warnings.append(
            f"the load generator used {cpu_share:.0%} of a CPU core: it may have limited the "
            "load; use a larger --batch-size or run Locust on another machine"
        )
    stats = latency(run.latencies_ms)
    rps = successes / window if window > 0 else 0.0
    return LoadtestResult(
        config=config,
        duration_s=window,
        requests=requests,
        failures=failures,
        error_rate=failures / requests if requests else None,
        rps=rps,
        texts_per_s=rps * config.batch_size,
        p50_ms=stats.p50_ms,
        p95_ms=stats.p95_ms,
        p99_ms=stats.p99_ms,
        mean_ms=stats.mean_ms,
        max_ms=stats.max_ms,
        client_cpu_share=cpu_share,
        checked=int(data.get("checked", 0)),
        wrong=int(data.get("wrong", 0)),
        wrong_examples=tuple(data.get("wrong_examples", ())),
        breakdown=rows,
        breakdown_source=source,
        complete=run.result is not None,
        warnings=tuple(warnings),
    )
