"""Locust users for a tritonkit deployment: KServe v2 HTTP and gRPC (tritonclient.grpc).

`tritonkit loadtest` runs this file as `python -m locust -f locustfile.py --headless ...` and
passes everything else in a JSON file named by $TRITONKIT_LOADTEST_CONFIG (see README.md).
Each request sends `batch_size` texts drawn at random from the corpus, so text lengths follow
the corpus. A sampled fraction of requests may use texts whose PyTorch reference results were
computed beforehand; a wrong answer counts as a failure.

On exit the file writes exact per-request latencies and the client's CPU time, then makes sure
the process ends: gRPC under gevent can keep Locust from exiting.
"""

from __future__ import annotations

import json
import os
import random
import resource
import time
from array import array
from pathlib import Path
from typing import Any

import gevent.monkey
import numpy as np
from locust import FastHttpUser, User, constant, constant_throughput, events, task

# After Locust's monkey patching, before any channel: gRPC must yield to gevent, not block it.
from grpc.experimental import gevent as grpc_gevent  # isort: skip

grpc_gevent.init_gevent()

import shapes  # noqa: E402
import tritonclient.grpc as grpcclient  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

CONFIG: dict[str, Any] = json.loads(Path(os.environ["TRITONKIT_LOADTEST_CONFIG"]).read_text())
MODEL: str = CONFIG["model"]
TEXTS: list[str] = CONFIG["texts"]
BATCH: int = CONFIG["batch_size"]
PAYLOAD_OUTPUTS = [{"name": name} for name in CONFIG["outputs"]]

if CONFIG["shape"] == "step":
    Shape = shapes.step_ramp(CONFIG["step_users"], CONFIG["step_time_s"])
else:
    Shape = shapes.FixedUsers
# A fixed request rate: each user waits so that it sends rate / users requests per second.
WAIT = constant_throughput(CONFIG["rate"] / CONFIG["users"]) if CONFIG["rate"] else constant(0)


