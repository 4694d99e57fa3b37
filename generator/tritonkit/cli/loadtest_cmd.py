"""`tritonkit loadtest`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich import box
from rich.table import Table

from tritonkit.cli.common import SPEC_OPTION, console, offline
from tritonkit.cli.options import add_flags, load_section, section_flags
from tritonkit.errors import LoadtestError
from tritonkit.loadtest.config import LoadtestResult
from tritonkit.loadtest.reports import client_line
from tritonkit.spec import LoadtestSpec
from tritonkit.spec.slo import SLO_NAMES, format_value, parse_slo

LOADTEST_FLAGS = section_flags(LoadtestSpec, "loadtest")


def _us_as_ms(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e3:.2f}"


def print_result(result: LoadtestResult) -> None:
    """Client figures, the server-side breakdown and the SLO verdicts as tables."""
    console.print(client_line(result))
    if result.checked:
        console.print(f"correctness: {result.checked} requests checked, {result.wrong} wrong")
    table = Table(
        title=f"server, ms per request ({result.breakdown_source})",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption="batch: average executed batch size; queue, compute in/infer/out, total: ms",
    )
    width = max((len(row.model) for row in result.breakdown), default=5)
    table.add_column("model", no_wrap=True, min_width=width)
    for column in ("reqs", "execs", "batch", "queue", "in", "infer", "out", "total"):
        table.add_column(column, justify="right")
    for row in result.breakdown:
        batch = "-" if row.avg_batch_size is None else f"{row.avg_batch_size:.2f}"
        times = (
            row.avg_queue_us,
            row.avg_compute_input_us,
            row.avg_compute_infer_us,
            row.avg_compute_output_us,
            row.avg_request_us,
        )
        table.add_row(
            row.model, str(row.requests), str(row.executions), batch, *map(_us_as_ms, times)
        )
    if result.breakdown:
        console.print(table)
    if result.verdicts:
        slos = Table(title="SLOs", box=box.SIMPLE_HEAD)
        for column in ("slo", "measured", "verdict"):
            slos.add_column(column)
        for verdict in result.verdicts:
            value = "-" if verdict.value is None else format_value(verdict.slo.name, verdict.value)
            mark = "[green]met[/]" if verdict.passed else "[red]missed[/]"
            slos.add_row(verdict.slo.expression, value, mark)
        console.print(slos)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    console.print(
        f"reports in {result.config.output}: "
        + ", ".join(sorted(path.name for path in result.reports.values()))
    )


@click.command()
@SPEC_OPTION
@add_flags(LOADTEST_FLAGS)
@click.option(
    "--slo",
    "slos",
    multiple=True,
    metavar="NAME=NUMBER",
    help=f"Objective, repeatable; NAME: {', '.join(SLO_NAMES)}.",
)
def loadtest(spec_file: Path | None, slos: tuple[str, ...], **values: Any) -> None:
    """Load-test a served deployment with Locust and judge it against SLOs.

    Users call the ensemble over HTTP (KServe v2) or gRPC with texts drawn from a file, so
    that text lengths follow it. Exit code 0 when every SLO is met, 1 when one is missed (or
    Locust did not finish), 2 for bad input. Reports: Locust's CSV and HTML, summary.json,
    junit.xml, breakdown.png (client percentiles and per-model server time).

    \b
        tritonkit loadtest --url 127.0.0.1:8000 --name minilm --users 4 --duration 20s \\
            --slo p95_ms=50 --slo error_rate=0 --output loadtest-report
        tritonkit loadtest --protocol grpc --shape rate --rate 100 --users 8 --batch-size 4
        tritonkit loadtest --spec tritonkit.yaml --check-fraction 0.05
    """
    from tritonkit.loadtest.config import config_from_spec
    from tritonkit.loadtest.run import run_loadtest

    offline()
    parsed = tuple(parse_slo(expression) for expression in slos)
    section = load_section(LoadtestSpec, "loadtest", spec_file, LOADTEST_FLAGS, values)
    config = config_from_spec(section, parsed)
    with console.status(f"load test: {config.users} users, {config.duration_s:g} s"):
        result = run_loadtest(config)
    print_result(result)
    for verdict in result.verdicts:
        if not verdict.passed:
            console.print(f"[red]SLO missed:[/] {verdict.message}")
    if not result.complete:
        raise LoadtestError(f"Locust did not finish: see {config.output / 'locust.log'}")
    missed = [v for v in result.verdicts if not v.passed]
    if missed:
        raise LoadtestError(f"{len(missed)} of {len(result.verdicts)} SLOs missed")
    console.print(
        f"[green]passed:[/] {len(result.verdicts)} SLOs met" if result.verdicts else "no SLOs given"
    )


COMMANDS = (loadtest,)
