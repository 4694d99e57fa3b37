"""`tritonkit optimize`, `bench` and `finetune`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tritonkit.cli.common import PATH, SPEC_OPTION, console, offline
from tritonkit.cli.options import add_flags, overrides, select, spec_flags
from tritonkit.pipeline.optimize import model_or_default
from tritonkit.spec import DeploymentSpec

OPTIMIZE_FLAGS = select(
    spec_flags(DeploymentSpec, sections=("optimize",), exclude=("optimize.variants_dir",)),
    "task",
    "device",
    "optimize",
)


def _spec(model_dir: Path | None, spec_file: Path | None, values: dict[str, Any]) -> Any:
    """The deployment spec whose task, device and optimize section these commands use."""
    from tritonkit.spec import build_spec

    given = overrides(OPTIMIZE_FLAGS, values)
    if model_dir is not None or spec_file is None:
        given["model"] = model_or_default(model_dir)
    return build_spec(spec_file, given)


_SHORT = {"EmbedLayerNormalization": "EmbedLN", "SkipLayerNormalization": "SkipLN"}


def print_variants(variants: Sequence[Any]) -> None:
    from tritonkit.variants.accuracy import summary

    table = Table(title="variants vs fp32 PyTorch (accuracy gate)")
    for column in ("variant", "device", "MB", "gate", "drop", "figures", "fused"):
        table.add_column(column)
    for v in variants:
        fused = v.record.get("fused_operators") or {}
        verdict = "[green]pass[/]" if v.passed else "[red]FAIL[/]"
        table.add_row(
            v.name,
            v.device,
            f"{v.record['size_bytes'] / 2**20:.0f}",
            verdict,
            f"{v.accuracy.drop:.2f}/{v.accuracy.max_drop:g}",
            summary(v.accuracy.figures),
            " ".join(f"{_SHORT.get(k, k)} {n}" for k, n in fused.items()) or "-",
        )
    console.print(table)
    for v in variants:
        if not v.passed:
            console.print(f"[red]{v.name}[/]: {v.accuracy.reason}")
    for v in variants:
        for warning in v.record["warnings"]:
            console.print(f"[yellow]warning[/] {v.name}: {warning}")


@click.command()
@click.argument("model_dir", type=PATH, required=False)
@click.option("-o", "--output", type=PATH, default="variants", show_default=True)
@SPEC_OPTION
@add_flags(OPTIMIZE_FLAGS)
def optimize(model_dir: Path | None, output: Path, spec_file: Path | None, **values: Any) -> None:
    """Build the optimization variants of a model and gate each on accuracy.

    Variants: fp32 (plain export), fp32-fused (ONNX Runtime transformer fusions), fp16
    (GPU), int8-dynamic and int8-static (CPU). Each goes to OUTPUT/VARIANT/ with model.onnx
    and variant.json (how it was made, tool versions, CPU flags, accuracy figures). Every
    variant is compared with fp32 PyTorch on the evaluation texts; one that loses more than
    --max-accuracy-drop fails the gate and is never deployed. MODEL_DIR defaults to the
    spec's model, else the embedded all-MiniLM-L6-v2.

    \b
        tritonkit optimize ./all-MiniLM-L6-v2 -o variants
        tritonkit optimize ./sentiment --task text-classification --eval-file eval.jsonl
        tritonkit optimize --variants int8-static --calibration-file texts.txt \\
            --calibration-method entropy
    """
    from tritonkit.pipeline.optimize import optimize as run_optimize

    offline()
    spec = _spec(model_dir, spec_file, values)
    with console.status("optimizing") as status:
        variants = run_optimize(spec, output, status.update)
    print_variants(variants)
    failed = [v.name for v in variants if not v.passed]
    summary = f"{len(variants) - len(failed)} of {len(variants)} variants passed the gate"
    click.echo(f"wrote {output}: {summary}" + (f" (failed: {', '.join(failed)})" if failed else ""))


class _Bar:
    """BenchProgress on a rich progress bar."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("benchmark", total=None)

    def start(self, total: int) -> None:
        self.progress.update(self.task, total=total)

    def advance(self, label: str) -> None:
        self.progress.update(self.task, advance=1, description=label)


