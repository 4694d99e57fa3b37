"""Issue 10 item 4, on the served deployment: a 20 MB text is answered in well under the
27 s it once took (the tokenizer bounds it before tokenizing), short requests sent meanwhile
are not held behind it, and a long normal text is served exactly as PyTorch computes it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient

from tests.integration.conftest import fresh_copy, start_server
from tritonkit.check import run_check
from tritonkit.server.install import ServerInstall
from tritonkit.server.process import TritonServer

pytestmark = pytest.mark.integration
HUGE = "Twenty megabytes of words that nobody will ever read, sent in one request. " * 270_000


@pytest.fixture(scope="module")
def server(
    cls_deployment: Path, tmp_path_factory: pytest.TempPathFactory, triton_install: ServerInstall
) -> Iterator[TritonServer]:
    started = start_server(fresh_copy(cls_deployment, tmp_path_factory.mktemp("long") / "r"),
                           triton_install)  # fmt: skip
    yield started
    started.stop()


def infer(url: str, text: str) -> tuple[np.ndarray, float]:
    client = httpclient.InferenceServerClient(url, connection_timeout=120, network_timeout=120)
    tensor = httpclient.InferInput("TEXT", [1, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([[text.encode()]], dtype=np.object_))  # binary body
    started = time.perf_counter()
    result = client.infer("cls", [tensor]).as_numpy("PROBABILITIES")
    elapsed = time.perf_counter() - started
    client.close()
    return result, elapsed


def test_a_20_mb_text_is_answered_quickly_and_does_not_hold_others(server: TritonServer) -> None:
    assert len(HUGE.encode()) > 20_000_000
    infer(server.http_url, "warm up")
    short: list[float] = []
    done = threading.Event()

    def keep_sending() -> None:
        while not done.is_set():
            short.append(infer(server.http_url, "a short one")[1])

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        huge, elapsed = infer(server.http_url, HUGE)
    finally:
        done.set()
        sender.join(60)
    print(f"20 MB text: {elapsed:.2f} s; {len(short)} short requests meanwhile, slowest "
          f"{max(short):.2f} s")  # fmt: skip
    alone, _ = infer(server.http_url, HUGE[:4000])  # the same first tokens, short
    np.testing.assert_allclose(huge, alone, rtol=1e-5)
    assert elapsed < 5.0  # moving 20 MB through HTTP and the ensemble dominates; was 27 s
    assert short and max(short) < 5.0


def test_a_long_normal_text_matches_pytorch(
    server: TritonServer, tiny_model_dirs: dict[str, Path]
) -> None:
    long_texts = [
        "A review that goes on and on about a film it loved. " * 400,
        "東京は日本の首都です北京和上海也是大城市" * 300,
        "word " * 2000 + "x" * 3000 + " tail" * 50,
    ]
    report = run_check(tiny_model_dirs["text-classification"], "cls", server.http_url,
                       server.grpc_url, long_texts)  # fmt: skip
    assert report.passed, report.failures()
