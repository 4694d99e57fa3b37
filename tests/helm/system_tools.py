"""Debian tools the chart tests run for real: prometheus and promtool (package `prometheus`) and
bwrap (package `bubblewrap`). `make system-tools` installs them and `make test` depends on it; a
test that needs one fails (never skips) when it is missing, saying so."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

PACKAGES = {"prometheus": "prometheus", "promtool": "prometheus", "bwrap": "bubblewrap"}


def require(tool: str) -> Path:
    """The tool's path, or a test failure that says how to install it."""
    found = shutil.which(tool)
    if found is None:
        pytest.fail(
            f"{tool} is not installed (Debian package {PACKAGES[tool]}): run `make system-tools`",
            pytrace=False,
        )
    return Path(found)
