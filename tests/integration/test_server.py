"""The real tritonserver 2.51 with tritonkit's local onnxruntime backend, on free ports."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.fixtures.tiny_onnx import expected, tiny_config, write_tiny_model
from tests.integration.conftest import start_server
from tritonkit.errors import ConfigError, ServerError
from tritonkit.server.install import ServerInstall
from tritonkit.server.models import load_waves, read_repository
from tritonkit.server.process import TritonServer, free_port
from tritonkit.util.gpu import gpu_available


def inputs(module: Any, x: np.ndarray, ids: np.ndarray, ids_type: str = "INT64") -> list[Any]:
    """InferInputs for the tiny graph; `module` is tritonclient.http or tritonclient.grpc."""
    made = [module.InferInput("X", x.shape, "FP32"), module.InferInput("IDS", ids.shape, ids_type)]
    made[0].set_data_from_numpy(x)
    made[1].set_data_from_numpy(ids)
    return made


def sample(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((rows, 4)).astype(np.float32), rng.integers(0, 9, (rows, 4))


def our_processes(prefix: str) -> list[int]:
    """PIDs whose command line holds the server's shm prefix: tritonserver and its stubs."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if prefix.encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


@pytest.mark.integration
def test_answers_over_http_and_grpc(tiny_server: TritonServer) -> None:
    x, ids = sample(3, seed=0)
    y, z = expected(x, ids)
    with httpclient.InferenceServerClient(tiny_server.http_url) as client:
        assert client.get_server_metadata()["version"] == "2.51.0"
        result = client.infer("tiny", inputs(httpclient, x, ids))
    np.testing.assert_allclose(result.as_numpy("Y"), y, rtol=1e-6)
    np.testing.assert_array_equal(result.as_numpy("Z"), z)
    with grpcclient.InferenceServerClient(tiny_server.grpc_url) as client:
        result = client.infer("tiny", inputs(grpcclient, x, ids))
        via_ensemble = client.infer("tiny_ensemble", inputs(grpcclient, x, ids))
    np.testing.assert_allclose(result.as_numpy("Y"), y, rtol=1e-6)
    np.testing.assert_array_equal(result.as_numpy("Z"), z)
    np.testing.assert_allclose(via_ensemble.as_numpy("Y"), y, rtol=1e-6)
    with urllib.request.urlopen(f"http://{tiny_server.metrics_url}/metrics") as response:
        assert b'nv_inference_count{model="tiny"' in response.read()


@pytest.mark.integration
def test_concurrent_requests_are_batched_and_split_back(tiny_server: TritonServer) -> None:
    samples = [sample(1, seed=i) for i in range(8)]
    with httpclient.InferenceServerClient(tiny_server.http_url, concurrency=8) as client:
        before = client.get_inference_statistics("tiny")["model_stats"][0]
        pending = [client.async_infer("tiny", inputs(httpclient, x, ids)) for x, ids in samples]
        results = [p.get_result() for p in pending]
        after = client.get_inference_statistics("tiny")["model_stats"][0]
    for (x, ids), result in zip(samples, results, strict=True):
        y, z = expected(x, ids)
        np.testing.assert_allclose(result.as_numpy("Y"), y, rtol=1e-6)
        np.testing.assert_array_equal(result.as_numpy("Z"), z)
    assert after["inference_count"] - before["inference_count"] == 8
    assert after["execution_count"] - before["execution_count"] < 8  # some ran as one batch


@pytest.mark.integration
def test_a_bad_request_gets_an_error_and_the_model_keeps_serving(
    tiny_server: TritonServer,
) -> None:
    x, ids = sample(2, seed=1)
    with httpclient.InferenceServerClient(tiny_server.http_url) as client:
        wrong = inputs(httpclient, x, ids.astype(np.int32), ids_type="INT32")
        with pytest.raises(InferenceServerException) as info:
            client.infer("tiny", wrong)
        result = client.infer("tiny", inputs(httpclient, x, ids))
    assert "inference input 'IDS' data-type is 'INT32', but model 'tiny' expects 'INT64'" in str(
        info.value
    )
    np.testing.assert_array_equal(result.as_numpy("Z"), expected(x, ids)[1])


@pytest.mark.integration
def test_a_request_the_backend_rejects_fails_alone_in_its_batch(
    tiny_server: TritonServer,
) -> None:
    """tiny_loose declares IDS optional: Triton passes a request without it to the backend."""
    good = [sample(1, seed=i) for i in range(3)]
    missing = httpclient.InferInput("X", [1, 4], "FP32")
    missing.set_data_from_numpy(good[0][0])
    with httpclient.InferenceServerClient(tiny_server.http_url, concurrency=4) as client:
        sent = [
            client.async_infer("tiny_loose", inputs(httpclient, x, ids.astype(np.int32), "INT32"))
            for x, ids in good
        ]
        bad = client.async_infer("tiny_loose", [missing])
        results = [s.get_result() for s in sent]
        with pytest.raises(InferenceServerException) as info:
            bad.get_result()
    assert "model 'tiny_loose': input 'IDS' is missing: the ONNX graph needs it" in str(info.value)
    for (x, ids), result in zip(good, results, strict=True):
        np.testing.assert_array_equal(result.as_numpy("Z"), expected(x, ids)[1])  # int32 widened


