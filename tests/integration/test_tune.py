"""`tritonkit tune` on the real local tritonserver (short trials on a tiny model)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tritonkit.repository.plan import plan_from_repository
from tritonkit.repository.validate import validate_repository
from tritonkit.tune.search import read_settings

pytestmark = pytest.mark.integration
TRITONKIT = [sys.executable, "-m", "tritonkit"]


@pytest.fixture()
def repo(cls_repo: Path) -> Path:
    return cls_repo


def test_tune_writes_only_a_confirmed_winner(repo: Path, tmp_path: Path) -> None:
    default = read_settings(plan_from_repository(repo, "cls"))
    report = tmp_path / "report"
    result = subprocess.run(
        [
            *TRITONKIT,
            "tune",
            str(repo),
            "--name",
            "cls",
            "--users",
            "4",
            "--trial",
            "2s",
            "--budget",
            "45s",
            "--report",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "200", **_env()},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((report / "tune.json").read_text())
    assert (report / "tune.png").stat().st_size > 1000
    assert "| default |" in (report / "tune.md").read_text()
    trials = data["trials"]
    assert trials[0]["stage"] == "default"
    assert all(t["error_rate"] == 0 for t in trials)
    assert all(t["texts_per_s"] > 0 for t in trials)
    assert validate_repository(repo) == []
    now = read_settings(plan_from_repository(repo, "cls"))
    if data["improved"]:
        confirmation = data["confirmation_texts_per_s"]
        assert confirmation["best"] > confirmation["default"]
        assert now != default
    else:
        assert now == default
    assert data["written"] == data["improved"]


def test_budget_too_short_for_one_trial(repo: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *TRITONKIT,
            "tune",
            str(repo),
            "--name",
            "cls",
            "--trial",
            "10s",
            "--budget",
            "20s",
            "--report",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
    )
    assert result.returncode == 1
    assert result.stderr == (
        "Error: --budget 20s is too short for one trial: each takes about 14s and tuning "
        "needs at least 42s; raise --budget\n"
    )


def test_unknown_deployment_name(repo: Path) -> None:
    result = subprocess.run(
        [*TRITONKIT, "tune", str(repo), "--name", "nope"],
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: {repo}: no ensemble 'nope' (ensembles: cls): --name must name a deployment "
        "made by tritonkit\n"
    )


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)
