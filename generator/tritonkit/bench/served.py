"""The served deployment next to in-process runs of the same model and tokenizer, one run.

Each repository is served by its own local tritonserver on free ports (started together, idle
while another is measured). Rounds are interleaved: every repetition measures every deployment
at every client count, in a rotated order, so that noise from other processes hits all of them
alike. Then the tokenizer model alone (called directly on the server) against in-process
`tokenizers` doing the same work per request, and ONNX Runtime in-process on the same ONNX
file and texts (`bench.inprocess`, tokenization included).
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tritonkit.bench.client import Call, LoadResult, closed_loop, http_worker
from tritonkit.bench.inprocess import Baseline, measure_onnxruntime
from tritonkit.repository.backends.onnx import THREADS
from tritonkit.repository.contract import Deployment
from tritonkit.repository.pbtxt import ModelPlan, read_plan
from tritonkit.runtime.tokenizer import TextEncoder, encode_requests
from tritonkit.server.install import ServerInstall
from tritonkit.server.process import TritonServer, free_port

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ServedConfig:
    clients: tuple[int, ...] = (1, 4, 16)
    seconds: float = 8.0  # measured window per (deployment, clients, repetition)
    warmup_s: float = 1.5
    repeats: int = 2
    tokenizer_clients: int = 16
    inprocess_seconds: float = 8.0
    inprocess_batch: int = 16  # the equal-length batched in-process configuration


@dataclass(frozen=True)
class Served:
    """One repository to serve, its label in the reports and what it runs."""

    label: str
    repo: Path
    deployment: Deployment
    layout: dict[str, object]

    @property
    def describe(self) -> str:
        layout = self.layout
        threads = layout["threads"] or "default"
        batching = (
            f"batching {layout['queue_delay_us']}/{layout['tokenizer_queue_delay_us']} us"
            if layout["batching"]
            else "no batching"
        )
        buckets = ",".join(map(str, self.deployment.tokenizer.buckets)) or "none"
        return (
            f"{layout['model_instances']} x {threads} threads, {layout['tokenizer_instances']} "
            f"tokenizer, {batching}, max batch {layout['max_batch_size']}, buckets {buckets}"
        )


def served(label: str, repo: Path) -> Served:
    """The deployment in `repo` (its only ensemble) and its serving layout."""
    deployment = Deployment.from_repository(repo)
    model, tokenizer = (read_plan(repo / n / "config.pbtxt") for n in
                        (deployment.model, deployment.tokenizer_model))  # fmt: skip
    if not isinstance(model, ModelPlan) or not isinstance(tokenizer, ModelPlan):
        raise TypeError("a deployment's model and tokenizer are model configs")
    batching, tokenizer_batching = model.dynamic_batching, tokenizer.dynamic_batching
    layout: dict[str, object] = {
        "model_instances": model.instance_count,
        "threads": int(model.parameters.get(THREADS, "0") or 0),
        "tokenizer_instances": tokenizer.instance_count,
        "batching": batching is not None,
        "queue_delay_us": batching.max_queue_delay_us if batching else None,
        "tokenizer_queue_delay_us": (
            tokenizer_batching.max_queue_delay_us if tokenizer_batching else None
        ),
        "max_batch_size": model.max_batch_size,
        "buckets": list(deployment.tokenizer.buckets),
    }
    return Served(label, repo, deployment, layout)


@dataclass(frozen=True)
class Row:
    """One measurement: a served deployment, its tokenizer alone, or an in-process run."""

    label: str
    kind: str  # "served" | "tokenizer" | "in-process tokenizer"
    clients: int
    repeat: int
    result: LoadResult
    model_batch: float | None = None  # executed batch size: the ONNX model's, the tokenizer's


@dataclass
class ServedBench:
    config: ServedConfig
    deployments: list[Served]
    rows: list[Row] = field(default_factory=list)
    baselines: list[Baseline] = field(default_factory=list)
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)


def _counts(url: str, model: str) -> tuple[int, int]:
    """(inference_count, execution_count) of `model` from the statistics API."""
    with urllib.request.urlopen(f"http://{url}/v2/models/{model}/stats", timeout=10) as r:
        stats = json.loads(r.read())["model_stats"][0]
    return int(stats.get("inference_count", 0)), int(stats.get("execution_count", 0))


@contextmanager
def _servers(items: Sequence[Served], install: ServerInstall) -> Iterator[list[TritonServer]]:
    with ExitStack() as stack:
        servers = []
        for item in items:
            server = TritonServer(
                item.repo, install,
                http_port=free_port(), grpc_port=free_port(), metrics_port=free_port(),
            )  # fmt: skip
            stack.enter_context(server)
            servers.append(server)
        yield servers


def _measure(
    server: TritonServer, target: str, batched: str, texts: Sequence[str], clients: int,
    config: ServedConfig,
) -> tuple[LoadResult, float | None]:  # fmt: skip
    """Closed-loop load on model `target`; the executed batch size of model `batched`."""
    before = _counts(server.http_url, batched)
    make = http_worker(server.http_url, target, texts)
    result = closed_loop(make, len(texts), clients, config.seconds, config.warmup_s)
    after = _counts(server.http_url, batched)
    executions = after[1] - before[1]
    return result, (after[0] - before[0]) / executions if executions else None


def _tokenizer_rows(
    server: TritonServer, item: Served, texts: Sequence[str], config: ServedConfig, repeat: int
) -> list[Row]:
    """The served tokenizer alone, then in-process `tokenizers` doing the same per request."""
    clients, name = config.tokenizer_clients, item.deployment.tokenizer_model
    served_result, batch = _measure(server, name, name, texts, clients, config)
    encoder = TextEncoder(str(item.deployment.tokenizer_file(item.repo)), item.deployment.tokenizer)
    requests = [np.array([[t.encode("utf-8")]], dtype=np.object_) for t in texts]

    def make_local() -> Call:
        def call(index: int) -> None:
            (result,) = encode_requests(encoder, [requests[index % len(requests)]])
            if isinstance(result, Exception):
                raise result

        return call

    local = closed_loop(make_local, len(texts), clients, config.seconds, config.warmup_s)
    return [
        Row(item.label, "tokenizer", clients, repeat, served_result, batch),
        Row("in-process tokenizers", "in-process tokenizer", clients, repeat, local),
    ]


def run_served(
    items: Sequence[Served],
    install: ServerInstall,
    texts: Sequence[str],
    config: ServedConfig,
    progress: Progress = lambda _: None,
) -> ServedBench:
    """Every deployment at every client count, the tokenizer rows, then in-process ORT."""
    bench = ServedBench(config, list(items), load_before=os.getloadavg())
    progress(f"starting {len(items)} tritonserver(s)")
    with _servers(items, install) as servers:
        pairs = list(zip(servers, items, strict=True))
        for repeat in range(config.repeats):
            shift = repeat % len(pairs)
            for server, item in pairs[shift:] + pairs[:shift]:
                for clients in config.clients:
                    deployment = item.deployment
                    result, batch = _measure(
                        server, deployment.name, deployment.model, texts, clients, config
                    )
                    progress(f"{item.label}, {clients} clients: {result.texts_per_s:.1f}/s")
                    bench.rows.append(Row(item.label, "served", clients, repeat, result, batch))
            bench.rows += _tokenizer_rows(servers[0], items[0], texts, config, repeat)
            progress(f"tokenizer rows, repetition {repeat + 1}")
    bench.baselines = _inprocess(items[0], texts, config, progress)
    bench.load_after = os.getloadavg()
    return bench


def _inprocess(
    item: Served, texts: Sequence[str], config: ServedConfig, progress: Progress
) -> list[Baseline]:
    """ONNX Runtime in-process on the first deployment's model: a text per call with the
    cores as workers or as threads, and equal-length batches."""
    if item.deployment.model_kind != "onnx":
        return []
    cores = len(os.sched_getaffinity(0))
    onnx = item.repo / item.deployment.model / "1" / "model.onnx"
    tokenizer_file = item.deployment.tokenizer_file(item.repo)
    grid = [(cores, 1, 1), (1, cores, 1), (cores, 1, config.inprocess_batch)]
    max_length = item.deployment.tokenizer.max_length
    results = []
    for workers, threads, batch in list(dict.fromkeys(grid)) * config.repeats:
        progress(f"in-process onnxruntime {workers}x{threads}, batch {batch}")
        options = {"workers": workers, "threads": threads, "batch_size": batch}
        seconds = config.inprocess_seconds
        results.append(
            measure_onnxruntime(onnx, tokenizer_file, texts, max_length, **options, seconds=seconds)
        )
    return results
