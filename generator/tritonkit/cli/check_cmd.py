"""`tritonkit check`."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from tritonkit.check import BUILTIN_TEXTS, MODES, CheckReport, Tolerance, load_texts, run_check
from tritonkit.cli.common import console, offline
from tritonkit.errors import CheckError

_PATH = click.Path(path_type=Path)


def _preview(text: str, width: int = 42) -> str:
    text = text.replace("\n", " ")
    if not text:
        return "(empty string)"
    return text if len(text) <= width else f"{text[: width - 1]}… ({len(text)} chars)"


def _tolerance(
    min_cosine: float | None, max_prob_diff: float | None, precision: str | None
) -> Tolerance:
    base = Tolerance()
    if precision is not None:
        from tritonkit.trt_triton import precision_tolerance

        base = precision_tolerance(precision)  # type: ignore[arg-type]
    return Tolerance(
        base.min_cosine if min_cosine is None else min_cosine,
        base.max_prob_diff if max_prob_diff is None else max_prob_diff,
    )


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
@click.argument("model_dir", type=_PATH, required=False)
@click.option("--url", default="127.0.0.1:8000", show_default=True, help="HTTP HOST:PORT.")
@click.option("--grpc-url", help="gRPC HOST:PORT [default: HTTP port + 1].")
@click.option("--name", default="minilm", show_default=True, help="Ensemble name.")
@click.option("--texts", "texts_file", type=_PATH, help="Texts: one per line, or .jsonl {text}.")
@click.option(
    "--min-cosine", type=float, help="Embeddings floor [default: 0.999, or --precision's]."
)
@click.option(
    "--max-prob-diff", type=float, help="Classification [default: 1e-3, or --precision's]."
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "fp16", "int8"]),
    help="Tolerances for a model served at this precision (TensorRT or int8 variants): "
    "fp32 0.999/1e-3, fp16 0.995/1e-2, int8 0.98/5e-2; explicit flags win.",
)
def check(
    model_dir: Path | None,
    url: str,
    grpc_url: str | None,
    name: str,
    texts_file: Path | None,
    min_cosine: float | None,
    max_prob_diff: float | None,
    precision: str | None,
) -> None:
    """Check a served deployment against the Hugging Face PyTorch reference.

    Sends the built-in texts (unicode, an empty string, a text far past the maximum length)
    plus --texts over HTTP and gRPC, batched and one by one; exits 1 if any text fails.
    MODEL_DIR defaults to the embedded all-MiniLM-L6-v2.

    \b
        tritonkit check --url 127.0.0.1:8000 --name minilm
        tritonkit check --url 127.0.0.1:8000 --name sentiment ./my-model --texts texts.jsonl
    """
    from tritonkit.cli.common import default_model_dir

    offline()
    model = model_dir or Path(default_model_dir())
    if grpc_url is None:
        host, _, port = url.rpartition(":")
        if not port.isdigit():
            raise CheckError(f"--url {url}: expected HOST:PORT, e.g. 127.0.0.1:8000")
        grpc_url = f"{host}:{int(port) + 1}"
    texts = list(BUILTIN_TEXTS) + (load_texts(texts_file) if texts_file else [])
    with console.status("checking against the PyTorch reference"):
        tolerance = _tolerance(min_cosine, max_prob_diff, precision)
        report = run_check(model, name, url, grpc_url, texts, tolerance)
    print_report(report)
    failures = report.failures()
    if failures:
        raise CheckError(
            f"{len(failures)} of {len(report.results)} comparisons failed their tolerance"
        )
    console.print(f"[green]all {len(report.results)} comparisons passed[/]")


COMMANDS = (check,)
