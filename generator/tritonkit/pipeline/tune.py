"""`tritonkit tune` as a library call: validate the repository, measure the in-process
baselines if asked, sweep on a local server, write the confirmed best and the reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tritonkit.bench.inprocess import Baseline, measure_all
from tritonkit.errors import RepositoryError
from tritonkit.loadtest.config import load_corpus
from tritonkit.model.inspect import inspect_model_dir
from tritonkit.repository.contract import Deployment
from tritonkit.repository.validate import validate_repository
from tritonkit.server.install import find_server
from tritonkit.spec import TuneSpec
from tritonkit.spec.durations import parse_duration
from tritonkit.tune.live import run_tune
from tritonkit.tune.report import write_reports
from tritonkit.tune.search import TuneResult

Progress = Callable[[str], None]


@dataclass
class TuneRun:
    result: TuneResult
    baselines: list[Baseline]
    reports: dict[str, Path]


def _baselines(
    repo: Path, deployment: Deployment, texts: list[str], seconds: float
) -> list[Baseline]:
    """In-process ONNX Runtime and PyTorch on the same texts (ONNX deployments only)."""
    import json

    if deployment.model_kind != "onnx":
        return []
    spec = json.loads((repo / "tritonkit.json").read_text(encoding="utf-8"))["spec"]
    info = inspect_model_dir(Path(spec["model"]), deployment.task.name)
    return measure_all(
        repo / deployment.model / "1" / "model.onnx",
        deployment.tokenizer_file(repo),
        info.model_dir,
        info.task,
        texts,
        deployment.tokenizer.max_length,
        seconds=seconds,
    )


def tune_repository(
    repo: Path,
    options: TuneSpec,
    *,
    write: bool = True,
    tritonserver: Path | None = None,
    progress: Progress = lambda _: None,
) -> TuneRun:
    problems = validate_repository(repo)
    if problems:
        raise RepositoryError(f"{repo}: invalid repository: {problems[0]}")
    deployment = Deployment.from_repository(repo, options.name)
    budget_s = parse_duration(options.budget, "--budget")
    trial_s = parse_duration(options.trial, "--trial")
    texts = load_corpus(options.texts)
    baselines: list[Baseline] = []
    if options.baselines:
        progress("measuring in-process baselines (ONNX Runtime, PyTorch)")
        baselines = _baselines(repo, deployment, texts, options.baseline_seconds)
        for b in baselines:
            progress(f"in-process {b.label}: {b.texts_per_s:.1f} texts/s")
    install = find_server(tritonserver, log=progress)
    report_dir = options.report or Path("tune-report")
    result = run_tune(
        repo, deployment.name, install, texts,
        users=options.users, trial_s=trial_s, budget_s=budget_s, report_dir=report_dir,
        p95_bound_ms=options.p95_ms, write=write, progress=progress,
    )  # fmt: skip
    reports = write_reports(result, report_dir, options.users, baselines)
    return TuneRun(result, baselines, reports)
