"""Generated repositories served by the real local tritonserver, checked against PyTorch.

One server (module scope) serves three deployments side by side: all-MiniLM-L6-v2 embeddings
(`minilm`), a tiny classifier (`cls`) and a tiny token classifier (`tok`).
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from click.testing import CliRunner
from tritonclient.utils import InferenceServerException

from tests.fixtures.tiny_models import perturbed_classifier
from tests.integration.conftest import start_server
from tritonkit.check import BUILTIN_TEXTS, run_check
from tritonkit.cli import main
from tritonkit.pipeline.generate import generate
from tritonkit.server.install import ServerInstall
from tritonkit.server.process import TritonServer
from tritonkit.spec import build_spec

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
    triton_install: ServerInstall,
    minilm_dir: Path,
    tiny_model_dirs: dict[str, Path],
) -> Iterator[TritonServer]:
    root = tmp_path_factory.mktemp("deployments")
    combined = root / "repo"
    combined.mkdir()
    deployments = [
        ("minilm", minilm_dir, "feature-extraction"),
        ("cls", tiny_model_dirs["text-classification"], "text-classification"),
        ("tok", tiny_model_dirs["token-classification"], "token-classification"),
    ]
    for name, model, task in deployments:
        spec = build_spec(None, {"model": model, "task": task, "name": name, "output": root / name})
        result = generate(spec)
        for folder in result.output.iterdir():
            if folder.is_dir():
                shutil.move(str(folder), combined / folder.name)
    server = start_server(combined, triton_install)
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("name", "task"),
    [("minilm", None), ("cls", "text-classification"), ("tok", "token-classification")],
)
def test_check_passes_against_pytorch(
    served: TritonServer,
    name: str,
    task: str | None,
    minilm_dir: Path,
    tiny_model_dirs: dict[str, Path],
) -> None:
    model = minilm_dir if task is None else tiny_model_dirs[task]
    report = run_check(model, name, served.http_url, served.grpc_url, BUILTIN_TEXTS)
    assert report.passed, report.failures()
    assert len(report.results) == 4 * len(BUILTIN_TEXTS)
    assert {r.mode for r in report.results} == {
        "http batch",
        "http single",
        "grpc batch",
        "grpc single",
    }


def test_check_fails_for_a_different_model(
    served: TritonServer, tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    """The same architecture and labels with other weights must not pass."""
    other = perturbed_classifier(
        tiny_model_dirs["text-classification"], tmp_path / "other", (2.0, -2.0)
    )
    result = CliRunner().invoke(
        main,
        [
            "check",
            str(other),
            "--url",
            served.http_url,
            "--grpc-url",
            served.grpc_url,
            "--name",
            "cls",
        ],
    )
    assert result.exit_code == 1
    assert "FAIL" in result.output
    assert result.output.rstrip().splitlines()[-1].startswith("Error: ")
    assert "comparisons failed their tolerance" in result.output


def test_check_cli_passes(served: TritonServer, minilm_dir: Path, tmp_path: Path) -> None:
    texts = tmp_path / "texts.jsonl"
    texts.write_text('{"text": "a user text"}\n{"text": "another one"}\n', encoding="utf-8")
    result = CliRunner().invoke(
        main,
        [
            "check",
            str(minilm_dir),
            "--url",
            served.http_url,
            "--name",
            "minilm",
            "--grpc-url",
            served.grpc_url,
            "--texts",
            str(texts),
        ],
    )
    assert result.exit_code == 0, result.output
    count = 4 * (len(BUILTIN_TEXTS) + 2)
    assert f"all {count} comparisons passed" in result.output


def test_check_cli_unknown_model_and_unreachable_server(
    served: TritonServer, minilm_dir: Path
) -> None:
    result = CliRunner().invoke(
        main,
        [
            "check",
            str(minilm_dir),
            "--url",
            served.http_url,
            "--name",
            "nope",
            "--grpc-url",
            served.grpc_url,
        ],
    )
    assert result.exit_code == 1
    assert result.output == (
        f"Error: http {served.http_url}: model 'nope' is not ready on the server: "
        "check --name (and that the repository loaded)\n"
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: nothing answers
        result = CliRunner().invoke(main, ["check", str(minilm_dir), "--url", f"127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: http 127.0.0.1:{port}: cannot reach the server (")


def test_classification_extension_gives_label_names(served: TritonServer) -> None:
    client = httpclient.InferenceServerClient(served.http_url)
    text = httpclient.InferInput("TEXT", [2, 1], "BYTES")
    text.set_data_from_numpy(np.array([[b"good"], [b"bad"]], dtype=np.object_))
    output = httpclient.InferRequestedOutput("PROBABILITIES", class_count=2)
    result = client.infer("cls", [text], outputs=[output]).as_numpy("PROBABILITIES")
    assert result.shape == (2, 2)
    for row in result:
        labels = {item.decode().split(":")[2] for item in row}
        assert labels == {"negative", "positive"}


def _send(module: Any, client: Any, data: np.ndarray, dtype: str = "BYTES") -> Any:
    tensor = module.InferInput("TEXT", list(data.shape), dtype)
    tensor.set_data_from_numpy(data)
    return client.infer("minilm", [tensor]).as_numpy("EMBEDDINGS")


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_bad_requests_get_errors_and_the_server_keeps_serving(
    served: TritonServer, protocol: str
) -> None:
    module: Any = httpclient if protocol == "http" else grpcclient
    url = served.http_url if protocol == "http" else served.grpc_url
    client = module.InferenceServerClient(url)
    good = np.array([[b"still serving"]], dtype=np.object_)
    bad_requests = [
        (np.array([[b"ok"], [b"\xff\xfe bad"]], dtype=np.object_), "BYTES", "not valid UTF-8"),
        (np.array([[1, 2]], dtype=np.int32), "INT32", "data-type is 'INT32'"),
        (np.array([[b"a", b"b"]], dtype=np.object_), "BYTES", "unexpected shape"),
        (np.zeros((0, 1), dtype=np.object_), "BYTES", ""),
    ]
    for data, dtype, message in bad_requests:
        with pytest.raises(InferenceServerException) as info:
            _send(module, client, data, dtype)
        assert message in str(info.value)
        assert _send(module, client, good).shape == (1, 384)
