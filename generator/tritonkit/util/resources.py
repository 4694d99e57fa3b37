"""Locate the data folders (templates/, loadtest/, helm/) in a wheel or in a source checkout."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from tritonkit.errors import TritonkitError

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
PACKAGED_DATA = _PACKAGE_DIR / "data"  # texts shipped inside the package (sentiment set, ...)


def data_dir(name: str) -> Path:
    """The folder `name`: under tritonkit/_data in a wheel, at the top level in a checkout."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent.parent / name):
        if candidate.is_dir():
            return candidate
    raise TritonkitError(
        f"tritonkit data folder '{name}' not found beside {_PACKAGE_DIR}: reinstall tritonkit"
    )


def triton_model_source(name: str) -> Path:
    """Source file of a module that is copied into a Triton repository or backend as model.py."""
    return _PACKAGE_DIR / "runtime" / f"{name}.py"


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """Installed versions of `names` ("not installed" for a missing one), for provenance files."""
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found
