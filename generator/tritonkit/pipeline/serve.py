"""`tritonkit serve` as a library call: start a local tritonserver on a repository and keep
it serving, watched, until asked to stop."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tritonkit.errors import RepositoryError
from tritonkit.repository.backends.tensorrt import server_args
from tritonkit.repository.validate import validate_repository
from tritonkit.server.install import find_server
from tritonkit.server.models import read_repository
from tritonkit.server.process import TritonServer
from tritonkit.server.watch import Watcher
from tritonkit.spec import ServeSpec

Log = Callable[[str], None]
_SERVER_POLL = 0.5  # seconds between checks that tritonserver still runs


def prepare_server(
    repo: Path, options: ServeSpec, tritonserver: Path | None, log: Log
) -> TritonServer:
    """The server for `repo` (not started). A repository `validate` finds invalid is refused
    before anything starts: Triton would refuse it later, or hang (a missing model.py)."""
    if not repo.is_dir():
        raise RepositoryError(f"{repo}: model repository folder not found: run tritonkit generate")
    if not read_repository(repo):
        raise RepositoryError(
            f"{repo}: no models to serve (no folder with a config.pbtxt): write a repository "
            f"with `tritonkit generate MODEL_DIR -o {repo}`"
        )
    problems = validate_repository(repo)
    if problems:
        raise RepositoryError(
            "\n".join(problems) + f"\n{repo}: {len(problems)} problem(s): fix them (see "
            f"`tritonkit validate {repo}`) before serving"
        )
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


def watch(server: TritonServer, options: ServeSpec, log: Log) -> None:
    """Watch a started server until interrupted (KeyboardInterrupt, which the CLI raises on
    Ctrl-C, SIGTERM and SIGHUP). Raises ServerError when the deployment is down for good:
    tritonserver ended, or a model could not be recovered."""
    watcher = Watcher(server, log)
    next_check = time.monotonic() + options.watch_interval
    while True:
        time.sleep(_SERVER_POLL)
        watcher.check_server()
        if options.watch_interval > 0 and time.monotonic() >= next_check:
            watcher.check()
            next_check = time.monotonic() + options.watch_interval
