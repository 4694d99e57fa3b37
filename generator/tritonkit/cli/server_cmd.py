"""`tritonkit serve` and `tritonkit server install`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from tritonkit.cli.common import PATH, SPEC_OPTION, console, progress_line, repository_folder
from tritonkit.cli.options import add_flags, load_section, section_flags
from tritonkit.spec import ServeSpec

SERVE_FLAGS = section_flags(ServeSpec, "serve")
_PATH = PATH
_TRITONSERVER = click.option(
    "--tritonserver",
    type=_PATH,
    envvar="TRITONKIT_TRITONSERVER",
    help="Use this tritonserver binary (e.g. /opt/tritonserver/bin/tritonserver in the NGC "
    "image) instead of the local install. Env: TRITONKIT_TRITONSERVER.",
)


@click.command()
@click.argument("repo", type=PATH, required=False)
@SPEC_OPTION
@add_flags(SERVE_FLAGS)
@_TRITONSERVER
def serve(
    repo: Path | None, spec_file: Path | None, tritonserver: Path | None, **values: Any
) -> None:
    """Serve a model repository with a real tritonserver on 127.0.0.1 until Ctrl-C.

    Without --tritonserver, the server is Triton 2.51 from the nvidia-pytriton wheel,
    installed on first use (see `tritonkit server install`); ONNX models run there on a
    Python-based `onnxruntime` backend that emulates Triton's ONNX Runtime backend on CPU.
    Models configured for KIND_GPU are loaded on CPU when no GPU is present, with a notice.
    The control APIs (model loading, configs, shared memory, logging, trace) are closed to
    other clients: tritonkit holds a per-run key. While serving, tritonkit watches the
    deployment (a canary inference per model, its Python stubs) and reloads a model whose
    stub died; it exits non-zero with the reason when the server dies or a model cannot be
    recovered. A repository that `tritonkit validate` refuses is not served.

    \b
        tritonkit serve model_repository
        tritonkit serve model_repository --http-port 9000 --grpc-port 9001 --metrics-port 9002
    """
    from tritonkit.pipeline.serve import prepare_server, watch

    options = load_section(ServeSpec, "serve", spec_file, SERVE_FLAGS, values)
    repo = repository_folder(repo, spec_file)
    server = prepare_server(repo, options, tritonserver, progress_line)
    try:  # Ctrl-C, SIGTERM or SIGHUP at any point, even while starting, stop the server
        with console.status("starting tritonserver"):
            server.start(timeout=options.timeout)
        for notice in server.loaded_notices:
            console.print(f"[yellow]notice:[/] {notice}")
        console.print(
            f"[green]ready[/]  HTTP http://{server.http_url}  gRPC {server.grpc_url}  "
            f"metrics http://{server.metrics_url}/metrics\n"
            f"log: {server.log_path}\nPress Ctrl-C to stop."
        )
        watch(server, options, progress_line)
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
    from tritonkit.server.install import install_server

    result = install_server(cache_dir, force=force, log=lambda line: console.print(line))
    console.print(f"[green]installed[/] {result.tritonserver}")


COMMANDS = (serve, server)
