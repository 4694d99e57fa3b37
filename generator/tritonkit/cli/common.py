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
