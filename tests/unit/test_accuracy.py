"""The accuracy gate: evaluation files, figures, pass/fail, and a deliberately bad variant."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from tritonkit.errors import AccuracyGateError, OptimizeError
from tritonkit.model.inspect import inspect_model_dir
from tritonkit.spec import OptimizeSpec
from tritonkit.tasks import get_task
from tritonkit.tasks.classification import macro_f1
from tritonkit.tasks.embeddings import spearman
from tritonkit.util.texts import TextFileError, read_rows
from tritonkit.variants.accuracy import (
    SENTIMENT_EVAL,
    SENTIMENT_TRAIN,
    Accuracy,
    default_eval_texts,
    gate,
    prepare_reference,
    read_eval_set,
    score,
    summary,
)
from tritonkit.variants.build import Variant, build_variants, choose

LABELS = ("negative", "positive")


def test_packaged_sentiment_set_is_balanced_and_disjoint() -> None:
    train, evaluation = read_rows(SENTIMENT_TRAIN), read_rows(SENTIMENT_EVAL)
    assert (len(train), len(evaluation)) == (300, 140)
    for rows in (train, evaluation):
        labels = [label for _, label in rows]
        assert labels.count("positive") == labels.count("negative")
    assert not {t for t, _ in train} & {t for t, _ in evaluation}
    assert len(default_eval_texts()) == 200


def test_reads_txt_jsonl_csv(tmp_path: Path) -> None:
    txt = tmp_path / "a.txt"
    txt.write_text("one\n\n two \n", encoding="utf-8")
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"text": "x", "label": "positive"}\n\n{"text": "y", "label": 1}\n', "utf-8")
    csv = tmp_path / "a.csv"
    csv.write_text('text,label\n"hello, world",negative\n,positive\n', encoding="utf-8")
    assert read_rows(txt) == [("one", None), (" two ", None)]
    assert read_rows(jsonl) == [("x", "positive"), ("y", "1")]
    assert read_rows(csv) == [("hello, world", "negative")]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.txt", None, "file not found: check the path"),
        ("empty.txt", "\n \n", "no texts in the file: add one text per line"),
        ("bad.jsonl", '{"text": "a"}\n{oops\n', "2: not valid JSON: fix the line"),
        ("bad2.jsonl", '{"txt": "a"}\n', "1: expected an object with a string 'text'"),
        ("bad.csv", "sentence,label\na,b\n", "the CSV header has no 'text' column"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(TextFileError) as info:
        read_rows(path)
    separator = ":" if message[0].isdigit() else ": "
    assert str(info.value).startswith(f"{path}{separator}{message}")


def test_eval_labels_must_be_the_models(tmp_path: Path) -> None:
    path = tmp_path / "eval.jsonl"
    path.write_text('{"text": "a", "label": "positive"}\n{"text": "b", "label": "neutral"}\n')
    with pytest.raises(OptimizeError) as info:
        read_eval_set(path, "text-classification", LABELS)
    assert str(info.value) == (
        f"{path}: row 2: label 'neutral' is not one of the model's labels (negative, positive): "
        "fix the file or use the model it was written for"
    )
    with pytest.raises(OptimizeError, match="labels, which only apply to text-classification"):
        read_eval_set(path, "feature-extraction", ())
    path.write_text('{"text": "a", "label": "positive"}\n{"text": "b"}\n')
    with pytest.raises(OptimizeError, match="row 2 has no label: label every row or none"):
        read_eval_set(path, "text-classification", LABELS)
    labelled = read_eval_set(SENTIMENT_EVAL, "text-classification", LABELS)
    assert labelled.labels is not None and len(labelled.labels) == 140


def test_figures() -> None:
    assert spearman(np.array([1.0, 2, 3, 4]), np.array([10.0, 20, 30, 40])) == pytest.approx(1)
    assert spearman(np.array([1.0, 2, 3]), np.array([3.0, 2, 1])) == pytest.approx(-1)
    assert macro_f1(["a", "a", "b", "b"], ["a", "b", "b", "b"]) == pytest.approx((2 / 3 + 0.8) / 2)
    vectors = np.eye(3)
    rotated = vectors + 0.01
    figures = get_task("feature-extraction").figures(
        {"embeddings": list(rotated)}, {"embeddings": list(vectors)}, (), None, ()
    )
    assert 0.99 < figures["min_cosine"] <= figures["mean_cosine"] < 1
    probabilities = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]])
    flipped = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    cls = get_task("text-classification").figures(
        {"probabilities": list(flipped)},
        {"probabilities": list(probabilities)},
        LABELS,
        ["negative", "positive", "negative"],
        (),
    )
    assert cls["top_label_agreement"] == pytest.approx(2 / 3)
    assert cls["max_prob_diff"] == pytest.approx(0.2)
    assert cls["reference_accuracy"] == pytest.approx(2 / 3)
    assert cls["accuracy"] == pytest.approx(1 / 3)
    assert "acc 33.3% (ref 66.7%)" in summary(cls)


@pytest.mark.parametrize(
    ("task", "figures", "max_drop", "passed", "reason"),
    [
        (
            "feature-extraction",
            {"min_cosine": 0.985, "mean_cosine": 0.99, "spearman_pairwise": 0.99},
            None,
            True,
            "pass: min cosine 0.9850 (floor 0.9800), drop 1.50 points (max 2)",
        ),
        (
            "feature-extraction",
            {"min_cosine": 0.985, "mean_cosine": 0.99, "spearman_pairwise": 0.99},
            1.0,
            False,
            "FAIL: min cosine 0.9850 (floor 0.9900), drop 1.50 points (max 1)",
        ),
        (
            "text-classification",
            {
                "top_label_agreement": 0.9,
                "max_prob_diff": 0.3,
                "reference_accuracy": 0.92,
                "accuracy": 0.9,
                "reference_macro_f1": 0.9,
                "macro_f1": 0.9,
            },
            None,
            False,
            "FAIL: accuracy 90.0% vs 92.0%, macro-F1 0.900 vs 0.900, drop 2.00 points (max 1)",
        ),
        (
            "text-classification",
            {"top_label_agreement": 0.995, "max_prob_diff": 0.3},
            None,
            True,
            "pass: top label agreement 99.50%, drop 0.50 points (max 1)",
        ),
        (
            "token-classification",
            {"token_label_agreement": math.nan},
            5.0,
            False,
            "FAIL: the variant produced NaN or infinite outputs",
        ),
    ],
)
def test_gate(
    task: str, figures: dict[str, float], max_drop: float | None, passed: bool, reason: str
) -> None:
    verdict = gate(task, figures, max_drop)
    assert (verdict.passed, verdict.reason) == (passed, reason)
    assert Accuracy.from_dict(verdict.as_dict()).reason == reason


def _sabotage(source: Path, target: Path) -> None:
    """The same graph with every weight matrix (embeddings included) replaced by noise."""
    model = onnx.load(str(source))
    rng = np.random.default_rng(0)
    for init in model.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT and len(init.dims) == 2:
            array = numpy_helper.to_array(init)
            noise = rng.standard_normal(array.shape).astype(array.dtype) * array.std()
            init.CopyFrom(numpy_helper.from_array(noise, init.name))
    onnx.save(model, str(target))


def test_a_bad_variant_is_rejected_and_never_chosen(
    tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    model_dir = tiny_model_dirs["feature-extraction"]
    eval_file = tmp_path / "eval.txt"
    eval_file.write_text("great movie\nterrible food\ni love it\nbad service\nhello world\n")
    options = OptimizeSpec(variants=("fp32", "int8-dynamic"), eval_file=eval_file)
    variants = build_variants(model_dir, "feature-extraction", tmp_path / "v", options)
    assert all(v.passed for v in variants)
    bad_path = tmp_path / "bad" / "model.onnx"
    bad_path.parent.mkdir()
    _sabotage(tmp_path / "v" / "fp32" / "model.onnx", bad_path)
    info = inspect_model_dir(model_dir, "feature-extraction")
    reference = prepare_reference(info, read_eval_set(eval_file, info.task, ()), 64)
    verdict = score(bad_path, info, reference, max_drop=None, threads=1)
    assert not verdict.passed
    assert verdict.reason.startswith("FAIL: min cosine ")
    assert verdict.figures["min_cosine"] < 0.9
    good = score(tmp_path / "v" / "fp32" / "model.onnx", info, reference, None, threads=1)
    assert good.passed and good.figures["min_cosine"] > 0.9999
    bad = Variant("int8-static", bad_path, {"device": "cpu"}, verdict)
    pool = [*variants, bad]
    # auto ignores the failing variant even when it is measured fastest
    speed = {"int8-static": 9.0, "int8-dynamic": 2.0, "fp32": 1.0}
    assert choose(pool, "cpu", speed, "auto").name == "int8-dynamic"
    with pytest.raises(AccuracyGateError) as info_error:
        choose(pool, "cpu", {}, "int8-static")
    assert str(info_error.value) == (
        f"variant int8-static failed the accuracy gate ({verdict.reason}): deploy another "
        "--variant, or raise --max-accuracy-drop if that loss is acceptable"
    )
    with pytest.raises(AccuracyGateError, match=r"^no variant passed the accuracy gate for cpu"):
        choose([bad], "cpu", {}, "auto")


def test_choose_without_measurements_prefers_the_later_variant() -> None:
    passed = Accuracy("m", 0.0, 1.0, True, "pass")

    def variant(name: str, device: str) -> Variant:
        return Variant(name, Path(name), {"device": device}, passed)

    pool = [variant("fp32", "gpu"), variant("fp32-fused", "gpu"), variant("fp16", "gpu")]
    assert choose(pool, "gpu", {}, "auto").name == "fp16"
    assert choose(pool[:2], "gpu", {}, "auto").name == "fp32-fused"
    with pytest.raises(OptimizeError, match=r"^variant 'int8-dynamic' was not built"):
        choose(pool, "gpu", {}, "int8-dynamic")
