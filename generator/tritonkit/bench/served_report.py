"""`bench --served` outputs: a Markdown table to paste, a JSON record, a PNG plot.

Figures are medians over the repetitions (the spread is in the JSON). The first deployment is
the one under test: every other one is compared with it at each client count (the bar of issue
13 applies to the second, tune's best), and so are the in-process runs (the serving overhead)
and, for its tokenizer, in-process `tokenizers`.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tritonkit.bench.served import Row, ServedBench
from tritonkit.util.cpu import CpuInfo, cpu_identity

# The bars of issue 13: the default layout against tune's best, the tokenizer alone.
LAYOUT_BAR = 0.8
TOKENIZER_BAR = 0.7


def _median(values: Sequence[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(statistics.median(finite)) if finite else math.nan


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _times(ratio: float) -> str:
    return f"{ratio:.2f}x" if math.isfinite(ratio) else "-"


def summarize(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """One entry per (label, kind, clients): medians over the repetitions, and the spread."""
    groups: dict[tuple[str, str, int], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.label, row.kind, row.clients), []).append(row)
    summary = []
    for (label, kind, clients), group in groups.items():
        rates = [r.result.texts_per_s for r in group]
        batches = [r.model_batch for r in group if r.model_batch is not None]
        summary.append({
            "label": label, "kind": kind, "clients": clients,
            "texts_per_s": _median(rates), "min": min(rates), "max": max(rates),
            "p50_ms": _median([r.result.percentile(50) for r in group]),
            "p95_ms": _median([r.result.percentile(95) for r in group]),
            "p99_ms": _median([r.result.percentile(99) for r in group]),
            "errors": sum(r.result.errors for r in group),
            "first_error": next((r.result.first_error for r in group if r.result.errors), None),
            "model_batch": _median(batches) if batches else None,
            "client_cpu": _median([r.result.client_cpu_share for r in group]),
            "repeats": len(group),
        })  # fmt: skip
    return summary


def inprocess_summary(bench: ServedBench) -> dict[str, float]:
    """Median texts/s of each in-process ONNX Runtime configuration."""
    groups: dict[str, list[float]] = {}
    for baseline in bench.baselines:
        groups.setdefault(baseline.label, []).append(baseline.texts_per_s)
    return {label: _median(rates) for label, rates in groups.items()}


def _rate(summary: list[dict[str, Any]], label: str, kind: str, clients: int) -> float:
    found = [s for s in summary if (s["label"], s["kind"], s["clients"]) == (label, kind, clients)]
    return float(found[0]["texts_per_s"]) if found else math.nan


def checks(bench: ServedBench, summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The comparisons the issue's bars are judged on, as data (Markdown renders them)."""
    first = bench.deployments[0].label
    clients = bench.config.clients
    found: list[dict[str, Any]] = []
    for index, other in enumerate(bench.deployments[1:]):
        ratios = [_rate(summary, first, "served", c) / _rate(summary, other.label, "served", c)
                  for c in clients]  # fmt: skip
        bar = LAYOUT_BAR if index == 0 else None  # the second deployment is tune's best
        found.append({
            "check": f"{first} / {other.label}", "clients": list(clients), "ratios": ratios,
            "bar": bar, "met": None if bar is None else all(r >= bar for r in ratios),
        })  # fmt: skip
    if 1 in clients and 4 in clients:
        one, four = (_rate(summary, first, "served", c) for c in (1, 4))
        found.append({
            "check": f"{first}: 1 -> 4 clients", "clients": [1, 4], "ratios": [four / one],
            "bar": 1.0, "met": four >= one,
        })  # fmt: skip
    n = bench.config.tokenizer_clients
    tokenizer = _rate(summary, first, "tokenizer", n)
    local = _rate(summary, "in-process tokenizers", "in-process tokenizer", n)
    ratio = tokenizer / local
    found.append({
        "check": "served tokenizer / in-process tokenizers", "clients": [n], "ratios": [ratio],
        "bar": TOKENIZER_BAR, "met": ratio >= TOKENIZER_BAR,
    })  # fmt: skip
    return found


