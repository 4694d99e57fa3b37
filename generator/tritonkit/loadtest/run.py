"""`tritonkit loadtest`: Locust against a served ensemble, judged against SLOs.

Locust runs as a subprocess on the packaged locustfile (loadtest/locustfile.py), configured
through one JSON file. Before and after the run the server's per-model counters are read (the
statistics API, else /metrics) for the server-side breakdown. Whatever happens to the server,
the reports are written; a Locust that does not end is stopped after a hard timeout.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tritonkit.errors import LoadtestInputError
from tritonkit.loadtest.config import LoadtestConfig, LoadtestResult, load_corpus, split_url
from tritonkit.loadtest.metrics import (
    ModelBreakdown,
    Snapshot,
    breakdown,
    counters_from_metrics,
    counters_from_statistics,
    latency,
    scrape_metrics,
)
from tritonkit.loadtest.reports import write_reports
from tritonkit.loadtest.target import Target, http_client, prepare_check, probe
from tritonkit.spec.slo import evaluate_slos
from tritonkit.util.processes import stop_process_group
from tritonkit.util.resources import data_dir

USER_CLASSES = {"http": "KServeHttpUser", "grpc": "TritonGrpcUser"}
CPU_WARNING = 0.9  # Locust runs on one core: above this share it may limit the load


def _validate(config: LoadtestConfig) -> None:
    for flag, url in (("--url", config.url), ("--grpc-url", config.grpc_url),
                      ("--metrics-url", config.metrics_url)):  # fmt: skip
        if url is not None:
            split_url(url, flag)
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
    stop_process_group(process, ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)))


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
