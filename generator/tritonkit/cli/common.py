"""Helpers shared by the command modules."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console


def _width(stream: object) -> int | None:
    """Rich lays out for 80 columns when output is not a terminal (CI logs, `| tee`), which
    wraps every table; there, use 120 unless COLUMNS says otherwise. A terminal: its own size."""
    isatty = getattr(stream, "isatty", None)
    if "COLUMNS" in os.environ or (callable(isatty) and isatty()):
        return None
    return 120


class _Console(Console):
    """Messages (plain strings) stay one line: the terminal wraps them, a log keeps them whole
    and greppable. Tables and other renderables are laid out for the width as usual."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if "soft_wrap" not in kwargs and all(isinstance(o, str) for o in objects):
            kwargs["soft_wrap"] = True
        super().print(*objects, **kwargs)


console = _Console(stderr=False, highlight=False, width=_width(sys.stdout))
err_console = _Console(stderr=True, highlight=False, width=_width(sys.stderr))
PATH = click.Path(path_type=Path)
SPEC_OPTION = click.option(
    "--spec", "spec_file", type=PATH, help="Deployment spec (YAML); flags override its keys."
)


def offline() -> None:
    """Nothing may download from a hub: models come from local folders only."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def progress_line(line: str) -> None:
    console.print(f"[dim]{line}[/]")


def repository_folder(repo: Path | None, spec_file: Path | None) -> Path:
    """REPO as given, else the spec's `output`, else model_repository."""
    if repo is not None:
        return repo
    if spec_file is not None:
        from tritonkit.spec import read_spec_file

        output = read_spec_file(spec_file).get("output")
        if isinstance(output, str):
            return Path(output)
    return Path("model_repository")