class _Check:
    """Sampled correctness: reference results of some corpus texts, compared as `check` does."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from tritonkit.tasks import Tolerance, get_task

        self.fraction: float = spec["fraction"]
        self.task: str = spec["task"]
        self.record = get_task(self.task)
        self.labels: list[str] = spec["labels"]
        self.texts: list[str] = spec["texts"]
        self.tolerance = Tolerance(spec["min_cosine"], spec["max_prob_diff"])
        with np.load(spec["references"]) as data:
            self.references = {key: data[key] for key in data.files}
        self.n_tokens = [int(n) for n in self.references.pop("n_tokens")]
        self.checked = 0
        self.wrong = 0
        self.examples: list[str] = []

    def judge(self, rows: list[int], served: dict[str, np.ndarray]) -> str | None:
        """None when every text matches its reference, else the failure message."""
        self.checked += 1
        for served_row, row in enumerate(rows):
            found = self.record.compare_rows(
                served,
                self.references,
                served_row,
                row,
                self.labels,
                self.tolerance,
                self.n_tokens[row],
            )
            if not found.ok:
                self.wrong += 1
                if len(self.examples) < 5:
                    self.examples.append(f"{self.texts[row][:60]!r}: {found.detail}")
                return f"wrong result vs the PyTorch reference ({self.task})"
        return None


CHECK = _Check(CONFIG["check"]) if CONFIG["check"] else None


def draw() -> tuple[list[int] | None, list[str]]:
    """(rows of CHECK's texts, or None for an unchecked request; the texts to send)."""
    if CHECK is not None and random.random() < CHECK.fraction:
        rows = random.choices(range(len(CHECK.texts)), k=BATCH)
        return rows, [CHECK.texts[row] for row in rows]
    return None, random.choices(TEXTS, k=BATCH)


class KServeHttpUser(FastHttpUser):
    """POST /v2/models/NAME/infer with a JSON body (the KServe v2 protocol)."""

    wait_time = WAIT
    host = f"http://{CONFIG['http_url']}"

    @task
    def infer(self) -> None:
        rows, texts = draw()
        body = {
            "inputs": [
                {
                    "name": CONFIG["input"],
                    "shape": [len(texts), 1],
                    "datatype": "BYTES",
                    "data": texts,
                }
            ],
            "outputs": PAYLOAD_OUTPUTS,
        }
        with self.client.post(
            f"/v2/models/{MODEL}/infer",
            data=json.dumps(body),
            headers={"Content-Type": "application/json"},
            name=MODEL,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {_error(response.text)}")
            elif rows is not None and CHECK is not None:
                outputs = json.loads(response.text)["outputs"]
                served = {o["name"]: np.reshape(o["data"], o["shape"]) for o in outputs}
                problem = CHECK.judge(rows, served)
                if problem:
                    response.failure(problem)


def _error(text: str | None) -> str:
    try:
        return str(json.loads(text or "")["error"])
    except (ValueError, KeyError, TypeError):
        return (text or "no response body")[:200]


class WrongResultError(Exception):
    """A served result outside the tolerance of its PyTorch reference."""


class TritonError(Exception):
    """A Triton error answer, with its message (Locust groups failures by the repr)."""


class TritonGrpcUser(User):
    """tritonclient.grpc `infer`, reported to Locust with its timing."""

    wait_time = WAIT

    def on_start(self) -> None:
        self.client = grpcclient.InferenceServerClient(CONFIG["grpc_url"])
        self.outputs = [grpcclient.InferRequestedOutput(name) for name in CONFIG["outputs"]]

    def on_stop(self) -> None:
        self.client.close()

    @task
    def infer(self) -> None:
        rows, texts = draw()
        data = np.array([[text.encode("utf-8")] for text in texts], dtype=np.object_)
        tensor = grpcclient.InferInput(CONFIG["input"], list(data.shape), "BYTES")
        tensor.set_data_from_numpy(data)
        start = time.perf_counter()
        exception: Exception | None = None
        length = 0
        try:
            result = self.client.infer(MODEL, [tensor], outputs=self.outputs)
            elapsed = time.perf_counter() - start
            length = result.get_response().ByteSize()
            if rows is not None and CHECK is not None:
                served = {name: result.as_numpy(name) for name in CONFIG["outputs"]}
                problem = CHECK.judge(rows, served)
                exception = WrongResultError(problem) if problem else None
        except InferenceServerException as e:
            elapsed = time.perf_counter() - start
            exception = TritonError(str(e))
        self.environment.events.request.fire(
            request_type="gRPC",
            name=MODEL,
            response_time=elapsed * 1000,
            response_length=length,
            exception=exception,
            context={},
        )


class _Run:
    """What the parent reads back: exact latencies, counts, the load window and CPU time."""

    latencies = array("d")
    failures = 0
    started = stopped = 0.0
    cpu_started = cpu_stopped = 0.0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread, gRPC's included
    return usage.ru_utime + usage.ru_stime


@events.request.add_listener
def _record(response_time: float, exception: BaseException | None, **_: Any) -> None:
    if exception is None:
        _Run.latencies.append(response_time)
    else:
        _Run.failures += 1


@events.test_start.add_listener
def _started(**_: Any) -> None:
    _Run.started, _Run.cpu_started = time.monotonic(), _cpu_seconds()


@events.test_stop.add_listener
def _stopped(**_: Any) -> None:
    _Run.stopped, _Run.cpu_stopped = time.monotonic(), _cpu_seconds()


@events.quit.add_listener
def _finish(exit_code: int, **_: Any) -> None:
    """Write the results, then end the process if Locust's own exit hangs."""
    with open(CONFIG["latencies"], "wb") as handle:
        _Run.latencies.tofile(handle)
    result = {
        "successes": len(_Run.latencies),
        "failures": _Run.failures,
        "window_s": max(_Run.stopped - _Run.started, 0.0),
        "cpu_s": max(_Run.cpu_stopped - _Run.cpu_started, 0.0),
        "checked": CHECK.checked if CHECK else 0,
        "wrong": CHECK.wrong if CHECK else 0,
        "wrong_examples": CHECK.examples if CHECK else [],
    }
    Path(CONFIG["result"]).write_text(json.dumps(result))
    _exit_later(exit_code, CONFIG["exit_grace_s"])


def _exit_later(code: int, grace_s: float) -> None:
    """A real OS thread (not a greenlet) that ends the process `grace_s` from now."""
    sleep = gevent.monkey.get_original("time", "sleep")

    def watchdog() -> None:
        sleep(grace_s)
        os.write(2, f"tritonkit: Locust still running {grace_s:g} s after quit: exiting\n".encode())
        os._exit(code)

    gevent.monkey.get_original("_thread", "start_new_thread")(watchdog, ())
