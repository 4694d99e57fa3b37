"""`tritonkit tune`'s reports: tune.md, tune.json and tune.png (throughput vs p95)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from tritonkit.bench.inprocess import Baseline
from tritonkit.tune.search import TuneResult


def report_dict(
    result: TuneResult, users: int, baselines: Sequence[Baseline] = ()
) -> dict[str, object]:
    served = max((t.texts_per_s for t in result.trials if t.settings == result.chosen), default=0.0)
    data: dict[str, object] = {
        "users": users,
        "default": asdict(result.default),
        "chosen": asdict(result.chosen),
        "improved": result.improved,
        "written": result.written,
        "confirmation_texts_per_s": result.confirmation,
        "trials": [{**asdict(t), "settings": t.settings.describe()} for t in result.trials],
    }
    if baselines:
        data["inprocess"] = [{**asdict(b), "label": b.label} for b in baselines]
        best_ort = max((b.texts_per_s for b in baselines if b.engine == "onnxruntime"), default=0)
        best_torch = max((b.texts_per_s for b in baselines if b.engine == "pytorch"), default=0)
        data["served_vs_best_onnxruntime"] = served / best_ort if best_ort else None
        data["served_vs_best_pytorch"] = served / best_torch if best_torch else None
    return data


def write_reports(
    result: TuneResult, report_dir: Path, users: int, baselines: Sequence[Baseline] = ()
) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = report_dict(result, users, baselines)
    paths = {"json": report_dir / "tune.json", "markdown": report_dir / "tune.md"}
    paths["json"].write_text(json.dumps(data, indent=2), encoding="utf-8")
    lines = [
        f"# tritonkit tune ({users} concurrent users)",
        "",
        "| # | stage | texts/s | p95 ms | errors | model batch | padding | settings |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for index, t in enumerate(result.trials, 1):
        p95 = "-" if t.p95_ms is None else f"{t.p95_ms:.1f}"
        batch = "-" if t.model_batch is None else f"{t.model_batch:.2f}"
        lines.append(
            f"| {index} | {t.stage} | {t.texts_per_s:.1f} | {p95} | {t.error_rate:.1%} | "
            f"{batch} | {t.padding:.2f}x | {t.settings.describe()} |"
        )
    lines += ["", f"Chosen: {result.chosen.describe()}" + (" (written)" if result.written else "")]
    for b in baselines:
        lines.append(f"- in-process {b.label}: {b.texts_per_s:.1f} texts/s")
    for key in ("served_vs_best_onnxruntime", "served_vs_best_pytorch"):
        if data.get(key) is not None:
            lines.append(f"- {key.replace('_', ' ')}: {data[key]:.2f}x")
    paths["markdown"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    figure, axis = plt.subplots(figsize=(8, 5))
    for t in result.trials:
        if t.p95_ms is None:
            continue
        chosen = t.settings == result.chosen
        default = t.settings == result.default
        colour = "tab:green" if chosen else "tab:blue" if default else "tab:gray"
        axis.scatter(t.p95_ms, t.texts_per_s, color=colour, s=60 if chosen or default else 25)
    for label, colour in (("default", "tab:blue"), ("chosen", "tab:green"), ("trial", "tab:gray")):
        axis.scatter([], [], color=colour, label=label)
    axis.set_xlabel("p95 latency (ms)")
    axis.set_ylabel("throughput (texts/s)")
    axis.set_title(f"tritonkit tune: throughput vs p95 at {users} users")
    axis.legend()
    axis.grid(alpha=0.3)
    paths["plot"] = report_dir / "tune.png"
    figure.savefig(paths["plot"], dpi=110, bbox_inches="tight")
    plt.close(figure)
    return paths