@pytest.mark.integration
@pytest.mark.skipif(gpu_available(), reason="a GPU is present: KIND_GPU loads as it is")
def test_a_kind_gpu_config_loads_on_cpu_with_a_notice(tiny_server: TritonServer) -> None:
    assert tiny_server.loaded_notices == [
        "model 'tiny_gpu' asks for KIND_GPU but this machine has no GPU: loaded on CPU "
        "(local emulation)"
    ]
    x, ids = sample(1, seed=3)
    with httpclient.InferenceServerClient(tiny_server.http_url) as client:
        config = client.get_model_config("tiny_gpu", headers=tiny_server.admin_headers)
        assert config["instance_group"][0]["kind"] == "KIND_CPU"
        result = client.infer("tiny_gpu", inputs(httpclient, x, ids))
    np.testing.assert_allclose(result.as_numpy("Y"), expected(x, ids)[0], rtol=1e-6)


@pytest.mark.integration
def test_a_port_in_use_is_named_with_its_flag(
    tiny_repo: Path, triton_install: ServerInstall
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        ports = {"http_port": free_port(), "grpc_port": busy, "metrics_port": free_port()}
        server = TritonServer(tiny_repo, triton_install, **ports)
        with pytest.raises(ServerError) as info:
            server.start()
    assert str(info.value) == (
        f"port {busy} is already in use (--grpc-port): stop the process that holds it or "
        "choose another port"
    )
    assert our_processes(server.shm_prefix) == []


@pytest.mark.integration
def test_stop_leaves_no_process_and_no_shm_file(
    tmp_path: Path, triton_install: ServerInstall
) -> None:
    write_tiny_model(tmp_path, "tiny", tiny_config("tiny"))
    server = start_server(tmp_path, triton_install)
    try:
        assert len(our_processes(server.shm_prefix)) == 2  # tritonserver and one stub
        assert list(Path("/dev/shm").glob(f"{server.shm_prefix}*"))
    finally:
        server.stop()
    assert our_processes(server.shm_prefix) == []
    assert list(Path("/dev/shm").glob(f"{server.shm_prefix}*")) == []
    server.stop()  # idempotent


@pytest.mark.integration
def test_a_load_failure_names_the_model_and_shows_the_log(
    tmp_path: Path, triton_install: ServerInstall
) -> None:
    config = tiny_config("broken").replace('name: "Z"', 'name: "W"')
    write_tiny_model(tmp_path, "broken", config)
    ports = {"http_port": free_port(), "grpc_port": free_port(), "metrics_port": free_port()}
    server = TritonServer(tmp_path, triton_install, **ports)
    with pytest.raises(ServerError) as info:
        server.start(timeout=60)
    first, _, log_tail = str(info.value).partition("\n")
    assert first.startswith("model 'broken' failed to load: ")
    assert "config output 'W' is not in the graph (Y, Z)" in first
    assert first.endswith(": fix the model or its config.pbtxt")
    assert "--- last lines of" in log_tail
    assert our_processes(server.shm_prefix) == []


def test_ensembles_load_after_the_models_they_use(tmp_path: Path) -> None:
    for name in ("a_tokenizer", "z_model"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.pbtxt").write_text(f'name: "{name}" backend: "python"')
    ensemble = 'name: "{}" platform: "ensemble" ensemble_scheduling {{ step [ {} ] }}'
    step = '{{ model_name: "{}" model_version: -1 }}'
    (tmp_path / "a_outer").mkdir()
    (tmp_path / "a_outer" / "config.pbtxt").write_text(
        ensemble.format("a_outer", step.format("b_inner"))
    )
    (tmp_path / "b_inner").mkdir()
    (tmp_path / "b_inner" / "config.pbtxt").write_text(
        ensemble.format("b_inner", ", ".join(step.format(m) for m in ("a_tokenizer", "z_model")))
    )
    assert load_waves(read_repository(tmp_path)) == [
        ["a_tokenizer", "z_model"],
        ["b_inner"],
        ["a_outer"],
    ]


def test_an_ensemble_cycle_is_a_config_error(tmp_path: Path) -> None:
    for name, other in (("a", "b"), ("b", "a")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.pbtxt").write_text(
            f'name: "{name}" platform: "ensemble" '
            f'ensemble_scheduling {{ step [ {{ model_name: "{other}" model_version: -1 }} ] }}'
        )
    with pytest.raises(ConfigError, match="ensembles a, b use each other in a cycle"):
        load_waves(read_repository(tmp_path))
