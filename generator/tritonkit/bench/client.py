"""A neutral closed-loop load: N clients, each sends one request and waits for its answer
before sending the next, for a fixed window after a warm-up. No think time, no rate control.

The same loop drives the served deployment (one keep-alive HTTP connection per client, KServe
v2 requests with binary input as tritonclient sends them, every output as binary so the client
never parses tensors) and in-process work
(a callable per client), so the two are measured the same way. Clients are threads: on the
small machines this runs on, the client's share of the CPU is recorded with the result.
"""

from __future__ import annotations

import json
import math
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Call = Callable[[int], None]  # one request for text number i; raises on failure


@dataclass(frozen=True)
class LoadResult:
    """What N clients completed inside the measured window."""

    clients: int
    window_s: float
    completed: int  # requests (one text each) finished inside the window
    errors: int
    latencies_ms: tuple[float, ...]
    client_cpu_share: float  # CPU time of this process / window (1.0 = one core)
    first_error: str | None = None

    @property
    def texts_per_s(self) -> float:
        return self.completed / self.window_s if self.window_s > 0 else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else math.nan


class RequestError(Exception):
    """A request the server answered with an error."""


def infer_request(text: str, input_name: str = "TEXT") -> tuple[bytes, int]:
    """A KServe v2 request for one text as tritonclient sends it: a JSON header, then the
    input as binary data (a 4-byte length and the UTF-8 bytes); every output asked for as
    binary. Returns the body and the length of its JSON header."""
    data = text.encode("utf-8")
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": input_name, "shape": [1, 1], "datatype": "BYTES",
                    "parameters": {"binary_data_size": 4 + len(data)},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode("utf-8")  # fmt: skip
    return header + struct.pack("<I", len(data)) + data, len(header)


class _Connection:
    """One keep-alive HTTP/1.1 connection that sends prepared requests and reads whole
    responses: a few microseconds of Python per request, so the client takes little of the
    CPU it shares with the server (http.client took about four times as much)."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self.sock: socket.socket | None = None
        self.buffer = b""

    def _socket(self) -> socket.socket:
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=60)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buffer = b""
        return self.sock

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        sock = self._socket()
        sock.sendall(request)
        while b"\r\n\r\n" not in self.buffer:
            self._receive(sock)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = next(
            (int(line.split(b":", 1)[1]) for line in lines[1:]
             if line.lower().startswith(b"content-length:")),
            0,
        )  # fmt: skip
        while len(self.buffer) < length:
            self._receive(sock)
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, body

    def _receive(self, sock: socket.socket) -> None:
        chunk = sock.recv(1 << 16)
        if not chunk:
            self.sock = None
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk


def http_worker(url: str, model: str, texts: Sequence[str]) -> Callable[[], Call]:
    """A factory of per-client callables that send text i to `model` at `url` (HOST:PORT)."""
    host, _, port = url.rpartition(":")
    requests = []
    for text in texts:
        body, header_length = infer_request(text)
        head = (
            f"POST /v2/models/{model}/infer HTTP/1.1\r\nHost: {url}\r\n"
            f"Inference-Header-Content-Length: {header_length}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        requests.append(head.encode("ascii") + body)

    def make() -> Call:
        connection = _Connection(host, int(port))

        def call(index: int) -> None:
            status, body = connection.exchange(requests[index % len(requests)])
            if status != 200:
                raise RequestError(f"HTTP {status}: {body[:200].decode(errors='replace')}")

        return call

    return make


def closed_loop(
    make_call: Callable[[], Call],
    count: int,
    clients: int,
    seconds: float,
    warmup_s: float = 1.0,
) -> LoadResult:
    """`clients` threads, each calling its own `make_call()` on texts 0..count-1 (each client
    starting elsewhere in the cycle) back to back; counts what finishes in the window."""
    calls = [make_call() for _ in range(clients)]
    start = time.perf_counter() + 0.05
    window = (start + warmup_s, start + warmup_s + seconds)
    finished: list[list[tuple[float, float]]] = [[] for _ in range(clients)]
    errors: list[list[str]] = [[] for _ in range(clients)]

    def run(client: int) -> None:
        index = client * max(1, count // clients)
        while True:
            began = time.perf_counter()
            if began >= window[1]:
                return
            try:
                calls[client](index)
            except Exception as e:  # every failure is counted, the first one is shown
                errors[client].append(f"{type(e).__name__}: {e}")
            else:
                finished[client].append((began, time.perf_counter()))
            index += 1

    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in range(clients)]
    cpu = time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu = time.process_time() - cpu
    inside = [(b, e) for rows in finished for b, e in rows if window[0] <= e <= window[1]]
    failures = [message for rows in errors for message in rows]
    return LoadResult(
        clients=clients,
        window_s=seconds,
        completed=len(inside),
        errors=len(failures),
        latencies_ms=tuple((e - b) * 1000 for b, e in inside),
        client_cpu_share=cpu / (seconds + warmup_s),
        first_error=failures[0] if failures else None,
    )
