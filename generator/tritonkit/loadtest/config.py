"""One load test as data: its config (from the spec's loadtest section or flags) and its
result. `run` executes it; `target`, `reports` read these types."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tritonkit.errors import LoadtestInputError
from tritonkit.loadtest.metrics import ModelBreakdown
from tritonkit.spec import LoadtestSpec
from tritonkit.spec.durations import duration_seconds
from tritonkit.spec.slo import Slo, SloVerdict, merge_slos
from tritonkit.util.resources import data_dir
from tritonkit.util.texts import TextFileError, read_texts

Protocol = Literal["http", "grpc"]
Shape = Literal["users", "step", "rate"]
PROTOCOLS: tuple[Protocol, ...] = ("http", "grpc")
SHAPES: tuple[Shape, ...] = ("users", "step", "rate")
_HOST_PORT = re.compile(r"^[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")


@dataclass(frozen=True)
class LoadtestConfig:
    """One load test. URLs are HOST:PORT; durations in seconds."""

    url: str  # HTTP (KServe v2): preflight, statistics API, and the http user
    name: str  # the ensemble
    output: Path  # reports folder (created; known files are replaced)
    protocol: Protocol = "http"
    grpc_url: str | None = None  # default: the HTTP port + 1
    metrics_url: str | None = None  # default: the HTTP host, port 8002
    texts: tuple[str, ...] = ()  # the corpus; when empty, read from texts_file
    texts_file: Path | None = None  # default: the corpus shipped with tritonkit
    batch_size: int = 1  # texts per request
    shape: Shape = "users"
    users: int = 4
    spawn_rate: float | None = None  # users started per second; default: all in the first second
    duration_s: float = 20.0
    rate: float | None = None  # requests per second (shape "rate")
    step_users: int | None = None  # users added per step (shape "step"); default: users / 4
    step_time_s: float = 10.0
    check_fraction: float = 0.0  # share of requests checked against the PyTorch reference
    model_dir: Path | None = None  # the Hugging Face folder for the reference (check_fraction > 0)
    slos: tuple[Slo, ...] = ()
    timeout_s: float | None = None  # hard limit on Locust; default: duration + 60 s

    @property
    def resolved_grpc_url(self) -> str:
        host, port = split_url(self.url, "--url")
        return self.grpc_url or f"{host}:{port + 1}"

    @property
    def resolved_metrics_url(self) -> str:
        return self.metrics_url or f"{split_url(self.url, '--url')[0]}:8002"


@dataclass(frozen=True)
class LoadtestResult:
    """Client-side figures (successful requests only for latency and rps), the server-side
    breakdown per model, SLO verdicts and the reports written."""

    config: LoadtestConfig
    duration_s: float  # the measured load window
    requests: int  # sent and finished: successes + failures
    failures: int  # errors and wrong results
    error_rate: float | None  # None: no request finished
    rps: float  # successful requests per second
    texts_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    max_ms: float | None
    client_cpu_share: float | None  # CPU time of the Locust process / load window (1.0 = a core)
    checked: int  # requests compared with the reference
    wrong: int
    wrong_examples: tuple[str, ...]
    breakdown: tuple[ModelBreakdown, ...]  # the ensemble, then its steps
    breakdown_source: str  # "statistics API", "/metrics" or "unavailable"
    complete: bool  # Locust finished and reported its results
    warnings: tuple[str, ...]
    verdicts: tuple[SloVerdict, ...] = ()
    reports: dict[str, Path] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.complete and all(verdict.passed for verdict in self.verdicts)


def split_url(url: str, flag: str) -> tuple[str, int]:
    if not _HOST_PORT.match(url):
        raise LoadtestInputError(f"{flag} {url}: expected HOST:PORT, e.g. 127.0.0.1:8000")
    host, _, port = url.rpartition(":")
    return host, int(port)


def default_corpus() -> Path:
    return data_dir("loadtest") / "corpus" / "default.txt"


def load_corpus(path: Path | None) -> list[str]:
    """One text per line (or .jsonl with a "text" field); the shipped corpus by default."""
    try:
        return read_texts(path or default_corpus())
    except TextFileError as e:
        raise LoadtestInputError(str(e)) from None


def config_from_spec(spec: LoadtestSpec, slos: tuple[Slo, ...] = ()) -> LoadtestConfig:
    """The run's config; `slos` (from flags) replace the spec's objectives of the same name."""
    return LoadtestConfig(
        url=spec.url,
        name=spec.name,
        output=spec.output or Path("loadtest-report"),
        protocol=spec.protocol,
        grpc_url=spec.grpc_url,
        metrics_url=spec.metrics_url,
        texts_file=spec.texts,
        batch_size=spec.batch_size,
        shape=spec.shape,
        users=spec.users,
        spawn_rate=spec.spawn_rate,
        duration_s=duration_seconds(spec.duration) or 0.0,
        rate=spec.rate,
        step_users=spec.step_users,
        step_time_s=duration_seconds(spec.step_time) or 0.0,
        check_fraction=spec.check_fraction,
        model_dir=spec.model_dir,
        slos=merge_slos(spec.slo.slos(), slos),
    )
