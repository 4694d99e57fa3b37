"""Sections for the commands that talk to a running server: serve, check, load test, tune."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import field_validator

from tritonkit.spec.durations import DURATION_HINT, duration_seconds
from tritonkit.spec.fields import Section, option
from tritonkit.spec.slo import SloSpec
from tritonkit.tasks import Precision

DEFAULT_NAME = "minilm"
_HOST_PORT = re.compile(r"[A-Za-z0-9_.\-\[\]:]+:\d{1,5}")


def _duration(value: Any) -> str:
    text = str(value)
    if isinstance(value, bool) or duration_seconds(text) is None:
        raise ValueError(DURATION_HINT)
    return text


def _host_port(value: str | None) -> str | None:
    if value is not None and not _HOST_PORT.fullmatch(value):
        raise ValueError(f"'{value}': expected HOST:PORT, e.g. 127.0.0.1:8000")
    if value is not None and not 0 < int(value.rpartition(":")[2]) < 65536:
        raise ValueError(f"'{value}': the port must be 1..65535")
    return value


class ServeSpec(Section):
    """`tritonkit serve`: where the local tritonserver listens (always 127.0.0.1)."""

    http_port: int = option(8000, "HTTP port.", flag="--http-port", ge=1, le=65535)
    grpc_port: int = option(8001, "gRPC port.", flag="--grpc-port", ge=1, le=65535)
    metrics_port: int = option(8002, "Metrics port.", flag="--metrics-port", ge=1, le=65535)
    timeout: float = option(180.0, "Seconds to wait until ready.", flag="--timeout", gt=0)
    watch_interval: float = option(
        2.0, "Seconds between health checks while serving: a canary inference per model and its "
        "Python stubs; a dead stub's model is reloaded. 0: check only that tritonserver runs.",
        flag="--watch-interval", ge=0,
    )  # fmt: skip


class CheckSpec(Section):
    """What `tritonkit check` sends and how close it must be to the PyTorch reference."""

    name: str = option(DEFAULT_NAME, "Ensemble name.", flag="--name")
    url: str = option("127.0.0.1:8000", "HTTP HOST:PORT.", flag="--url")
    grpc_url: str | None = option(None, "gRPC HOST:PORT [default: HTTP port + 1].",
                                  flag="--grpc-url")  # fmt: skip
    texts: tuple[str, ...] = option((), "Texts to check besides the built-in ones.")
    file: Path | None = option(None, "Texts: one per line, or .jsonl {text}.", flag="--texts")
    min_cosine: float | None = option(
        None, "Embeddings floor [default: the precision's].", flag="--min-cosine", gt=0, le=1
    )
    max_prob_diff: float | None = option(
        None, "Classification bound [default: the precision's].", flag="--max-prob-diff", gt=0
    )
    precision: Precision | None = option(
        None, "Tolerances for a model served at this precision (fp32 0.999/1e-3, fp16 "
        "0.995/1e-2, int8 0.98/5e-2) [default: the deployed variant's]; explicit bounds win.",
        flag="--precision",
    )  # fmt: skip

    _urls = field_validator("url", "grpc_url")(_host_port)


class LoadtestSpec(Section):
    """Every `tritonkit loadtest` flag as a key (`--slo` as the `slo:` mapping)."""

    url: str = option("127.0.0.1:8000", "Triton HTTP HOST:PORT.", flag="--url")
    grpc_url: str | None = option(None, "gRPC HOST:PORT [default: the --url port + 1].",
                                  flag="--grpc-url")  # fmt: skip
    metrics_url: str | None = option(
        None, "Metrics HOST:PORT [default: the --url host, port 8002].", flag="--metrics-url"
    )
    name: str = option(DEFAULT_NAME, "The deployment's ensemble.", flag="--name")
    protocol: Literal["http", "grpc"] = option("http", "Protocol.", flag="--protocol")
    texts: Path | None = option(
        None, "One text per line, or .jsonl [default: shipped corpus].", flag="--texts"
    )
    batch_size: int = option(1, "Texts per request.", flag="--batch-size", ge=1, le=4096)
    shape: Literal["users", "step", "rate"] = option("users", "Shape of the load.", flag="--shape")
    users: int = option(4, "Concurrent users (step: the maximum).", flag="--users", short="-u",
                        ge=1, le=10_000)  # fmt: skip
    spawn_rate: float | None = option(None, "Users started per second [default: all].",
                                      flag="--spawn-rate", short="-r", gt=0)  # fmt: skip
    duration: str = option("20s", "Run time, e.g. 20s, 2m, 1m30s.", flag="--duration",
                           short="-t")  # fmt: skip
    rate: float | None = option(None, "Requests per second (--shape rate), over all users.",
                                flag="--rate", gt=0)  # fmt: skip
    step_users: int | None = option(None, "Users added per step [default: users / 4].",
                                    flag="--step-users", ge=1)  # fmt: skip
    step_time: str = option("10s", "Time per step (--shape step).", flag="--step-time")
    check_fraction: float = option(0.0, "Share of requests checked.", flag="--check-fraction",
                                   ge=0, le=1)  # fmt: skip
    model_dir: Path | None = option(None, "Hugging Face folder for the checked references.",
                                    flag="--model-dir")  # fmt: skip
    output: Path | None = option(
        None, "Reports folder [default: loadtest-report].", flag="--output", short="-o"
    )
    slo: SloSpec = SloSpec()

    _durations = field_validator("duration", "step_time", mode="before")(_duration)
    _urls = field_validator("url", "grpc_url", "metrics_url")(_host_port)


class TuneSpec(Section):
    """`tritonkit tune`: the load each trial runs and the budget of the sweep."""

    texts: Path | None = option(None, "Corpus [default: the shipped one].", flag="--texts")
    users: int = option(16, "Concurrency.", flag="--users", ge=1, le=10_000)
    budget: str = option("5m", "Time budget for the sweep.", flag="--budget")
    trial: str = option("12s", "Load per trial.", flag="--trial")
    p95_ms: float | None = option(None, "Maximise throughput under this p95 bound.",
                                  flag="--p95-ms", gt=0)  # fmt: skip
    report: Path | None = option(None, "Reports folder [default: tune-report].", flag="--report")
    baselines: bool = option(
        False, "Also measure in-process ONNX Runtime and PyTorch on the same texts and report "
        "served/in-process ratios.", flag="--baselines",
    )  # fmt: skip
    name: str | None = option(None, "Ensemble [default: the repository's only one].",
                              flag="--name")  # fmt: skip
    baseline_seconds: float = option(10.0, "Seconds per baseline.", flag="--baseline-seconds",
                                     gt=0)  # fmt: skip

    _durations = field_validator("budget", "trial", mode="before")(_duration)


class KServeSpec(Section):
    """`tritonkit kserve`: a KServe InferenceService (Triton runtime) for this deployment."""

    storage_uri: str | None = option(
        None, "Where the generated repository was synced (s3://, gs://, pvc://...); required.",
        flag="--storage-uri",
    )  # fmt: skip
    image: str | None = option(
        None, "A Triton image with `tokenizers` (build helm/images/triton/Dockerfile); the stock "
        "runtime image lacks it; required.", flag="--image",
    )  # fmt: skip
    runtime: str = option("kserve-tritonserver", "The ClusterServingRuntime.", flag="--runtime")
    service_account: str | None = option(
        None, "Service account (storage credentials) [default: NAME-tritonkit].",
        flag="--service-account",
    )  # fmt: skip
    admin_key_secret: str | None = option(
        None, "Secret (key admin-key) for the restricted APIs [default: NAME-tritonkit-admin-key].",
        flag="--admin-key-secret",
    )  # fmt: skip
    min_replicas: int = option(1, "Minimum replicas.", flag="--min-replicas", ge=0, le=1000)
    max_replicas: int = option(4, "Maximum replicas.", flag="--max-replicas", ge=1, le=1000)
    cpu: str | None = option(
        None, "CPU request [default: target.cpus, the cores the repository's layout was "
        "generated for, else 2].", flag="--cpu",
    )  # fmt: skip
    memory: str = option("4Gi", "Memory request (the limit is twice it).", flag="--memory")

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        from tritonkit.spec.images import check_image_reference

        return value if value is None else check_image_reference(value)

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, value: str | None) -> str | None:
        # Kubernetes resource.Quantity (k8s.io/apimachinery/pkg/api/resource/quantity.go)
        if value is None:
            return value
        if not re.fullmatch(r"[+]?[0-9]+(\.[0-9]+)?([eE][0-9]+|[numkMGTPE]|[KMGTPE]i)?", value):
            raise ValueError(f"'{value}' is not a Kubernetes quantity, e.g. 2, 500m, 4Gi")
        return value
