"""`tritonkit check`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from tritonkit.check import MODES, CheckReport
from tritonkit.cli.common import PATH, SPEC_OPTION, console, offline
from tritonkit.cli.options import add_flags, section_flags, section_values
from tritonkit.errors import CheckError
from tritonkit.spec import CheckSpec

CHECK_FLAGS = section_flags(CheckSpec, "check")


def _preview(text: str, width: int = 42) -> str:
    text = text.replace("\n", " ")
    if not text:
        return "(empty string)"
    return text if len(text) <= width else f"{text[: width - 1]}… ({len(text)} chars)"


def print_report(report: CheckReport) -> None:
    table = Table(title=f"tritonkit check: {report.name} ({report.task}) vs PyTorch reference")
    table.add_column("#", justify="right")
    table.add_column("text")
    for mode in MODES:
        table.add_column(mode)
    by_key = {(r.index, r.mode): r for r in report.results}
    for index, text in enumerate(report.texts):
        cells = []
        for mode in MODES:
            result = by_key.get((index, mode))
            if result is None:
                cells.append("-")
            else:
                colour = "green" if result.ok else "red"
                cells.append(f"[{colour}]{'ok' if result.ok else 'FAIL'}[/] {result.detail}")
        table.add_row(str(index), _preview(text), *cells)
    console.print(table)


@click.command()
@click.argument("model_dir", type=PATH, required=False)
@SPEC_OPTION
@add_flags(CHECK_FLAGS)
@click.option(
    "--repository", type=PATH, help="Repository folder the server runs: the served deployment "
    "must match it, and its variant sets the tolerances.",
)  # fmt: skip
def check(
    model_dir: Path | None, spec_file: Path | None, repository: Path | None, **values: Any
) -> None:
    """Check a served deployment against the Hugging Face PyTorch reference.

    Sends the built-in texts (unicode, an empty string, a text far past the maximum length)
    plus --texts over HTTP and gRPC, batched and one by one; exits 1 if any text fails.
    MODEL_DIR defaults to the spec's model, else the embedded all-MiniLM-L6-v2. Servers that
    restrict the model-config API need the key in $TRITONKIT_ADMIN_KEY.

    \b
        tritonkit check --url 127.0.0.1:8000 --name minilm
        tritonkit check --url 127.0.0.1:8000 --name sentiment ./my-model --texts texts.jsonl
        tritonkit check --spec tritonkit.yaml --repository model_repository
    """
    from tritonkit.pipeline.check import check_deployment

    offline()
    given = section_values(CHECK_FLAGS, values, "check")
    with console.status("checking against the PyTorch reference"):
        report = check_deployment(spec_file, given, model_dir, repository)
    print_report(report)
    failures = report.failures()
    if failures:
        raise CheckError(
            f"{len(failures)} of {len(report.results)} comparisons failed their tolerance"
        )
    console.print(f"[green]all {len(report.results)} comparisons passed[/]")


COMMANDS = (check,)
