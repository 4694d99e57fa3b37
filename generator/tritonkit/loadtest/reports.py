"""The reports of a load test: summary.json, junit.xml and breakdown.png beside Locust's own.

Locust writes report.html and locust_*.csv itself (its percentiles are rounded to whole
milliseconds and include failed requests); the figures here are exact and count successful
requests only.
"""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tritonkit import __version__
from tritonkit.loadtest.metrics import ModelBreakdown

if TYPE_CHECKING:
    from tritonkit.loadtest.config import LoadtestResult

LOCUST_FILES = {
    "html": "report.html",
    "stats_csv": "locust_stats.csv",
    "history_csv": "locust_stats_history.csv",
    "failures_csv": "locust_failures.csv",
    "exceptions_csv": "locust_exceptions.csv",
    "log": "locust.log",
}
_STAGES = (
    ("queue", "avg_queue_us", "#9e9e9e"),
    ("compute input", "avg_compute_input_us", "#90caf9"),
    ("compute infer", "avg_compute_infer_us", "#1e88e5"),
    ("compute output", "avg_compute_output_us", "#0d47a1"),
)


def write_reports(result: LoadtestResult) -> dict[str, Path]:
    """Write summary.json, junit.xml and breakdown.png; every report path by kind."""
    output = result.config.output
    reports = {
        kind: output / name for kind, name in LOCUST_FILES.items() if (output / name).exists()
    }
    reports["junit"] = write_junit(result, output / "junit.xml")
    reports["plot"] = write_plot(result, output / "breakdown.png")
    reports["summary"] = output / "summary.json"
    summary = summary_dict(result, reports)
    reports["summary"].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return reports


def _config_dict(result: LoadtestResult) -> dict[str, Any]:
    config = dataclasses.asdict(result.config)
    config["texts"] = len(result.config.texts) or None  # a count: the texts can be many
    config["slos"] = [slo.expression for slo in result.config.slos]
    config["grpc_url"] = result.config.resolved_grpc_url
    config["metrics_url"] = result.config.resolved_metrics_url
    return {key: str(value) if isinstance(value, Path) else value for key, value in config.items()}


def summary_dict(result: LoadtestResult, reports: dict[str, Path]) -> dict[str, Any]:
    return {
        "tritonkit": __version__,
        "passed": result.passed,
        "complete": result.complete,
        "config": _config_dict(result),
        "client": {
            "duration_s": result.duration_s,
            "requests": result.requests,
            "failures": result.failures,
            "error_rate": result.error_rate,
            "rps": result.rps,
            "texts_per_s": result.texts_per_s,
            "p50_ms": result.p50_ms,
            "p95_ms": result.p95_ms,
            "p99_ms": result.p99_ms,
            "mean_ms": result.mean_ms,
            "max_ms": result.max_ms,
            "cpu_share": result.client_cpu_share,
            "checked": result.checked,
            "wrong": result.wrong,
            "wrong_examples": list(result.wrong_examples),
        },
        "server": {
            "source": result.breakdown_source,
            "models": [dataclasses.asdict(row) for row in result.breakdown],
        },
        "slos": [
            {
                "name": v.slo.name,
                "threshold": v.slo.threshold,
                "value": v.value,
                "passed": v.passed,
                "message": v.message,
            }
            for v in result.verdicts
        ],
        "warnings": list(result.warnings),
        "reports": {kind: str(path) for kind, path in reports.items()},
    }


def write_junit(result: LoadtestResult, path: Path) -> Path:
    """One testcase per SLO (a failure when missed) and one for the run itself."""
    name = f"tritonkit loadtest {result.config.name}"
    suite = ET.Element("testsuite", name=name, time=f"{result.duration_s:.3f}")
    run = ET.SubElement(suite, "testcase", classname=name, name="load test completed")
    if not result.complete:
        ET.SubElement(run, "error", message="Locust did not report results").text = "\n".join(
            result.warnings
        )
    for verdict in result.verdicts:
        case = ET.SubElement(suite, "testcase", classname=name, name=verdict.slo.expression)
        if not verdict.passed:
            ET.SubElement(case, "failure", message=f"SLO missed: {verdict.message}", type="SLO")
    ET.SubElement(suite, "system-out").text = client_line(result)
    suite.set("tests", str(1 + len(result.verdicts)))
    suite.set("failures", str(sum(not v.passed for v in result.verdicts)))
    suite.set("errors", "0" if result.complete else "1")
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def client_line(result: LoadtestResult) -> str:
    """One line: requests, rps, percentiles, client CPU."""
    cpu = result.client_cpu_share
    return (
        f"{result.requests} requests ({result.failures} failed) in {result.duration_s:.1f} s: "
        f"{result.rps:.1f} req/s, {result.texts_per_s:.1f} texts/s; p50 {_ms(result.p50_ms)} ms, "
        f"p95 {_ms(result.p95_ms)} ms, p99 {_ms(result.p99_ms)} ms; client CPU "
        f"{'-' if cpu is None else f'{cpu:.0%}'} of a core"
    )


def _stage_rows(rows: tuple[ModelBreakdown, ...]) -> tuple[ModelBreakdown, ...]:
    """The composing models (the ensemble's own figures are their sums), else the model."""
    return rows[1:] if len(rows) > 1 else rows


def write_plot(result: LoadtestResult, path: Path) -> Path:
    """Client percentiles (left) next to server time per request by model and stage (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (client, server) = plt.subplots(1, 2, figsize=(12, 4.2), width_ratios=(1, 2))
    names = ("p50", "p95", "p99")
    values = [result.p50_ms, result.p95_ms, result.p99_ms]
    bars = client.bar(names, [v or 0.0 for v in values], color="#43a047")
    client.bar_label(bars, labels=[_ms(v) for v in values])
    limits = {v.slo.name[:3]: v.slo.threshold for v in result.verdicts if v.slo.name[0] == "p"}
    for index, name in enumerate(names):
        if name in limits:
            client.hlines(limits[name], index - 0.4, index + 0.4, colors="#e53935", linestyles="--")
    client.margins(y=0.15)
    client.set_ylabel("ms")
    client.set_title(
        f"client ({result.config.protocol}, {result.rps:.0f} req/s, "
        f"batch {result.config.batch_size})"
    )
    rows = _stage_rows(result.breakdown)
    if rows:
        left = [0.0] * len(rows)
        labels = [row.model for row in rows]
        for stage, attribute, colour in _STAGES:
            widths = [(getattr(row, attribute) or 0.0) / 1e3 for row in rows]
            server.barh(labels, widths, left=left, color=colour, label=stage)
            left = [a + b for a, b in zip(left, widths, strict=True)]
        for y, (row, end) in enumerate(zip(rows, left, strict=True)):
            batch = "-" if row.avg_batch_size is None else f"{row.avg_batch_size:.2f}"
            server.text(end, y, f"  batch {batch}", va="center")
        ensemble = result.breakdown[0]
        if len(result.breakdown) > 1 and ensemble.avg_request_us is not None:
            total = ensemble.avg_request_us / 1e3
            server.axvline(total, color="#e53935", linestyle=":", label=f"{ensemble.model} total")
            left.append(total)
        server.invert_yaxis()
        server.set_xlim(0, max([*left, 0.001]) * 1.3)
        server.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncols=5, frameon=False)
        server.set_xlabel("ms per request (average)")
    else:
        server.text(0.5, 0.5, "no server-side breakdown", ha="center", transform=server.transAxes)
    server.set_title(f"server, by model ({result.breakdown_source})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
