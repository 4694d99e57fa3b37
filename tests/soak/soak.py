"""Soak: `tritonkit serve` under closed-loop load at saturation, with a Python stub killed
midway (issue 10). Not part of `make test`; run with `make soak` (10 minutes).

It serves the default deployment (all-MiniLM-L6-v2, generated once into out/soak/repo) with the
real tritonserver, runs WORKERS clients that each send the next request as soon as the last
one answered, kills the tokenizer's stub with SIGKILL at half time, and records:
  - every request: its latency and its outcome. An answer is correct when its embedding equals
    the one the same text got before the kill (cosine >= 0.9999); a failure is an error the
    client received (reported, with its message). A *silent* failure would be a 200 with a
    wrong or empty answer: the soak counts them and must find none.
  - when the deployment served again after the kill (first success after the last failure),
    and what `serve` logged about the recovery;
  - the resident memory (VmRSS) of tritonserver and its stubs every 5 s;
  - the machine (CPU model, cores, load average).
Results: out/soak/soak.json and out/soak/soak.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tritonclient.http as httpclient

from tritonkit.loadtest.config import default_corpus, load_corpus
from tritonkit.server.process import free_port
from tritonkit.server.watch import python_stubs

OUT = Path("out/soak")
NAME = "minilm"


@dataclass
class Record:
    started: float = 0.0
    ok: int = 0
    wrong: int = 0  # silent failures: 200 with a wrong answer
    errors: Counter[str] = field(default_factory=Counter)
    error_times: list[float] = field(default_factory=list)
    success_times: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def rss_mib(server: int) -> float:
    """VmRSS of tritonserver and its Python stubs, in MiB."""
    total = 0
    for pid in [server, *python_stubs(server)]:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def server_pid(http_port: int) -> int:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"/tritonserver") and f"--http-port={http_port}".encode() in argv:
            return int(cmdline.parent.name)
    raise SystemExit(f"no tritonserver on port {http_port}")


def ensure_repository() -> Path:
    repo = OUT / "repo"
    if not (repo / "tritonkit.json").is_file():
        from tritonkit.model.default import default_model_dir
        from tritonkit.pipeline.generate import generate
        from tritonkit.spec import build_spec

        spec = {"model": default_model_dir(), "name": NAME, "output": repo, "force": True}
        generate(build_spec(None, spec))
    return repo


def embed(client: httpclient.InferenceServerClient, text: str) -> np.ndarray:
    tensor = httpclient.InferInput("TEXT", [1, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([[text.encode()]], dtype=np.object_))
    result = client.infer(NAME, [tensor]).as_numpy("EMBEDDINGS")
    if result is None:
        raise ValueError("no EMBEDDINGS in the answer")
    return np.asarray(result[0], dtype=np.float64)


def worker(url: str, texts: list[str], expected: dict[str, np.ndarray], record: Record,
           stop: threading.Event, offset: int) -> None:  # fmt: skip
    client = httpclient.InferenceServerClient(url, connection_timeout=60, network_timeout=60)
    index = offset
    while not stop.is_set():
        text = texts[index % len(texts)]
        index += 1
        started = time.perf_counter()
        try:
            got = embed(client, text)
        except Exception as e:  # every failure is counted with its message
            message = " ".join(str(e).split())[:160] or type(e).__name__
            with record.lock:
                record.errors[message] += 1
                record.error_times.append(time.monotonic() - record.started)
            client.close()
            client = httpclient.InferenceServerClient(url, connection_timeout=60,
                                                      network_timeout=60)  # fmt: skip
            time.sleep(0.05)
            continue
        latency = time.perf_counter() - started
        want = expected[text]
        cosine = float(got @ want / (np.linalg.norm(got) * np.linalg.norm(want) or 1.0))
        with record.lock:
            if cosine >= 0.9999:
                record.ok += 1
                record.latencies.append(latency)
                record.success_times.append(time.monotonic() - record.started)
            else:
                record.wrong += 1
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--kill", choices=["tokenizer", "onnx"], default="tokenizer")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    repo = ensure_repository()
    ports = [free_port() for _ in range(3)]
    serve = subprocess.Popen(
        [sys.executable, "-m", "tritonkit", "serve", str(repo), "--http-port", str(ports[0]),
         "--grpc-port", str(ports[1]), "--metrics-port", str(ports[2])],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "300"},
    )  # fmt: skip
    lines: list[str] = []
    assert serve.stdout is not None
    stdout = serve.stdout
    reader = threading.Thread(target=lambda: lines.extend(iter(stdout.readline, "")), daemon=True)
    reader.start()
    while not any("Press Ctrl-C" in line for line in lines):
        if serve.poll() is not None:
            raise SystemExit("serve ended before it was ready:\n" + "".join(lines))
        time.sleep(0.2)
    url = f"127.0.0.1:{ports[0]}"
    server = server_pid(ports[0])
    texts = load_corpus(default_corpus())
    warm = httpclient.InferenceServerClient(url)
    expected = {text: embed(warm, text) for text in texts}  # before any fault
    warm.close()

    record = Record(started=time.monotonic())
    stop = threading.Event()
    workers = [threading.Thread(target=worker, args=(url, texts, expected, record, stop, i * 7))
               for i in range(args.workers)]  # fmt: skip
    for thread in workers:
        thread.start()
    duration = args.minutes * 60
    rss: list[tuple[float, float]] = []
    killed_at = None
    killed: dict[str, object] = {}
    while (now := time.monotonic() - record.started) < duration and serve.poll() is None:
        rss.append((round(now, 1), round(rss_mib(server), 1)))
        if killed_at is None and now >= duration / 2:
            instance = f"{NAME}_{args.kill}_0_0"
            stub = next(p for p, n in python_stubs(server).items() if n == instance)
            os.kill(stub, signal.SIGKILL)
            killed_at = time.monotonic() - record.started
            killed = {"instance": instance, "pid": stub, "at_s": round(killed_at, 1)}
        time.sleep(5)
    stop.set()
    for thread in workers:
        thread.join(120)
    serve_alive = serve.poll() is None
    if serve_alive:
        serve.send_signal(signal.SIGINT)
    code = serve.wait(120)
    reader.join(5)

    elapsed = time.monotonic() - record.started
    after = [t for t in record.success_times if killed_at is not None and t > killed_at]
    last_error = max(record.error_times, default=None)
    back = next((t for t in after if last_error is None or t > last_error), None)
    steady = [r for t, r in rss if t >= 30]
    minute = max(1, int(60 / 5))
    result = {
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "loadavg_at_end": os.getloadavg(),
        },
        "duration_s": round(elapsed, 1),
        "workers": args.workers,
        "requests": record.ok + record.wrong + sum(record.errors.values()),
        "ok": record.ok,
        "failed_reported": sum(record.errors.values()),
        "failures": dict(record.errors.most_common()),
        "silent_failures": record.wrong,
        "throughput_rps": round(record.ok / elapsed, 1),
        "latency_ms": {
            "p50": round(1000 * statistics.median(record.latencies), 1),
            "p99": round(1000 * float(np.percentile(record.latencies, 99)), 1),
            "max": round(1000 * max(record.latencies), 1),
        },
        "kill": killed,
        "serving_again_after_s": round(back - killed_at, 2) if back and killed_at else None,
        "serve_log": [line.rstrip() for line in lines if "model '" in line or "Error" in line],
        "serve_stayed_up": serve_alive,
        "serve_exit_code": code,
        "rss_mib": {
            "first_minute_mean": round(statistics.mean(steady[:minute]), 1) if steady else None,
            "last_minute_mean": round(statistics.mean(steady[-minute:]), 1) if steady else None,
            "min": min(steady, default=None),
            "max": max(steady, default=None),
        },
        "rss_samples": rss,
    }
    (OUT / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    (OUT / "soak.md").write_text(summary(result))
    print(summary(result))
    passed = result["silent_failures"] == 0 and (
        (serve_alive and back is not None) or code not in (0, None)
    )
    sys.exit(0 if passed else 1)


def summary(r: dict[str, object]) -> str:
    rss = r["rss_mib"]
    lat = r["latency_ms"]
    machine = r["machine"]
    assert isinstance(rss, dict) and isinstance(lat, dict) and isinstance(machine, dict)
    return (
        f"soak: {r['duration_s']} s, {r['workers']} closed-loop clients, machine {machine['cpu']} "
        f"({machine['cores']} cores, load average at the end {machine['loadavg_at_end']})\n"
        f"requests {r['requests']}: ok {r['ok']}, failed and reported {r['failed_reported']}, "
        f"silent failures {r['silent_failures']}; {r['throughput_rps']} req/s, p50 {lat['p50']} "
        f"ms, p99 {lat['p99']} ms\n"
        f"killed {r['kill']}; serving again after {r['serving_again_after_s']} s; serve stayed "
        f"up: {r['serve_stayed_up']} (exit code {r['serve_exit_code']})\n"
        f"failures: {r['failures']}\n"
        f"serve said: {r['serve_log']}\n"
        f"RSS tritonserver + stubs (MiB): first minute {rss['first_minute_mean']}, last minute "
        f"{rss['last_minute_mean']}, min {rss['min']}, max {rss['max']}\n"
    )


if __name__ == "__main__":
    main()
