"""The built wheel carries templates/ (and loadtest/, helm/) and works outside the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("tritonkit-*.whl")
    return path


def test_wheel_contains_data_folders(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "tritonkit/_data/templates/onnx_model.pbtxt.j2" in names
    assert "tritonkit/_data/templates/ensemble.pbtxt.j2" in names
    assert "tritonkit/_data/loadtest/README.md" in names
    assert "tritonkit/_data/helm/README.md" in names
    assert "tritonkit/runtime/tokenizer.py" in names


def test_installed_command_finds_templates_outside_the_source_tree(
    wheel: Path, tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import tritonkit.util.resources as r; print(r.data_dir('templates'))",
        ],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert where == str(site / "tritonkit" / "_data" / "templates")
    result = subprocess.run(
        [
            str(site / "bin" / "tritonkit"),
            "generate",
            str(tiny_model_dirs["text-classification"]),
            "--task",
            "text-classification",
            "--name",
            "wheeltest",
            "-o",
            str(tmp_path / "repo"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert (tmp_path / "repo" / "wheeltest" / "config.pbtxt").is_file()