def _served_table(bench: ServedBench, summary: list[dict[str, Any]]) -> list[str]:
    first = bench.deployments[0].label
    inprocess = inprocess_summary(bench)
    best_single = max(
        (v for k, v in inprocess.items() if k.endswith("batching none")), default=math.nan
    )
    lines = [
        f"| deployment | clients | texts/s (min-max) | p50 ms | p95 ms | p99 ms | ONNX batch "
        f"| vs {first} | vs in-process, a text per call |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in (s for s in summary if s["kind"] == "served"):
        ratio = s["texts_per_s"] / _rate(summary, first, "served", s["clients"])
        overhead = s["texts_per_s"] / best_single
        lines.append(
            f"| {s['label']} | {s['clients']} | {_fmt(s['texts_per_s'])} ({_fmt(s['min'])}-"
            f"{_fmt(s['max'])}) | {_fmt(s['p50_ms'])} | {_fmt(s['p95_ms'])} | {_fmt(s['p99_ms'])} "
            f"| {_fmt(s['model_batch'], 2)} | {_times(ratio)} | {_times(overhead)} |"
        )
    for label, rate in inprocess.items():
        lines.append(f"| in-process {label} | - | {_fmt(rate)} | | | | | | |")
    return lines


def markdown(bench: ServedBench, cpu: CpuInfo) -> str:
    summary = summarize(bench.rows)
    identity = cpu_identity()
    numbers = (
        f", family {identity['family']} model {identity['model']}" if "family" in identity else ""
    )
    lines = [
        f"Machine: {cpu.model} ({cpu.machine}{numbers}), {cpu.cores} CPUs, flags "
        f"{', '.join(cpu.flags)}; load average {_load(bench.load_before)} before, "
        f"{_load(bench.load_after)} after.",
        "",
        "| deployment | layout |",
        "|---|---|",
        *(f"| {d.label} | {d.describe} |" for d in bench.deployments),
        "",
        *_served_table(bench, summary),
        "",
        "| tokenizer | clients | texts/s (min-max) | p50 ms | p99 ms | executed batch |",
        "|---|---|---|---|---|---|",
    ]
    for s in (s for s in summary if s["kind"] != "served"):
        name = "served (model called directly)" if s["kind"] == "tokenizer" else s["label"]
        lines.append(
            f"| {name} | {s['clients']} | {_fmt(s['texts_per_s'])} ({_fmt(s['min'])}-"
            f"{_fmt(s['max'])}) | {_fmt(s['p50_ms'], 2)} | {_fmt(s['p99_ms'], 2)} "
            f"| {_fmt(s['model_batch'], 2)} |"
        )
    lines += ["", "| check | clients | ratio | bar | |", "|---|---|---|---|---|"]
    for c in checks(bench, summary):
        ratios = ", ".join(f"{r:.2f}" for r in c["ratios"])
        clients = ", ".join(map(str, c["clients"]))
        verdict = {True: "met", False: "**not met**", None: ""}[c["met"]]
        bar = "-" if c["bar"] is None else f">= {c['bar']}"
        lines.append(f"| {c['check']} | {clients} | {ratios} | {bar} | {verdict} |")
    errors = [s for s in summary if s["errors"]]
    for s in errors:
        lines.append(f"\n{s['label']} ({s['kind']}, {s['clients']} clients): {s['errors']} "
                     f"errors, first: {s['first_error']}")  # fmt: skip
    return "\n".join(lines) + "\n"


def _load(load: Sequence[float]) -> str:
    return " / ".join(f"{x:.2f}" for x in load)


def to_json(bench: ServedBench, cpu: CpuInfo) -> dict[str, Any]:
    summary = summarize(bench.rows)
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu.as_dict() | {"identity": cpu_identity()},
        "load_average": {"before": list(bench.load_before), "after": list(bench.load_after)},
        "config": asdict(bench.config),
        "deployments": [
            {"label": d.label, "repo": str(d.repo), "layout": d.layout, "describe": d.describe}
            for d in bench.deployments
        ],
        "summary": summary,
        "inprocess": inprocess_summary(bench),
        "checks": checks(bench, summary),
        "rows": [_row(r) for r in bench.rows],
        "baselines": [asdict(b) for b in bench.baselines],
    }


def _row(row: Row) -> dict[str, Any]:
    result = row.result
    return {
        "label": row.label, "kind": row.kind, "clients": row.clients, "repeat": row.repeat,
        "texts_per_s": result.texts_per_s, "p50_ms": result.percentile(50),
        "p99_ms": result.percentile(99), "errors": result.errors, "model_batch": row.model_batch,
        "client_cpu": result.client_cpu_share,
    }  # fmt: skip


def plot(bench: ServedBench, path: Path, title: str) -> None:
    """Throughput against clients per deployment (in-process as lines), and the tokenizer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarize(bench.rows)
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 5), width_ratios=(3, 1))
    for deployment in bench.deployments:
        points = sorted((s["clients"], s["texts_per_s"], s["min"], s["max"]) for s in summary
                        if s["label"] == deployment.label and s["kind"] == "served")  # fmt: skip
        xs, ys, lows, highs = zip(*points, strict=True)
        errors = [[y - lo for y, lo in zip(ys, lows, strict=True)],
                  [hi - y for y, hi in zip(ys, highs, strict=True)]]  # fmt: skip
        left.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label=deployment.label)
    styles = ("--", ":", "-.", (0, (5, 5)))
    for index, (label, rate) in enumerate(inprocess_summary(bench).items()):
        style = styles[index % len(styles)]
        left.axhline(
            rate, color="gray", linestyle=style, linewidth=1.2, label=f"in-process {label}"
        )
    left.set_xscale("log", base=2)
    left.set_xticks(list(bench.config.clients), [str(c) for c in bench.config.clients])
    left.set_xlabel("clients (closed loop, one text per request)")
    left.set_ylabel("texts/s")
    left.grid(alpha=0.3)
    left.legend(fontsize="small")
    tokenizer = [s for s in summary if s["kind"] != "served"]
    names = ["served" if s["kind"] == "tokenizer" else "in-process" for s in tokenizer]
    right.bar(names, [s["texts_per_s"] for s in tokenizer], color=["C0", "C7"][: len(tokenizer)])
    right.set_title(f"tokenizer, {bench.config.tokenizer_clients} clients")
    right.set_ylabel("texts/s")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(bench: ServedBench, cpu: CpuInfo, out_dir: Path, title: str) -> dict[str, Path]:
    """served.md, served.json and served.png in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / f"served.{ext}" for name, ext in
             (("markdown", "md"), ("json", "json"), ("plot", "png"))}  # fmt: skip
    paths["markdown"].write_text(markdown(bench, cpu), encoding="utf-8")
    data = json.dumps(to_json(bench, cpu), indent=2, default=str) + "\n"
    paths["json"].write_text(data, encoding="utf-8")
    plot(bench, paths["plot"], title)
    return paths
