"""Helpers shared by the command modules."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.console import Console

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)
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
