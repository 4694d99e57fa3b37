"""The closed-loop client and the `bench --served` report, without a server."""

from __future__ import annotations

import json
import math
import struct
import threading
import time
from pathlib import Path

import pytest

from tritonkit.bench.client import LoadResult, closed_loop, infer_request
from tritonkit.bench.inprocess import Baseline
from tritonkit.bench.served import Row, ServedBench, ServedConfig
from tritonkit.bench.served_report import checks, markdown, summarize
from tritonkit.pipeline.bench_served import parse_served
from tritonkit.util.cpu import CpuInfo


def test_the_request_is_binary_like_tritonclient_sends_it() -> None:
    body, header_length = infer_request("héllo")
    header = json.loads(body[:header_length])
    data = "héllo".encode()
    assert header["inputs"] == [
        {
            "name": "TEXT",
            "shape": [1, 1],
            "datatype": "BYTES",
            "parameters": {"binary_data_size": 4 + len(data)},
        }
    ]
    assert header["parameters"] == {"binary_data_output": True}
    assert body[header_length:] == struct.pack("<I", len(data)) + data


def test_closed_loop_keeps_each_client_one_request_deep() -> None:
    """Each client waits for its answer: never more requests in flight than clients."""
    in_flight, peak, seen = [0], [0], set()
    lock = threading.Lock()

    def make():  # type: ignore[no-untyped-def]
        def call(index: int) -> None:
            with lock:
                in_flight[0] += 1
                peak[0] = max(peak[0], in_flight[0])
                seen.add(index % 10)
            time.sleep(0.002)
            with lock:
                in_flight[0] -= 1

        return call

    result = closed_loop(make, 10, clients=3, seconds=0.3, warmup_s=0.1)
    assert peak[0] <= 3
    assert result.errors == 0 and result.completed > 20
    assert result.texts_per_s == pytest.approx(result.completed / 0.3)
    assert all(1.5 < ms < 200 for ms in result.latencies_ms)
    assert seen == set(range(10))  # the clients cycle through every text


def test_closed_loop_counts_errors_and_keeps_the_first() -> None:
    def make():  # type: ignore[no-untyped-def]
        def call(index: int) -> None:
            time.sleep(0.001)
            if index % 2:
                raise ValueError(f"bad {index % 2}")

        return call

    result = closed_loop(make, 4, clients=2, seconds=0.2, warmup_s=0.05)
    assert result.errors > 0 and result.first_error == "ValueError: bad 1"
    assert result.completed > 0


def test_parse_served() -> None:
    assert parse_served("tuned=out/x") == ("tuned", Path("out/x"))
    assert parse_served("out/default") == ("default", Path("out/default"))


def _result(rate: float, clients: int) -> LoadResult:
    return LoadResult(clients, 1.0, int(rate), 0, (1.0, 2.0, 3.0), 0.1)


def _bench(rates: dict[tuple[str, str, int], float]) -> ServedBench:
    class _Item:
        def __init__(self, label: str) -> None:
            self.label, self.describe = label, f"{label} layout"

    items = [_Item("default"), _Item("tuned"), _Item("before")]
    config = ServedConfig(clients=(1, 4, 16), repeats=1, tokenizer_clients=16)
    rows = [Row(label, kind, c, 0, _result(rate, c)) for (label, kind, c), rate in rates.items()]
    baselines = [Baseline("onnxruntime", 2, 1, "none", 500.0)]
    return ServedBench(config, items, rows, baselines)  # type: ignore[arg-type]


def test_report_ratios_and_checks() -> None:
    rates = {("default", "served", 1): 100, ("default", "served", 4): 300,
             ("default", "served", 16): 400, ("tuned", "served", 1): 110,
             ("tuned", "served", 4): 330, ("tuned", "served", 16): 600,
             ("before", "served", 1): 150, ("before", "served", 4): 100,
             ("before", "served", 16): 200, ("default", "tokenizer", 16): 800,
             ("in-process tokenizers", "in-process tokenizer", 16): 1000}  # fmt: skip
    bench = _bench({k: float(v) for k, v in rates.items()})
    summary = summarize(bench.rows)
    found = {c["check"]: c for c in checks(bench, summary)}
    layout = found["default / tuned"]
    assert [round(r, 3) for r in layout["ratios"]] == [0.909, 0.909, 0.667]
    assert layout["met"] is False  # 0.667 < 0.8 at 16 clients
    assert found["default: 1 -> 4 clients"]["met"] is True
    assert found["default / before"]["bar"] is None and found["default / before"]["met"] is None
    tokenizer = found["served tokenizer / in-process tokenizers"]
    assert tokenizer["ratios"] == [0.8] and tokenizer["met"] is True
    cpu = CpuInfo("Test CPU", "x86_64", 2, ("avx2",))
    text = markdown(bench, cpu)
    assert text.startswith("Machine: Test CPU (x86_64")
    assert "), 2 CPUs, flags avx2; load average" in text.splitlines()[0]
    assert "| default | 16 | 400.0 (400.0-400.0) |" in text
    assert "| tuned | 16 | 600.0 (600.0-600.0) |" in text and "| 1.50x | 1.20x |" in text
    assert "| default / tuned | 1, 4, 16 | 0.91, 0.91, 0.67 | >= 0.8 | **not met** |" in text
    assert "| served tokenizer / in-process tokenizers | 16 | 0.80 | >= 0.7 | met |" in text
    assert "| default / before | 1, 4, 16 | 0.67, 3.00, 2.00 | - |  |" in text


def test_summary_takes_medians_over_repetitions() -> None:
    bench = _bench({})
    bench.rows = [Row("default", "served", 4, r, _result(v, 4)) for r, v in enumerate((1, 9, 5))]
    (entry,) = summarize(bench.rows)
    assert (entry["texts_per_s"], entry["min"], entry["max"]) == (5.0, 1.0, 9.0)
    assert entry["repeats"] == 3 and math.isclose(entry["p50_ms"], 2.0)


def test_cpu_identity(tmp_path: Path) -> None:
    from tritonkit.util.cpu import cpu_identity

    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n"
        "model name\t: AMD EPYC\nstepping\t: 1\ncpu MHz\t\t: 2445.402\n\n"
        "processor\t: 1\nvendor_id\t: Other\n"
    )
    assert cpu_identity(info) == {
        "vendor": "AuthenticAMD", "family": "25", "model": "1", "stepping": "1", "mhz": "2445.402"
    }  # fmt: skip
    assert cpu_identity(tmp_path / "missing") == {}
