"""The `tritonkit` command: a thin Click layer over the library.

Every domain error (TritonkitError) is turned into one `Error: ...` line and a non-zero exit
here, in one place.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from tritonkit import __version__
from tritonkit.errors import TritonkitError


class _UserError(click.ClickException):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code  # type: ignore[misc]


def _terminated(signum: int, _frame: object) -> None:
    """SIGTERM (a pod stopping, `kill`) and SIGHUP (the terminal closed) unwind like Ctrl-C:
    staging folders are removed, servers stopped, and nothing half-written is left."""
    raise KeyboardInterrupt(f"signal {signum}")


class TritonkitGroup(click.Group):
    """A group whose commands report TritonkitError as a clean one-line error."""

    def invoke(self, ctx: click.Context) -> Any:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _terminated)
            if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:  # not under nohup
                signal.signal(signal.SIGHUP, _terminated)
        try:
            return super().invoke(ctx)
        except TritonkitError as e:
            raise _UserError(str(e), e.exit_code) from e


CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=TritonkitGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="tritonkit")
def main() -> None:
    """From a Hugging Face model folder to a verified Triton Inference Server deployment.

    \b
    Typical session:
        tritonkit generate ./my-model --task text-classification --name sentiment
        tritonkit serve model_repository
        tritonkit check --url 127.0.0.1:8000 --name sentiment ./my-model
    Or all of it on the embedded default model:
        tritonkit demo
    """


def _register() -> None:
    from tritonkit.cli import (
        check_cmd,
        demo_cmd,
        generate_cmd,
        helm_cmd,
        loadtest_cmd,
        optimize_cmd,
        server_cmd,
        tensorrt_cmd,
        tune_cmd,
    )

    modules = (
        generate_cmd,
        server_cmd,
        check_cmd,
        demo_cmd,
        loadtest_cmd,
        helm_cmd,
        optimize_cmd,
        tensorrt_cmd,
        tune_cmd,
    )
    for module in modules:
        for command in module.COMMANDS:
            main.add_command(command)


_register()
