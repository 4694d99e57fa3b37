"""`tritonkit tune` against a real local tritonserver: trials, reports, the written result."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import tritonclient.http as httpclient

from tritonkit.errors import ServerError
from tritonkit.loadtest.config import LoadtestConfig
from tritonkit.loadtest.run import run_loadtest
from tritonkit.repository.pbtxt import EnsemblePlan, ModelPlan
from tritonkit.repository.plan import RepositoryPlan, plan_from_repository
from tritonkit.server.install import ServerInstall
from tritonkit.server.process import TritonServer, free_port
from tritonkit.tune.search import (
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
        plan: RepositoryPlan,
        texts: Sequence[str],
        users: int,
        trial_s: float,
        report_dir: Path,
        lengths: Sequence[int],
    ) -> None:
        self.server, self.plan, self.texts = server, plan, tuple(texts)
        self.name = plan.deployment.name
        self.users, self.trial_s, self.report_dir = users, trial_s, report_dir
        self.lengths, self.max_length = lengths, plan.deployment.tokenizer.max_length
        self.applied: Settings | None = None
        self.count = 0

    def _apply(self, settings: Settings) -> None:
        if settings == self.applied:
            return
        updated = apply_settings(self.plan, settings)
        plans: dict[str, ModelPlan | EnsemblePlan] = {m.name: m for m in updated.models}
        plans[updated.ensemble.name] = updated.ensemble
        client = httpclient.InferenceServerClient(self.server.http_url, network_timeout=300)
        try:
            for model in updated.deployment.model_names():
                client.load_model(
                    model, config=config_json(plans[model]), headers=self.server.admin_headers
                )
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
        model_rows = [row for row in result.breakdown if row.model == self.plan.deployment.model]
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
    name: str | None,
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
    """Sweep the deployment `name` of `repo` on a local server; write the confirmed best."""
    check_budget(budget_s, trial_s + TRIAL_OVERHEAD_S)
    plan = plan_from_repository(repo, name)
    lengths, max_length = corpus_lengths(repo, plan.deployment, texts)
    default = read_settings(plan)
    report_dir.mkdir(parents=True, exist_ok=True)
    ports = [free_port() for _ in range(3)]
    server = TritonServer(
        repo, install, http_port=ports[0], grpc_port=ports[1], metrics_port=ports[2]
    )
    progress("starting tritonserver (explicit model control)")
    server.start()
    try:
        trials = LiveTrials(server, plan, texts, users, trial_s, report_dir, lengths)
        cost = trial_s + TRIAL_OVERHEAD_S
        kind = plan.deployment.model_kind
        result = search(
            default, trials, lengths, max_length, budget_s, cost, p95_bound_ms, progress, kind
        )
    finally:
        server.stop()
    if write and result.improved:
        write_settings(repo, plan, result.chosen)
        result.written = True
    return result
