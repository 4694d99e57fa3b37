"""The tokenizer model on the real tritonserver: requests that arrive together are tokenized as
one batch, each gets exactly what it would get alone, and a bad one fails alone. Then
`tritonkit bench --served` end to end (its figures are not judged here, only its outputs)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.integration.conftest import start_server
from tritonkit.pipeline.generate import generate
from tritonkit.runtime.tokenizer import TextEncoder, TokenizerParams
from tritonkit.server.install import ServerInstall
from tritonkit.server.process import TritonServer
from tritonkit.spec import build_spec

pytestmark = pytest.mark.integration
TEXTS = [
    "Paris is in France",
    "hello",
    "",
    "a much longer text about Berlin and London, with more words than the others here",
    "Tokyo",
    "x " * 100,  # truncated at max_length
]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs: dict[str, Path]) -> Path:
    """A token classifier (offsets and token_type_ids out) whose tokenizer waits up to 300 ms
    for a batch, so that requests sent together are executed together."""
    spec = build_spec(
        None,
        {
            "model": tiny_model_dirs["token-classification"],
            "task": "token-classification",
            "name": "tok",
            "output": tmp_path_factory.mktemp("batched") / "repo",
            "target": {"cpus": 2},
            "dynamic_batching": {"tokenizer_max_queue_delay_us": 300_000},
        },
    )
    return generate(spec).output


@pytest.fixture(scope="module")
def server(repo: Path, triton_install: ServerInstall) -> Iterator[TritonServer]:
    server = start_server(repo, triton_install)
    yield server
    server.stop()


def _stats(client: httpclient.InferenceServerClient) -> tuple[int, int]:
    stats = client.get_inference_statistics("tok_tokenizer")["model_stats"][0]
    return int(stats["inference_count"]), int(stats["execution_count"])


def _request(texts: list[bytes]) -> list[httpclient.InferInput]:
    tensor = httpclient.InferInput("TEXT", [len(texts), 1], "BYTES")
    tensor.set_data_from_numpy(np.array(texts, dtype=np.object_).reshape(-1, 1))
    return [tensor]


def test_requests_sent_together_are_one_batch_and_each_gets_its_own_encoding(
    server: TritonServer, repo: Path
) -> None:
    config = json.loads((repo / "tritonkit.json").read_text())
    params = TokenizerParams(max_length=config["max_length"], emit_token_type_ids=True,
                             emit_offsets=True)  # fmt: skip
    encoder = TextEncoder(str(repo / "tok_tokenizer" / "1" / "tokenizer.json"), params)
    requests = [[t.encode()] for t in TEXTS] + [[TEXTS[0].encode(), TEXTS[3].encode()]]
    requests.insert(2, [b"fine", b"\xff\xfe not utf-8"])
    outputs = ["input_ids", "attention_mask", "token_type_ids", "offsets"]
    with httpclient.InferenceServerClient(server.http_url, concurrency=len(requests)) as client:
        before = _stats(client)
        pending = [client.async_infer("tok_tokenizer", _request(r)) for r in requests]
        answers = []
        for future in pending:
            try:
                answers.append(future.get_result())
            except InferenceServerException as e:
                answers.append(e)
        after = _stats(client)
    inferences, executions = after[0] - before[0], after[1] - before[1]
    assert inferences == sum(len(r) for r in requests)  # texts, the failed request's included
    assert executions < len(requests)  # requests shared executions: they were batched
    for texts, answer in zip(requests, answers, strict=True):
        if texts[-1] == b"\xff\xfe not utf-8":
            assert isinstance(answer, InferenceServerException)
            assert "TEXT[1] is not valid UTF-8 (byte 0): send UTF-8 encoded text" in str(answer)
            continue
        assert not isinstance(answer, InferenceServerException), answer
        alone = encoder.encode([t.decode() for t in texts])
        for name in outputs:
            assert np.array_equal(answer.as_numpy(name), alone[name]), name


def test_bench_served_writes_its_reports(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    command = [sys.executable, "-m", "tritonkit", "bench", "--served", f"tok={repo}",
               "--clients", "1", "--clients", "2", "--seconds", "1", "--repeats", "1",
               "-o", str(out)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((out / "served.json").read_text())
    kinds = {(s["label"], s["kind"], s["clients"]) for s in data["summary"]}
    assert kinds == {
        ("tok", "served", 1),
        ("tok", "served", 2),
        ("tok", "tokenizer", 2),
        ("in-process tokenizers", "in-process tokenizer", 2),
    }
    assert all(s["errors"] == 0 and s["texts_per_s"] > 0 for s in data["summary"])
    assert len(data["baselines"]) == 3 and data["cpu"]["flags"]
    assert set(data["load_average"]) == {"before", "after"}
    assert (out / "served.png").stat().st_size > 0
    assert "| served tokenizer / in-process tokenizers | 2 |" in (out / "served.md").read_text()
