"""`tritonkit serve` as a library call: start a local tritonserver on a repository and keep
it serving until asked to stop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tritonkit.errors import RepositoryError
from tritonkit.repository.backends.tensorrt import server_args
from tritonkit.repository.validate import validate_repository
from tritonkit.server.install import find_server
from tritonkit.server.process import TritonServer
from tritonkit.spec import ServeSpec

Log = Callable[[str], None]


def prepare_server(
    repo: Path, options: ServeSpec, tritonserver: Path | None, log: Log
) -> TritonServer:
    """The server for `repo` (not started); validation problems are logged as warnings."""
    if not repo.is_dir():
        raise RepositoryError(f"{repo}: model repository folder not found: run tritonkit generate")
    for problem in validate_repository(repo):  # Triton has the last word; these are warnings
        log(f"warning: {problem}")
    install = find_server(tritonserver, log=log)
    return TritonServer(
        repo.resolve(),
        install,
        http_port=options.http_port,
        grpc_port=options.grpc_port,
        metrics_port=options.metrics_port,
        extra_args=repository_server_args(repo),
    )


def repository_server_args(repo: Path) -> list[str]:
    """tritonserver flags the repository's models need (version-compatible TensorRT plans:
    --backend-config=tensorrt,version-compatible=true)."""
    args: list[str] = []
    for model_dir in sorted(p for p in repo.iterdir() if p.is_dir()):
        args += [a for a in server_args(model_dir) if a not in args]
    return args
