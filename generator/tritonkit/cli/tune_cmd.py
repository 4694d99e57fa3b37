"""`tritonkit tune`."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from tritonkit.cli.common import console, offline
from tritonkit.errors import RepositoryError
from tritonkit.tune import TuneResult

_PATH = click.Path(path_type=Path)


def _print_trials(result: TuneResult) -> None:
    table = Table(title="tritonkit tune: trials")
    for column in ("#", "stage", "texts/s", "p95 ms", "errors", "batch", "padding", "settings"):
        table.add_column(column, justify="right" if column not in ("stage", "settings") else "left")
    for index, t in enumerate(result.trials, 1):
        chosen = t.settings == result.chosen
        table.add_row(
            str(index),
            t.stage,
            f"{t.texts_per_s:.1f}",
            "-" if t.p95_ms is None else f"{t.p95_ms:.1f}",
            f"{t.error_rate:.1%}",
            "-" if t.model_batch is None else f"{t.model_batch:.2f}",
            f"{t.padding:.2f}x",
            ("[green]" if chosen else "") + t.settings.describe() + ("[/]" if chosen else ""),
        )
    console.print(table)


@click.command()
@click.argument("repo", type=_PATH, default="model_repository")
@click.option("--name", default="minilm", show_default=True, help="Ensemble name.")
@click.option("--texts", "texts_file", type=_PATH, help="Corpus [default: the shipped one].")
@click.option("--users", type=int, default=16, show_default=True, help="Concurrency.")
@click.option("--budget", default="5m", show_default=True, help="Time budget for the sweep.")
@click.option("--trial", "trial", default="12s", show_default=True, help="Load per trial.")
@click.option("--p95-ms", type=float, help="Maximise throughput under this p95 bound.")
@click.option("--report", "report_dir", type=_PATH, default="tune-report", show_default=True)
@click.option("--dry-run", is_flag=True, help="Measure and report; do not write the repository.")
@click.option(
    "--baselines/--no-baselines",
    default=False,
    help="Also measure in-process "
    "ONNX Runtime and PyTorch on the same texts and report served/in-process ratios.",
)
@click.option("--baseline-seconds", type=float, default=10.0, show_default=True)
@click.option("--tritonserver", type=_PATH, envvar="TRITONKIT_TRITONSERVER", help="See serve.")
def tune(
    repo: Path,
    name: str,
    texts_file: Path | None,
    users: int,
    budget: str,
    trial: str,
    p95_ms: float | None,
    report_dir: Path,
    dry_run: bool,
    baselines: bool,
    baseline_seconds: float,
    tritonserver: Path | None,
) -> None:
    """Tune instances, threads, batching, queue delay and length buckets on a local server.

    Starts a local tritonserver on free ports in explicit model-control mode, reloads the
    configs of each trial through the repository API and measures it with Locust on the
    corpus at --users concurrency. The best setting is measured again next to the default
    and written into the repository (validated, atomically) only if it still wins; a setting
    that measured worse than the default is never written. Reports: tune.md, tune.json and
    tune.png (throughput vs p95) in --report.

    \b
        tritonkit tune model_repository --name minilm --budget 5m
        tritonkit tune repo --name sentiment --texts my_traffic.txt --users 32 --p95-ms 80
        tritonkit tune model_repository --baselines --dry-run
    """
    from tritonkit.loadtest import load_corpus, parse_duration
    from tritonkit.server import find_server
    from tritonkit.tune_run import run_tune, write_reports
    from tritonkit.validate import validate_repository

    offline()
    problems = validate_repository(repo)
    if problems:
        raise RepositoryError(f"{repo}: invalid repository: {problems[0]}")
    for model in (name, f"{name}_tokenizer", f"{name}_onnx"):
        if not (repo / model / "config.pbtxt").is_file():
            raise RepositoryError(
                f"{repo / model}: not found: --name must name a deployment made by tritonkit"
            )
    budget_s = parse_duration(budget, "--budget")
    trial_s = parse_duration(trial, "--trial")
    texts = load_corpus(texts_file)
    measured = []
    if baselines:
        from tritonkit.inprocess import measure_all

        meta = json.loads((repo / "tritonkit.json").read_text(encoding="utf-8"))
        spec = meta["spec"]
        with console.status("measuring in-process baselines (ONNX Runtime, PyTorch)"):
            measured = measure_all(
                repo / f"{name}_onnx" / "1" / "model.onnx",
                repo / f"{name}_tokenizer" / "1" / "tokenizer.json",
                Path(spec["model"]),
                spec["task"],
                texts,
                int(meta["max_length"]),
                seconds=baseline_seconds,
            )
        for b in measured:
            console.print(f"in-process {b.label}: {b.texts_per_s:.1f} texts/s")
    install = find_server(tritonserver, log=lambda line: console.print(f"[dim]{line}[/]"))

    def progress(line: str) -> None:
        console.print(f"[dim]{line}[/]")

    with console.status("tuning"):
        result = run_tune(
            repo,
            name,
            install,
            texts,
            users=users,
            trial_s=trial_s,
            budget_s=budget_s,
            report_dir=report_dir,
            p95_bound_ms=p95_ms,
            write=not dry_run,
            progress=progress,
        )
    _print_trials(result)
    paths = write_reports(result, report_dir, users, measured)
    if result.confirmation:
        default, best = result.confirmation["default"], result.confirmation["best"]
        console.print(
            f"confirmation, side by side: default {default:.1f} texts/s, best {best:.1f} texts/s "
            f"({best / default:.2f}x)"
        )
    if result.improved:
        verb = "written to" if result.written else "not written (--dry-run) to"
        console.print(f"[green]chosen:[/] {result.chosen.describe()}; {verb} {repo}")
    else:
        console.print("[yellow]kept the default:[/] no setting beat it in the confirmation round")
    console.print(f"reports: {', '.join(str(p) for p in paths.values())}")


COMMANDS = (tune,)
