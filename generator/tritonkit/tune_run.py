"""`tritonkit tune` against a real local tritonserver: trials, reports, the written result."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import tritonclient.http as httpclient

from tritonkit.errors import ServerError
from tritonkit.inprocess import Baseline
from tritonkit.loadtest import LoadtestConfig, run_loadtest
from tritonkit.pbtxt import read_config
from tritonkit.server import ServerInstall, TritonServer, free_port
from tritonkit.tune import (
    TRIAL_OVERHEAD_S,
    Settings,
    Trial,
    TuneResult,
    apply_settings,
    check_budget,
    config_json,
    corpus_lengths,
    padding_of,
    read_settings,
    search,
    write_settings,
)


class LiveTrials:
    """Applies settings to the running server and measures them with Locust."""

    def __init__(
        self,
        server: TritonServer,
        repo: Path,
        name: str,
        texts: Sequence[str],
        users: int,
        trial_s: float,
        report_dir: Path,
        lengths: Sequence[int],
        max_length: int,
    ) -> None:
        self.server, self.name, self.texts = server, name, tuple(texts)
        self.users, self.trial_s, self.report_dir = users, trial_s, report_dir
        self.lengths, self.max_length = lengths, max_length
        models = (name, f"{name}_tokenizer", f"{name}_onnx")
        self.configs = {model: read_config(repo / model / "config.pbtxt") for model in models}
        self.applied: Settings | None = None
        self.count = 0

    def _apply(self, settings: Settings) -> None:
        if settings == self.applied:
            return
        updated = apply_settings(self.configs, self.name, settings)
        client = httpclient.InferenceServerClient(self.server.http_url, network_timeout=300)
        try:
            for model in (f"{self.name}_onnx", f"{self.name}_tokenizer", self.name):
                client.load_model(model, config=config_json(updated[model]))
        except Exception as e:
            raise ServerError(
                f"reloading {settings.describe()} failed: {e}\n{self.server.log_text()[-2000:]}"
            ) from None
        finally:
            client.close()
        self.applied = settings

    def __call__(self, settings: Settings, stage: str) -> Trial:
        self._apply(settings)
        self.count += 1
        result = run_loadtest(
            LoadtestConfig(
                url=self.server.http_url,
                name=self.name,
                output=self.report_dir / "trials" / f"{self.count:02d}-{stage.replace(' ', '-')}",
                metrics_url=self.server.metrics_url,
                texts=self.texts,
                users=self.users,
                duration_s=self.trial_s,
            )
        )
        model_rows = [row for row in result.breakdown if row.model == f"{self.name}_onnx"]
        return Trial(
            settings=settings,
            stage=stage,
            texts_per_s=result.texts_per_s,
            p95_ms=result.p95_ms,
            error_rate=result.error_rate or 0.0,
            model_batch=model_rows[0].avg_batch_size if model_rows else None,
            padding=padding_of(settings, self.lengths, self.max_length),
        )


def run_tune(
    repo: Path,
    name: str,
    install: ServerInstall,
    texts: Sequence[str],
    *,
    users: int,
    trial_s: float,
    budget_s: float,
    report_dir: Path,
    p95_bound_ms: float | None = None,
    write: bool = True,
    progress: Callable[[str], None] = lambda _: None,
) -> TuneResult:
    check_budget(budget_s, trial_s + TRIAL_OVERHEAD_S)
    lengths, max_length = corpus_lengths(repo, name, texts)
    default = read_settings(repo, name)
    report_dir.mkdir(parents=True, exist_ok=True)
    ports = [free_port() for _ in range(3)]
    server = TritonServer(
        repo, install, http_port=ports[0], grpc_port=ports[1], metrics_port=ports[2]
    )
    progress("starting tritonserver (explicit model control)")
    server.start()
    try:
        trials = LiveTrials(
            server, repo, name, texts, users, trial_s, report_dir, lengths, max_length
        )
        result = search(
            default,
            trials,
            lengths,
            max_length,
            budget_s,
            trial_s + TRIAL_OVERHEAD_S,
            p95_bound_ms,
            progress,
        )
    finally:
        server.stop()
    if write and result.improved:
        write_settings(repo, name, result.chosen)
        result.written = True
    return result


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
