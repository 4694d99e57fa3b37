"""`tritonkit tune`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from tritonkit.cli.common import (
    PATH,
    SPEC_OPTION,
    console,
    offline,
    progress_line,
    repository_folder,
)
from tritonkit.cli.options import add_flags, load_section, section_flags
from tritonkit.spec import TuneSpec
from tritonkit.tune.search import TuneResult

TUNE_FLAGS = section_flags(TuneSpec, "tune")


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
@click.argument("repo", type=PATH, required=False)
@SPEC_OPTION
@add_flags(TUNE_FLAGS)
@click.option("--dry-run", is_flag=True, help="Measure and report; do not write the repository.")
@click.option("--tritonserver", type=PATH, envvar="TRITONKIT_TRITONSERVER", help="See serve.")
def tune(
    repo: Path | None,
    spec_file: Path | None,
    dry_run: bool,
    tritonserver: Path | None,
    **values: Any,
) -> None:
    """Tune instances, threads, batching, queue delay and length buckets on a local server.

    Starts a local tritonserver on free ports in explicit model-control mode, reloads the
    configs of each trial through the repository API and measures it with Locust on the
    corpus at --users concurrency. The best setting is measured again next to the default
    and written into the repository (re-rendered through the templates, validated,
    atomically) only if it still wins; a setting that measured worse than the default is
    never written. Works on ONNX and TensorRT deployments. Reports: tune.md, tune.json and
    tune.png (throughput vs p95) in --report.

    \b
        tritonkit tune model_repository --name minilm --budget 5m
        tritonkit tune repo --name sentiment --texts my_traffic.txt --users 32 --p95-ms 80
        tritonkit tune model_repository --baselines --dry-run
    """
    from tritonkit.pipeline.tune import tune_repository

    offline()
    options = load_section(TuneSpec, "tune", spec_file, TUNE_FLAGS, values)
    repo = repository_folder(repo, spec_file)
    with console.status("tuning"):
        run = tune_repository(
            repo, options, write=not dry_run, tritonserver=tritonserver, progress=progress_line
        )
    _print_trials(run.result)
    _print_outcome(run.result, repo)
    console.print(f"reports: {', '.join(str(p) for p in run.reports.values())}")


def _print_outcome(result: TuneResult, repo: Path) -> None:
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


COMMANDS = (tune,)
