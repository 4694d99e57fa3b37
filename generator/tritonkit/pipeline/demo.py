"""`tritonkit demo`: the whole path on the embedded default model, as one library call."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tritonkit.check import BUILTIN_TEXTS, CheckReport, run_check
from tritonkit.errors import RepositoryError
from tritonkit.model.default import default_model_dir
from tritonkit.pipeline.generate import GenerateResult, generate
from tritonkit.repository.contract import RECORD_FILE
from tritonkit.repository.writer import is_placeholder
from tritonkit.server.install import find_server
from tritonkit.server.process import TritonServer, free_port
from tritonkit.spec import build_spec

Progress = Callable[[str], None]


@dataclass
class DemoResult:
    generated: GenerateResult
    report: CheckReport
    http_url: str
    grpc_url: str
    timings: dict[str, float] = field(default_factory=dict)


def run_demo(
    output: Path,
    tritonserver: Path | None = None,
    progress: Progress = lambda _: None,
    log: Progress = lambda _: None,
) -> DemoResult:
    """Export all-MiniLM-L6-v2, generate `output`, serve it on free ports, check it, stop.

    Replaces `output` only if tritonkit wrote it (or it is the committed placeholder)."""
    if output.exists() and not (output / RECORD_FILE).is_file() and not is_placeholder(output):
        raise RepositoryError(
            f"{output}: exists and was not written by tritonkit: choose another -o"
        )
    timings: dict[str, float] = {}
    total = time.perf_counter()
    model = default_model_dir()
    spec = build_spec(None, {"model": model, "name": "minilm", "output": output, "force": True})
    start = time.perf_counter()
    install = find_server(tritonserver, log=log)
    timings["server install (cached after first run)"] = time.perf_counter() - start
    progress("exporting all-MiniLM-L6-v2 and generating the repository")
    generated = generate(spec, progress=progress)
    timings["export + parity check"] = generated.timings.get("export", 0.0)
    timings["render + validate + write"] = generated.timings.get("repository", 0.0)
    ports = [free_port() for _ in range(3)]
    server = TritonServer(
        generated.output, install, http_port=ports[0], grpc_port=ports[1], metrics_port=ports[2]
    )
    start = time.perf_counter()
    progress("starting tritonserver")
    with server:
        timings["tritonserver start (ready)"] = time.perf_counter() - start
        start = time.perf_counter()
        progress("checking against the PyTorch reference")
        report = run_check(
            model, spec.name, server.http_url, server.grpc_url, BUILTIN_TEXTS,
            repository=generated.output, admin_key=server.admin_key,
        )  # fmt: skip
        timings["check (HTTP + gRPC, batched + single)"] = time.perf_counter() - start
    timings["total"] = time.perf_counter() - total
    return DemoResult(generated, report, server.http_url, server.grpc_url, timings)
