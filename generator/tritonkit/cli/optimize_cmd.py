"""`tritonkit optimize`, `bench` and `finetune`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tritonkit.cli.common import console, default_model_dir, offline
from tritonkit.spec import TASKS

_PATH = click.Path(path_type=Path)
VARIANT_NAMES = ("fp32", "fp32-fused", "fp16", "int8-dynamic", "int8-static")
F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS: list[Callable[[F], F]] = [
    click.option(
        "--task", type=click.Choice(TASKS), default="feature-extraction", show_default=True
    ),
    click.option("--device", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True),
    click.option(
        "--variants",
        "variant_names",
        type=click.Choice(VARIANT_NAMES),
        multiple=True,
        help="Repeatable [default: every variant for the device].",
    ),
    click.option("--calibration-file", type=_PATH, help="Texts: .txt lines, .jsonl or .csv."),
    click.option(
        "--calibration-method",
        type=click.Choice(["minmax", "entropy", "percentile"]),
        default="percentile",
        show_default=True,
    ),
    click.option(
        "--calibration-op-type",
        "calibration_op_types",
        multiple=True,
        help="int8-static operator types, repeatable [default: MatMul].",
    ),
    click.option(
        "--static-scope",
        type=click.Choice(["layernorm-inputs", "all"]),
        default="layernorm-inputs",
        show_default=True,
        help="int8-static: only the MatMuls that read a LayerNorm output, or all.",
    ),
    click.option(
        "--quantization-preset",
        type=click.Choice(["auto", "avx2", "avx512", "avx512-vnni", "arm64"]),
        default="auto",
        show_default=True,
        help="auto: from this CPU's flags.",
    ),
    click.option("--reduce-range/--no-reduce-range", default=None, help="[default: preset's]"),
    click.option(
        "--smooth-alpha", type=float, default=0.5, show_default=True, help="0: no SmoothQuant."
    ),
    click.option("--eval-file", type=_PATH, help="Texts, or .jsonl/.csv with text,label."),
    click.option("--max-accuracy-drop", type=float, help="Points [default: per task]."),
    click.option("--max-length", type=int, help="Evaluation truncation [default: 128]."),
    click.option("--threads", type=int, help="ONNX Runtime/PyTorch threads [default: all CPUs]."),
]


def optimize_flags(function: F) -> F:
    for option in reversed(_OPTIONS):
        function = option(function)
    return function


def options_from(flags: dict[str, Any]) -> Any:
    """OptimizeOptions from the shared flags."""
    from tritonkit.optimize import OptimizeOptions

    return OptimizeOptions(
        variants=tuple(flags["variant_names"]),
        device=flags["device"],
        calibration_file=flags["calibration_file"],
        calibration_method=flags["calibration_method"],
        calibration_op_types=tuple(flags["calibration_op_types"]) or ("MatMul",),
        static_scope=flags["static_scope"],
        quantization_preset=flags["quantization_preset"],
        reduce_range=flags["reduce_range"],
        smooth_alpha=flags["smooth_alpha"],
        eval_file=flags["eval_file"],
        max_accuracy_drop=flags["max_accuracy_drop"],
        max_length=flags["max_length"],
        threads=flags["threads"],
    )


_SHORT = {"EmbedLayerNormalization": "EmbedLN", "SkipLayerNormalization": "SkipLN"}


def print_variants(variants: Sequence[Any]) -> None:
    from tritonkit.accuracy import summary

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


def _build(model_dir: Path | None, output: Path, flags: dict[str, Any]) -> list[Any]:
    from tritonkit.optimize import build_variants

    offline()
    model = model_dir or Path(default_model_dir())
    with console.status("optimizing") as status:
        return build_variants(
            model,
            flags["task"],
            output,
            options_from(flags),
            progress=lambda message: status.update(message),
        )


@click.command()
@click.argument("model_dir", type=_PATH, required=False)
@click.option("-o", "--output", type=_PATH, default="variants", show_default=True)
@optimize_flags
def optimize(model_dir: Path | None, output: Path, **flags: Any) -> None:
    """Build the optimization variants of a model and gate each on accuracy.

    Variants: fp32 (plain export), fp32-fused (ONNX Runtime transformer fusions), fp16
    (GPU), int8-dynamic and int8-static (CPU). Each goes to OUTPUT/VARIANT/ with model.onnx
    and variant.json (how it was made, tool versions, CPU flags, accuracy figures). Every
    variant is compared with fp32 PyTorch on the evaluation texts; one that loses more than
    --max-accuracy-drop fails the gate and is never deployed. MODEL_DIR defaults to the
    embedded all-MiniLM-L6-v2.

    \b
        tritonkit optimize ./all-MiniLM-L6-v2 -o variants
        tritonkit optimize ./sentiment --task text-classification --eval-file eval.jsonl
        tritonkit optimize --variants int8-static --calibration-file texts.txt \\
            --calibration-method entropy
    """
    variants = _build(model_dir, output, flags)
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
@click.argument("model_dir", type=_PATH, required=False)
@click.option("-o", "--output", type=_PATH, default="bench", show_default=True)
@click.option("--variants-dir", type=_PATH, help="Built variants [default: OUTPUT/variants].")
@click.option("--rebuild", is_flag=True, help="Build the variants again even if they exist.")
@click.option("--sequence-length", "sequence_lengths", type=int, multiple=True, help="[128]")
@click.option("--batch-size", "batch_sizes", type=int, multiple=True, help="[1, 32]")
@click.option("--mode", "modes", type=click.Choice(["fixed", "real"]), multiple=True)
@click.option("--rounds", type=int, default=6, show_default=True)
@click.option("--round-seconds", type=float, default=0.6, show_default=True)
@click.option("--no-rss", is_flag=True, help="Skip the peak-RSS processes.")
@optimize_flags
def bench(
    model_dir: Path | None,
    output: Path,
    variants_dir: Path | None,
    rebuild: bool,
    sequence_lengths: tuple[int, ...],
    batch_sizes: tuple[int, ...],
    modes: tuple[str, ...],
    rounds: int,
    round_seconds: float,
    no_rss: bool,
    **flags: Any,
) -> None:
    """Benchmark PyTorch eager and every variant side by side, in one run.

    Interleaved rounds on the same machine: p50/p95/p99 latency, throughput, speed-up over
    PyTorch, achieved GFLOP/s, model size, peak RSS, accuracy and gate, threads. Modes: fixed
    (every sequence exactly N real tokens) and real (the evaluation texts, each batch padded
    to its longest). Writes OUTPUT/bench.md, bench.json and bench.png; builds the variants
    first unless --variants-dir (default OUTPUT/variants) holds them for this model and task.

    \b
        tritonkit bench          # all-MiniLM-L6-v2, seq 128, batch 1 and 32
        tritonkit bench ./my-model --batch-size 1 --batch-size 8 --sequence-length 64
    """
    from tritonkit import bench_report
    from tritonkit.accuracy import read_eval_set
    from tritonkit.bench import BenchConfig, run_bench, speed_score
    from tritonkit.cpu import cpu_info
    from tritonkit.export import inspect_model_dir
    from tritonkit.optimize import built_for, choose

    offline()
    model = model_dir or Path(default_model_dir())
    where = variants_dir or output / "variants"
    info = inspect_model_dir(model, flags["task"])
    names = options_from(flags).chosen_variants()
    kept = [built_for(where / n, info) for n in names]
    if rebuild or None in kept:
        variants = _build(model, where, flags)
    else:
        variants = [v for v in kept if v is not None]
    print_variants(variants)
    cpu = cpu_info()
    texts = read_eval_set(flags["eval_file"], info.task, info.labels).texts
    config = BenchConfig(
        sequence_lengths=sequence_lengths or (128,),
        batch_sizes=batch_sizes or (1, 32),
        modes=modes or ("fixed", "real"),
        threads=flags["threads"] or cpu.cores,
        rounds=rounds,
        round_seconds=round_seconds,
        measure_rss=not no_rss,
    )
    measured = [v for v in variants if v.device == "cpu"]
    skipped = [v.name for v in variants if v.device != "cpu"]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as bar:
        result = run_bench(info, measured, texts, config, _Bar(bar))
    chosen = choose(measured, "cpu", speed_score(result), "auto").name
    label = bench_report.model_label(info.model_dir)
    title = f"{label} ({info.task}) on {cpu.model}, {config.threads} threads"
    paths = bench_report.write(result, measured, cpu, output, title, chosen)
    click.echo(bench_report.markdown(result, measured))
    click.echo(f"machine: {cpu.model}, {cpu.cores} CPUs, flags {' '.join(cpu.flags)}")
    if skipped:
        click.echo(f"not benchmarked here (GPU variants): {', '.join(skipped)}")
    click.echo(f"generate --variant auto would deploy: {chosen}")
    click.echo(f"wrote {paths['markdown']}, {paths['json']}, {paths['plot']}")


@click.command()
@click.argument("base_dir", type=_PATH, required=False)
@click.option("--cache-dir", type=_PATH, help="[default: ~/.cache/tritonkit/finetune]")
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
    from tritonkit.finetune import FinetuneParams
    from tritonkit.finetune import finetune as run_finetune

    offline()
    base = base_dir or Path(default_model_dir())
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
