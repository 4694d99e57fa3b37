"""The real local tritonserver: installed once per session, started on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.tiny_onnx import tiny_config, tiny_ensemble_config, write_tiny_model
from tritonkit.server.install import ServerInstall, find_server
from tritonkit.server.process import TritonServer, free_port


@pytest.fixture(scope="session")
def triton_install() -> ServerInstall:
    """$TRITONKIT_TRITONSERVER, or tritonkit's cached install (created on first use)."""
    return find_server(log=lambda line: print(f"[tritonkit] {line}"))


def start_server(repo: Path, install: ServerInstall) -> TritonServer:
    """A started TritonServer on free ports; the caller stops it."""
    server = TritonServer(
        repo, install, http_port=free_port(), grpc_port=free_port(), metrics_port=free_port()
    )
    server.start(timeout=120)
    return server


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny (KIND_CPU), tiny_gpu (KIND_GPU), tiny_ensemble (over tiny) and tiny_loose (IDS
    declared TYPE_INT32 for the int64 graph input, and optional)."""
    repo = tmp_path_factory.mktemp("tiny_repo")
    write_tiny_model(repo, "tiny", tiny_config("tiny"))
    write_tiny_model(repo, "tiny_gpu", tiny_config("tiny_gpu", kind="KIND_GPU"))
    loose = tiny_config("tiny_loose", ids_type="TYPE_INT32", optional=True)
    write_tiny_model(repo, "tiny_loose", loose)
    ensemble = repo / "tiny_ensemble"
    (ensemble / "1").mkdir(parents=True)
    (ensemble / "config.pbtxt").write_text(tiny_ensemble_config("tiny_ensemble", "tiny"))
    return repo


@pytest.fixture(scope="session")
def valid_tiny_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny, tiny_gpu and tiny_ensemble: what `tritonkit validate` (and so `serve`) accepts;
    tiny_loose's INT32 input for an INT64 graph is refused (the real ONNX Runtime backend
    would refuse it too)."""
    repo = tmp_path_factory.mktemp("valid_tiny_repo")
    write_tiny_model(repo, "tiny", tiny_config("tiny"))
    write_tiny_model(repo, "tiny_gpu", tiny_config("tiny_gpu", kind="KIND_GPU"))
    ensemble = repo / "tiny_ensemble"
    (ensemble / "1").mkdir(parents=True)
    (ensemble / "config.pbtxt").write_text(tiny_ensemble_config("tiny_ensemble", "tiny"))
    return repo


@pytest.fixture(scope="session")
def tiny_server(tiny_repo: Path, triton_install: ServerInstall) -> Iterator[TritonServer]:
    server = start_server(tiny_repo, triton_install)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def cls_deployment(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs: dict[str, Path]
) -> Path:
    """A repository generated once for the tiny classifier (deployment `cls`); copy it with
    `fresh_copy` before changing or serving it from a test that writes into it."""
    from tritonkit.pipeline.generate import generate
    from tritonkit.spec import build_spec

    root = tmp_path_factory.mktemp("cls_deployment")
    spec = build_spec(None, {"model": tiny_model_dirs["text-classification"],
                             "task": "text-classification", "name": "cls",
                             "output": root / "repo"})  # fmt: skip
    return generate(spec).output


def fresh_copy(repo: Path, dest: Path) -> Path:
    """A copy of `repo` at `dest` (timestamps kept, as a generated repository has them)."""
    import shutil

    return Path(shutil.copytree(repo, dest))
