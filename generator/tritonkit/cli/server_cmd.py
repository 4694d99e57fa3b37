"""`tritonkit serve` and `tritonkit server install`."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click

from tritonkit.cli.common import console
from tritonkit.errors import RepositoryError

_PATH = click.Path(path_type=Path)
_TRITONSERVER = click.option(
    "--tritonserver",
    type=_PATH,
    envvar="TRITONKIT_TRITONSERVER",
    help="Use this tritonserver binary (e.g. /opt/tritonserver/bin/tritonserver in the NGC "
    "image) instead of the local install. Env: TRITONKIT_TRITONSERVER.",
)


@click.command()
@click.argument("repo", type=_PATH, default="model_repository")
@click.option("--http-port", type=int, default=8000, show_default=True)
@click.option("--grpc-port", type=int, default=8001, show_default=True)
@click.option("--metrics-port", type=int, default=8002, show_default=True)
@click.option("--timeout", type=float, default=180, show_default=True, help="Seconds to ready.")
@_TRITONSERVER
def serve(
    repo: Path,
    http_port: int,
    grpc_port: int,
    metrics_port: int,
    timeout: float,
    tritonserver: Path | None,
) -> None:
    """Serve a model repository with a real tritonserver on 127.0.0.1 until Ctrl-C.

    Without --tritonserver, the server is Triton 2.51 from the nvidia-pytriton wheel,
    installed on first use (see `tritonkit server install`); ONNX models run there on a
    Python-based `onnxruntime` backend that emulates Triton's ONNX Runtime backend on CPU.
    Models configured for KIND_GPU are loaded on CPU when no GPU is present, with a notice.

    \b
        tritonkit serve model_repository
        tritonkit serve model_repository --http-port 9000 --grpc-port 9001 --metrics-port 9002
    """
    from tritonkit.server import TritonServer, find_server
    from tritonkit.validate import validate_repository

    if not repo.is_dir():
        raise RepositoryError(f"{repo}: model repository folder not found: run tritonkit generate")
    for problem in validate_repository(repo):  # Triton has the last word; these are warnings
        console.print(f"[yellow]warning:[/] {problem}")
    install = find_server(tritonserver, log=lambda line: console.print(f"[dim]{line}[/]"))
    server = TritonServer(
        repo.resolve(), install, http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:  # Ctrl-C at any point, even while starting, stops the server cleanly
        with console.status("starting tritonserver"):
            server.start(timeout=timeout)
        for notice in server.loaded_notices:
            console.print(f"[yellow]notice:[/] {notice}")
        console.print(
            f"[green]ready[/]  HTTP http://{server.http_url}  gRPC {server.grpc_url}  "
            f"metrics http://{server.metrics_url}/metrics\n"
            f"log: {server.log_path}\nPress Ctrl-C to stop."
        )
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping tritonserver")
        server.stop()


@click.group()
def server() -> None:
    """Manage the local tritonserver installation.

    \b
        tritonkit server install
    """


@server.command()
@click.option("--force", is_flag=True, help="Reinstall even if present.")
@click.option("--cache-dir", type=_PATH, help="Where to install [default: ~/.cache/tritonkit].")
def install(force: bool, cache_dir: Path | None) -> None:
    """Install Triton 2.51 from the nvidia-pytriton wheel into the cache, with its own
    Python environment (numpy<2, onnxruntime, tokenizers) and the onnxruntime backend.

    \b
        tritonkit server install
    """
    from tritonkit.server import install_server

    result = install_server(cache_dir, force=force, log=lambda line: console.print(line))
    console.print(f"[green]installed[/] {result.tritonserver}")


COMMANDS = (serve, server)
