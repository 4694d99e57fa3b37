"""The benchmark's outputs: a Markdown table, a JSON file and a PNG plot."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tritonkit.bench.run import PYTORCH, BenchResult, Measurement, speed_score, speedups
from tritonkit.util.cpu import CpuInfo
from tritonkit.variants.build import Variant

HEADER = (
    "| mode | seq | batch | variant | p50 ms | p95 ms | p99 ms | seq/s | vs PyTorch | GFLOP/s "
    "| size MB | peak RSS MB | accuracy | gate | threads |"
)


def _fmt(value: float, digits: int = 1) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _accuracy_cell(variant: Variant | None) -> tuple[str, str]:
    if variant is None:
        return "reference", "-"
    figures = variant.accuracy.figures
    if "min_cosine" in figures:
        text = f"min cos {figures['min_cosine']:.4f}"
    elif "accuracy" in figures:
        text = f"acc {100 * figures['accuracy']:.1f}%"
    elif "top_label_agreement" in figures:
        text = f"top-1 agree {100 * figures['top_label_agreement']:.1f}%"
    else:
        text = f"token agree {100 * figures['token_label_agreement']:.2f}%"
    return text, "pass" if variant.passed else "**FAIL**"


def rows(result: BenchResult, variants: Sequence[Variant]) -> list[dict[str, Any]]:
    """One dict per measurement with every reported figure."""
    by_name = {v.name: v for v in variants}
    ratio = speedups(result)
    table = []
    for m in result.measurements:
        variant = by_name.get(m.runner)
        accuracy, verdict = _accuracy_cell(variant)
        gflops = (
            m.throughput * result.flops[m.sequence_length] / 1e9 if m.mode == "fixed" else math.nan
        )
        table.append(
            {
                "mode": m.mode,
                "sequence_length": m.sequence_length,
                "batch_size": m.batch_size,
                "variant": m.runner,
                "p50_ms": m.percentile(50),
                "p95_ms": m.percentile(95),
                "p99_ms": m.percentile(99),
                "throughput_seq_s": m.throughput,
                "speedup_vs_pytorch": ratio[(m.runner, m.mode, m.sequence_length, m.batch_size)],
                "gflop_s": gflops,
                "size_mb": result.sizes[m.runner] / 2**20,
                "peak_rss_mb": result.rss_mb.get(m.runner, math.nan),
                "accuracy": accuracy,
                "gate": verdict,
                "threads": result.config.threads,
                "iterations": len(m.latencies_ms),
                "mean_real_tokens_per_batch": m.tokens_per_batch,
            }
        )
    return table


def markdown(result: BenchResult, variants: Sequence[Variant]) -> str:
    lines = [HEADER, "|" + "---|" * HEADER.count(" | ") + "---|"]
    for row in rows(result, variants):
        lines.append(
            f"| {row['mode']} | {row['sequence_length']} | {row['batch_size']} | {row['variant']} "
            f"| {_fmt(row['p50_ms'], 2)} | {_fmt(row['p95_ms'], 2)} | {_fmt(row['p99_ms'], 2)} "
            f"| {_fmt(row['throughput_seq_s'])} | {_fmt(row['speedup_vs_pytorch'], 2)}x "
            f"| {_fmt(row['gflop_s'])} | {_fmt(row['size_mb'])} | {_fmt(row['peak_rss_mb'], 0)} "
            f"| {row['accuracy']} | {row['gate']} | {row['threads']} |"
        )
    return "\n".join(lines) + "\n"


def to_json(
    result: BenchResult, variants: Sequence[Variant], cpu: CpuInfo, chosen: str | None
) -> dict[str, Any]:
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu.as_dict(),
        "config": asdict(result.config),
        "seconds": round(result.seconds, 1),
        "speed_score": speed_score(result),
        "chosen": chosen,
        "rows": rows(result, variants),
        "latencies_ms": {
            f"{m.runner}/{m.mode}/{m.sequence_length}/{m.batch_size}": [
                round(x, 3) for x in m.latencies_ms
            ]
            for m in result.measurements
        },
        "accuracy": {v.name: v.accuracy.as_dict() for v in variants},
    }


def plot(result: BenchResult, path: Path, title: str) -> None:
    """p50 latency and throughput per variant, one group of bars per (mode, seq, batch)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(
        dict.fromkeys((m.mode, m.sequence_length, m.batch_size) for m in result.measurements)
    )
    runners = list(dict.fromkeys(m.runner for m in result.measurements))
    by_key: dict[tuple[str, str, int, int], Measurement] = {
        (m.runner, m.mode, m.sequence_length, m.batch_size): m for m in result.measurements
    }
    figure, axes = plt.subplots(2, 1, figsize=(max(8, 2.2 * len(cases)), 8))
    width = 0.8 / len(runners)
    for index, runner in enumerate(runners):
        xs = [i + index * width for i in range(len(cases))]
        latency = [by_key[(runner, *case)].percentile(50) for case in cases]
        throughput = [by_key[(runner, *case)].throughput for case in cases]
        hatch = "//" if runner == PYTORCH else None
        axes[0].bar(xs, latency, width, label=runner, hatch=hatch)
        axes[1].bar(xs, throughput, width, label=runner, hatch=hatch)
    labels = [f"{mode}\nseq {length}, batch {batch}" for mode, length, batch in cases]
    for axis, ylabel in zip(axes, ("p50 latency (ms, log)", "throughput (seq/s)"), strict=True):
        axis.set_xticks([i + 0.4 - width / 2 for i in range(len(cases))], labels)
        axis.set_ylabel(ylabel)
        axis.grid(axis="y", alpha=0.3)
    axes[0].set_yscale("log")
    handles, names = axes[0].get_legend_handles_labels()
    figure.legend(handles, names, loc="upper center", ncol=min(len(runners), 6), fontsize="small")
    figure.suptitle(title, y=0.995)
    figure.tight_layout(rect=(0, 0, 1, 0.94))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def model_label(model_dir: Path) -> str:
    """A readable name for a model folder (packages often name it just `model`)."""
    return model_dir.parent.name if model_dir.name in ("model", "models") else model_dir.name


def write(
    result: BenchResult,
    variants: Sequence[Variant],
    cpu: CpuInfo,
    out_dir: Path,
    title: str,
    chosen: str | None = None,
) -> dict[str, Path]:
    """bench.md, bench.json and bench.png in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": out_dir / "bench.md",
        "json": out_dir / "bench.json",
        "plot": out_dir / "bench.png",
    }
    paths["markdown"].write_text(markdown(result, variants), encoding="utf-8")
    data = to_json(result, variants, cpu, chosen)
    paths["json"].write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    plot(result, paths["plot"], title)
    return paths
