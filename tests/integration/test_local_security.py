"""Issue 10 item 1 and 14: the local server's control APIs are closed to anyone without the
per-run admin key (a local process, or a web page posting cross-site), `check --repository`
catches a config swapped behind the repository's back, and serving writes nothing into the
repository."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import tritonclient.grpc as grpcclient
from click.testing import CliRunner
from tritonclient.utils import InferenceServerException

from tests.integration.conftest import fresh_copy, start_server
from tritonkit.cli import main
from tritonkit.server.install import ServerInstall
from tritonkit.server.process import TritonServer

pytestmark = pytest.mark.integration
REFUSED = {"error": "This API is restricted, expecting header 'tritonkit-admin-key'"}


@pytest.fixture(scope="module")
def server(
    cls_deployment: Path, tmp_path_factory: pytest.TempPathFactory, triton_install: ServerInstall
) -> Iterator[TritonServer]:
    repo = fresh_copy(cls_deployment, tmp_path_factory.mktemp("security") / "repo")
    started = start_server(repo, triton_install)
    yield started
    started.stop()


def http(
    server: TritonServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        f"http://{server.http_url}{path}", data=body, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    return status, json.loads(text) if text.strip() else {}


def evil_load_body(marker: Path) -> bytes:
    """A repository-API load that ships its own model.py: running it is running code."""
    code = (
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('pwned')\n"
        "class TritonPythonModel:\n    def execute(self, requests):\n        return []\n"
    )
    config = {
        "name": "evil", "backend": "python", "max_batch_size": 0,
        "input": [{"name": "IN", "data_type": "TYPE_FP32", "dims": [1]}],
        "output": [{"name": "OUT", "data_type": "TYPE_FP32", "dims": [1]}],
    }  # fmt: skip
    parameters = {
        "config": json.dumps(config),
        "file:1/model.py": base64.b64encode(code.encode()).decode(),
    }
    return json.dumps({"parameters": parameters}).encode()


def test_loading_code_without_the_key_is_refused(server: TritonServer, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    body = evil_load_body(marker)
    assert http(server, "POST", "/v2/repository/models/evil/load", body) == (403, REFUSED)
    wrong = {"tritonkit-admin-key": "guess"}
    assert http(server, "POST", "/v2/repository/models/evil/load", body, wrong) == (403, REFUSED)
    # What a web page can send cross-site without a CORS preflight: a text/plain form POST.
    plain = {"Content-Type": "text/plain"}
    assert http(server, "POST", "/v2/repository/models/evil/load", body, plain) == (403, REFUSED)
    status, _ = http(server, "GET", "/v2/models/evil/ready")
    assert status != 200
    assert not marker.exists()
    config = json.loads(body)["parameters"]["config"]
    with (
        grpcclient.InferenceServerClient(server.grpc_url) as client,
        pytest.raises(InferenceServerException, match="This protocol is restricted"),
    ):
        client.load_model("evil", config=config)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v2/repository/models/cls_tokenizer/unload", b"{}"),
        ("POST", "/v2/repository/index", b"{}"),
        ("GET", "/v2/models/cls_tokenizer/config", None),
        ("POST", "/v2/systemsharedmemory/region/x/register",
         b'{"key": "/x", "offset": 0, "byte_size": 64}'),
        ("GET", "/v2/systemsharedmemory/status", None),
        ("POST", "/v2/cudasharedmemory/region/x/unregister", b"{}"),
        ("GET", "/v2/logging", None),
        ("POST", "/v2/logging", b'{"log_verbose_level": 1, "log_file": "/tmp/x"}'),
        ("GET", "/v2/trace/setting", None),
        ("POST", "/v2/trace/setting", b'{"trace_level": ["TIMESTAMPS"]}'),
    ],
)  # fmt: skip
def test_control_apis_are_refused_without_the_key(
    server: TritonServer, method: str, path: str, body: bytes | None
) -> None:
    assert http(server, method, path, body) == (403, REFUSED)
    status, _ = http(server, "GET", "/v2/models/cls/ready")
    assert status == 200  # nothing was unloaded
    infer = {"inputs": [{"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": ["hi"]}]}
    status, answer = http(server, "POST", "/v2/models/cls/infer", json.dumps(infer).encode())
    assert status == 200, answer  # inference stays open


def test_the_key_unlocks_the_control_apis(server: TritonServer, tmp_path: Path) -> None:
    key = server.admin_headers
    status, config = http(server, "GET", "/v2/models/cls_tokenizer/config", headers=key)
    assert status == 200 and config["name"] == "cls_tokenizer"
    assert http(server, "GET", "/v2/logging", headers=key)[0] == 200
    marker = tmp_path / "ran"
    status, answer = http(server, "POST", "/v2/repository/models/evil/load",
                          evil_load_body(marker), key)  # fmt: skip
    assert status == 200, answer
    assert marker.read_text() == "pwned"  # what the key protects: code runs as the server
    assert http(server, "POST", "/v2/repository/models/evil/unload", b"{}", key)[0] == 200
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        headers = {"triton-grpc-protocol-tritonkit-admin-key": server.admin_key}
        assert client.get_model_config("cls", headers=headers).config.name == "cls"


def test_the_key_file_is_private(server: TritonServer) -> None:
    from tritonkit.server.client import key_file

    path = key_file(server.http_url)
    assert path.read_text().strip() == server.admin_key
    assert path.stat().st_mode & 0o777 == 0o600
    assert server.admin_key not in server.log_text()


def test_check_repository_catches_a_config_swapped_through_the_api(
    cls_deployment: Path,
    tmp_path: Path,
    triton_install: ServerInstall,
    tiny_model_dirs: dict[str, Path],
) -> None:
    repo = fresh_copy(cls_deployment, tmp_path / "repo")
    swapped = start_server(repo, triton_install)
    try:
        key = swapped.admin_headers
        _, config = http(swapped, "GET", "/v2/models/cls_tokenizer/config", headers=key)
        config["parameters"]["max_length"] = {"string_value": "8"}  # type: ignore[index]
        body = json.dumps({"parameters": {"config": json.dumps(config)}}).encode()
        status, answer = http(swapped, "POST", "/v2/repository/models/cls_tokenizer/load", body,
                              key)  # fmt: skip
        assert status == 200, answer
        args = ["check", str(tiny_model_dirs["text-classification"]), "--url", swapped.http_url,
                "--grpc-url", swapped.grpc_url, "--name", "cls"]  # fmt: skip
        result = CliRunner().invoke(main, [*args, "--repository", str(repo)])
    finally:
        swapped.stop()
    assert result.exit_code == 1, result.output
    last = result.output.rstrip().splitlines()[-1]
    assert last.startswith(f"Error: {repo}: the server's deployment 'cls' differs from the "
                           "repository's (")  # fmt: skip
    assert "max_length=8" in last and "max_length=64" in last
    assert last.endswith("): restart the server from the repository")


def test_serving_writes_nothing_into_the_repository(
    cls_deployment: Path, tmp_path: Path, triton_install: ServerInstall
) -> None:
    repo = fresh_copy(cls_deployment, tmp_path / "repo")
    before = sorted(str(p.relative_to(repo)) for p in repo.rglob("*"))
    served = start_server(repo, triton_install)
    try:
        infer = {"inputs": [{"name": "TEXT", "shape": [1, 1], "datatype": "BYTES",
                             "data": ["hello"]}]}  # fmt: skip
        status, _ = http(served, "POST", "/v2/models/cls/infer", json.dumps(infer).encode())
        assert status == 200
        log = served.log_text()
    finally:
        served.stop()
    assert sorted(str(p.relative_to(repo)) for p in repo.rglob("*")) == before
    assert not list(repo.rglob("__pycache__"))
    # Nothing changed the version folder's mtime, so the ensemble's load did not reload the
    # tokenizer a second time.
    assert log.count('"loading: cls_tokenizer:1"') == 1