@click.command()
@click.argument("model_dir", type=PATH, required=False)
@click.option("-o", "--output", type=PATH, default="bench", show_default=True)
@click.option("--variants-dir", type=PATH, help="Built variants [default: OUTPUT/variants].")
@click.option("--rebuild", is_flag=True, help="Build the variants again even if they exist.")
@click.option("--sequence-length", "sequence_lengths", type=int, multiple=True, help="[128]")
@click.option("--batch-size", "batch_sizes", type=int, multiple=True, help="[1, 32]")
@click.option("--mode", "modes", type=click.Choice(["fixed", "real"]), multiple=True)
@click.option("--rounds", type=int, default=6, show_default=True)
@click.option("--round-seconds", type=float, default=0.6, show_default=True)
@click.option("--no-rss", is_flag=True, help="Skip the peak-RSS processes.")
@click.option(
    "--served",
    "served",
    multiple=True,
    metavar="[LABEL=]REPO",
    help="Serve REPO (repeatable; the first is the one under test) and compare.",
)
@click.option(
    "--clients", type=int, multiple=True, help="--served: closed-loop clients [1, 4, 16]."
)
@click.option("--seconds", type=float, default=8.0, show_default=True, help="--served: per run.")
@click.option("--repeats", type=int, default=2, show_default=True, help="--served: repetitions.")
@click.option("--texts", type=PATH, help="--served: texts [default: the shipped corpus].")
@click.option("--tritonserver", type=PATH, envvar="TRITONKIT_TRITONSERVER", help="See serve.")
@SPEC_OPTION
@add_flags(OPTIMIZE_FLAGS)
def bench(model_dir: Path | None, output: Path, spec_file: Path | None, **values: Any) -> None:
    """Benchmark PyTorch eager and every variant side by side, in one run.

    Interleaved rounds on the same machine: p50/p95/p99 latency, throughput, speed-up over
    PyTorch, achieved GFLOP/s, model size, peak RSS, accuracy and gate, threads. Modes: fixed
    (every sequence exactly N real tokens) and real (the evaluation texts, each batch padded
    to its longest). Writes OUTPUT/bench.md, bench.json and bench.png; builds the variants
    first unless --variants-dir (default OUTPUT/variants) holds them for this model and task.

    With --served: each REPO served by a local tritonserver (free ports) under closed-loop
    clients, its tokenizer model alone against in-process `tokenizers`, and ONNX Runtime
    in-process on the same model and texts; ratios printed. Writes OUTPUT/served.{md,json,png}.

    \b
        tritonkit bench          # all-MiniLM-L6-v2, seq 128, batch 1 and 32
        tritonkit bench ./my-model --batch-size 1 --batch-size 8 --sequence-length 64
        tritonkit bench --served default=repo --served tuned=repo-tuned -o out
    """
    from tritonkit.bench.report import markdown
    from tritonkit.pipeline.optimize import bench as run_bench

    offline()
    if values["served"]:
        _bench_served(output, values)
        return
    spec = _spec(model_dir, spec_file, values)
    config = _bench_config(spec, values)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as bar:
        run = run_bench(
            spec, output, config, variants_dir=values["variants_dir"], rebuild=values["rebuild"],
            progress=lambda m: bar.console.print(f"[dim]{m}[/]"), bar=_Bar(bar),
        )  # fmt: skip
    print_variants(run.variants)
    click.echo(markdown(run.result, run.measured))
    click.echo(f"machine: {run.cpu.model}, {run.cpu.cores} CPUs, flags {' '.join(run.cpu.flags)}")
    skipped = [v.name for v in run.variants if v.device != "cpu"]
    if skipped:
        click.echo(f"not benchmarked here (GPU variants): {', '.join(skipped)}")
    click.echo(f"generate --variant auto would deploy: {run.chosen}")
    click.echo(f"wrote {run.reports['markdown']}, {run.reports['json']}, {run.reports['plot']}")


def _bench_served(output: Path, values: dict[str, Any]) -> None:
    from tritonkit.bench.served import ServedConfig
    from tritonkit.bench.served_report import markdown
    from tritonkit.pipeline.bench_served import bench_served, parse_served

    clients = tuple(values["clients"]) or (1, 4, 16)
    config = ServedConfig(
        clients=clients, seconds=values["seconds"], repeats=values["repeats"],
        tokenizer_clients=max(clients), inprocess_seconds=values["seconds"],
    )  # fmt: skip
    with console.status("benchmarking the served deployments") as status:
        run = bench_served(
            [parse_served(v) for v in values["served"]], output, config,
            texts_file=values["texts"], tritonserver=values["tritonserver"], progress=status.update,
        )  # fmt: skip
    click.echo(markdown(run.bench, run.cpu))
    click.echo(f"wrote {run.reports['markdown']}, {run.reports['json']}, {run.reports['plot']}")


def _bench_config(spec: Any, values: dict[str, Any]) -> Any:
    from tritonkit.bench.run import BenchConfig
    from tritonkit.util.cpu import cpu_info

    return BenchConfig(
        sequence_lengths=values["sequence_lengths"] or (128,),
        batch_sizes=values["batch_sizes"] or (1, 32),
        modes=values["modes"] or ("fixed", "real"),
        threads=spec.optimize.threads or cpu_info().cores,
        rounds=values["rounds"],
        round_seconds=values["round_seconds"],
        measure_rss=not values["no_rss"],
    )


@click.command()
@click.argument("base_dir", type=PATH, required=False)
@click.option("--cache-dir", type=PATH, help="[default: ~/.cache/tritonkit/finetune]")
@click.option("--epochs", type=int, default=4, show_default=True)
@click.option("--max-steps", type=int, help="Stop after this many steps (quick runs).")
@click.option("--print-path", is_flag=True, help="Print only the model folder (for scripts).")
def finetune(
    base_dir: Path | None,
    cache_dir: Path | None,
    epochs: int,
    max_steps: int | None,
    print_path: bool,
) -> None:
    """Fine-tune the bundled MiniLM into a sentiment classifier (offline, cached).

    Trains on tritonkit's packaged sentiment set (300 sentences; 140 held out for
    evaluation) with fixed seeds, and prints the model folder and its evaluation accuracy.
    The folder is cached under a hash of the data, base model, parameters and versions: a
    second run returns it at once.

    \b
        tritonkit finetune
        tritonkit optimize "$(tritonkit finetune --print-path)" --task text-classification
    """
    from tritonkit.variants.finetune import FinetuneParams
    from tritonkit.variants.finetune import finetune as run_finetune

    offline()
    base = model_or_default(base_dir)
    params = FinetuneParams(epochs=epochs, max_steps=max_steps)
    with console.status("fine-tuning") as status:
        result = run_finetune(base, cache_dir, params, progress=lambda m: status.update(m))
    if print_path:
        click.echo(str(result.model_dir))
        return
    origin = "cached" if result.cached else f"trained in {result.record['seconds']}s"
    click.echo(
        f"{result.model_dir} ({origin}): eval accuracy {100 * result.eval_accuracy:.1f}% "
        f"on {Path(result.record['eval_file']).name}"
    )


COMMANDS = (optimize, bench, finetune)
