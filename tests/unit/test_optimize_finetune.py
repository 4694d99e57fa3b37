"""The fine-tuning recipe on a tiny model: a real classifier folder, cached by a content hash."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tritonkit.errors import OptimizeError
from tritonkit.model.inspect import inspect_model_dir
from tritonkit.variants.accuracy import SENTIMENT_TRAIN
from tritonkit.variants.finetune import FinetuneParams, cache_key, finetune

QUICK = FinetuneParams(epochs=1, max_steps=2, batch_size=8)


def test_finetune_writes_a_classifier_and_caches_it(
    tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    base = tiny_model_dirs["feature-extraction"]
    first = finetune(base, tmp_path, QUICK)
    assert not first.cached
    assert first.record["steps"] == 2
    assert 0.0 <= first.eval_accuracy <= 1.0
    info = inspect_model_dir(first.model_dir, "text-classification")
    assert info.labels == ("negative", "positive")
    again = finetune(base, tmp_path, QUICK)
    assert again.cached and again.model_dir == first.model_dir
    assert again.eval_accuracy == first.eval_accuracy
    assert [p.name for p in tmp_path.iterdir()] == [first.model_dir.name]  # no temp leftovers


def test_the_cache_key_follows_data_and_parameters(
    tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    base = tiny_model_dirs["feature-extraction"]
    key = cache_key(base, SENTIMENT_TRAIN, QUICK)
    assert key == cache_key(base, SENTIMENT_TRAIN, QUICK)
    assert key != cache_key(base, SENTIMENT_TRAIN, replace(QUICK, seed=1))
    other = tmp_path / "train.jsonl"
    other.write_text(
        SENTIMENT_TRAIN.read_text(encoding="utf-8") + '{"text": "x", "label": "positive"}\n'
    )
    assert key != cache_key(base, other, QUICK)


def test_bad_training_labels(tmp_path: Path, tiny_model_dirs: dict[str, Path]) -> None:
    train = tmp_path / "train.jsonl"
    train.write_text('{"text": "fine", "label": "neutral"}\n', encoding="utf-8")
    with pytest.raises(OptimizeError) as info:
        finetune(tiny_model_dirs["feature-extraction"], tmp_path / "cache", QUICK, train)
    assert str(info.value) == (
        f"{train}: row 1: label 'neutral' is not one of negative, positive: fix the file"
    )
    assert not any((tmp_path / "cache").iterdir())
