"""Every command has --help with an example."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from tritonkit import __version__
from tritonkit.cli import main


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        found.append(path)
        if isinstance(command, click.Group):
            found.extend(all_commands(command, path))
    return found


@pytest.mark.parametrize("path", all_commands(main), ids=" ".join)
def test_help_has_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "-h"])
    assert result.exit_code == 0
    assert "Usage:" in result.output
    assert f"tritonkit {path[0]}" in result.output.split("Options:")[0]


def test_version_and_group_help() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.output == f"tritonkit, version {__version__}\n"
    result = CliRunner().invoke(main, ["--help"])
    for command in ("generate", "validate", "serve", "check", "demo", "export", "server"):
        assert command in result.output


def test_the_readme_shows_the_reference_spec() -> None:
    """The README's spec block is `tritonkit spec`'s output: a key added to the spec must be
    documented there (regenerate the block with `tritonkit spec`)."""
    from pathlib import Path

    from tritonkit.spec.reference import reference_yaml

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert f"```yaml\n{reference_yaml()}```\n" in readme
