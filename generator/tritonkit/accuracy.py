"""The accuracy gate: every variant against the fp32 PyTorch reference on an evaluation set.

Each task has one gated figure, expressed as a drop in points so that one `max_accuracy_drop`
reads the same everywhere:

| task | gated drop (points) | default max |
|---|---|---|
| feature-extraction | 100 x (1 - min cosine to the reference) | 2.0 (min cosine 0.98) |
| text-classification, labelled set | the larger of the accuracy and macro-F1 drops (x100) | 1.0 |
| text-classification, texts only | % of texts whose top label differs | 1.0 |
| token-classification | % of real tokens whose label differs | 1.0 |

The variant runs in batches padded to their longest text, as Triton's dynamic batcher feeds it:
padding changes the per-tensor ranges of dynamic int8 quantization, so single texts would flatter
it.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tritonkit.errors import OptimizeError

if TYPE_CHECKING:
    from tritonkit.export import ModelInfo

DATA_DIR = Path(__file__).resolve().parent / "data"
SENTIMENT_TRAIN = DATA_DIR / "sentiment" / "train.jsonl"
SENTIMENT_EVAL = DATA_DIR / "sentiment" / "eval.jsonl"
GENERAL_TEXTS = DATA_DIR / "texts.txt"
DEFAULT_MAX_DROP = {
    "feature-extraction": 2.0,
    "text-classification": 1.0,
    "token-classification": 1.0,
}
EVAL_BATCH_SIZE = 16


@dataclass(frozen=True)
class EvalSet:
    """Texts, and one label per text when the file has them."""

    source: str
    texts: tuple[str, ...]
    labels: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Accuracy:
    """A variant's figures against the reference, and the gate's verdict on them."""

    metric: str
    drop: float
    max_drop: float
    passed: bool
    reason: str
    figures: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "drop_points": _round(self.drop),
            "max_drop_points": self.max_drop,
            "passed": self.passed,
            "reason": self.reason,
            "figures": {k: _round(v) for k, v in self.figures.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Accuracy:
        """The inverse of as_dict (raises KeyError/TypeError on a malformed record)."""
        return cls(
            metric=str(data["metric"]),
            drop=float(data["drop_points"]),
            max_drop=float(data["max_drop_points"]),
            passed=bool(data["passed"]),
            reason=str(data["reason"]),
            figures={str(k): float(v) for k, v in data["figures"].items()},
        )


def _round(value: float) -> float:
    return round(value, 6) if math.isfinite(value) else value


def read_rows(path: Path) -> list[tuple[str, str | None]]:
    """(text, label or None) rows of a .txt (one text a line), .jsonl or .csv file."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OptimizeError(f"{path}: file not found: check the path") from None
    except (OSError, UnicodeDecodeError) as e:
        raise OptimizeError(f"{path}: cannot be read as UTF-8 text ({e}): fix the file") from None
    if path.suffix == ".jsonl":
        rows = _jsonl_rows(path, raw)
    elif path.suffix == ".csv":
        rows = _csv_rows(path, raw)
    else:
        rows = [(line, None) for line in raw.splitlines() if line.strip()]
    if not rows:
        raise OptimizeError(
            f"{path}: no texts in the file: add one text a line (or .jsonl/.csv rows with 'text')"
        )
    return rows


def _jsonl_rows(path: Path, raw: str) -> list[tuple[str, str | None]]:
    rows: list[tuple[str, str | None]] = []
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            raise OptimizeError(f"{path}:{number}: not valid JSON: fix the line") from None
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise OptimizeError(f"{path}:{number}: expected an object with a string 'text'")
        label = item.get("label")
        rows.append((item["text"], None if label is None else str(label)))
    return rows


def _csv_rows(path: Path, raw: str) -> list[tuple[str, str | None]]:
    reader = csv.DictReader(raw.splitlines())
    if reader.fieldnames is None or "text" not in reader.fieldnames:
        raise OptimizeError(f"{path}: the CSV header has no 'text' column: add 'text[,label]'")
    has_label = "label" in reader.fieldnames
    return [
        (row["text"] or "", row["label"] if has_label else None)
        for row in reader
        if (row["text"] or "").strip()
    ]


def read_texts(path: Path) -> tuple[str, ...]:
    """The texts of a calibration or evaluation file (labels ignored)."""
    return tuple(text for text, _ in read_rows(path))


def default_eval_texts() -> tuple[str, ...]:
    """The packaged evaluation texts: general sentences, then the sentiment eval split."""
    return read_texts(GENERAL_TEXTS) + read_texts(SENTIMENT_EVAL)


def read_eval_set(path: Path | None, task: str, model_labels: Sequence[str]) -> EvalSet:
    """The evaluation set: `path`, or the packaged texts. Labels must be the model's own."""
    if path is None:
        return EvalSet("tritonkit's packaged texts", default_eval_texts())
    rows = read_rows(path)
    labelled = [label is not None for _, label in rows]
    if not any(labelled):
        return EvalSet(str(path), tuple(text for text, _ in rows))
    if task != "text-classification":
        raise OptimizeError(
            f"{path}: has labels, which only apply to text-classification: "
            "remove the label column or use --task text-classification"
        )
    if not all(labelled):
        missing = labelled.index(False) + 1
        raise OptimizeError(f"{path}: row {missing} has no label: label every row or none")
    known = set(model_labels)
    for number, (_, label) in enumerate(rows, 1):
        if label not in known:
            raise OptimizeError(
                f"{path}: row {number}: label '{label}' is not one of the model's labels "
                f"({', '.join(model_labels)}): fix the file or use the model it was written for"
            )
    return EvalSet(
        str(path), tuple(text for text, _ in rows), tuple(str(label) for _, label in rows)
    )


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (ranks by order; ties are vanishingly rare for float scores)."""
    if len(a) < 2:
        return 1.0
    rank_a = np.argsort(np.argsort(a)).astype(np.float64)
    rank_b = np.argsort(np.argsort(b)).astype(np.float64)
    return float(np.corrcoef(rank_a, rank_b)[0, 1])


def macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Mean F1 over the classes that occur in `truth` or `predicted`."""
    scores = []
    for label in sorted(set(truth) | set(predicted)):
        tp = sum(t == label and p == label for t, p in zip(truth, predicted, strict=True))
        fp = sum(t != label and p == label for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == label and p != label for t, p in zip(truth, predicted, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def embedding_figures(got: np.ndarray, want: np.ndarray) -> dict[str, float]:
    norms = np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1)
    cosine = np.sum(got * want, axis=1) / np.maximum(norms, 1e-12)
    upper = np.triu_indices(len(got), 1)
    return {
        "min_cosine": float(np.min(cosine)),
        "mean_cosine": float(np.mean(cosine)),
        "spearman_pairwise": spearman((got @ got.T)[upper], (want @ want.T)[upper]),
    }


def classification_figures(
    got: np.ndarray, want: np.ndarray, labels: Sequence[str], truth: Sequence[str] | None
) -> dict[str, float]:
    top_got, top_want = np.argmax(got, axis=1), np.argmax(want, axis=1)
    figures = {
        "top_label_agreement": float(np.mean(top_got == top_want)),
        "max_prob_diff": float(np.max(np.abs(got - want))),
    }
    if truth is not None:
        predicted = [labels[i] for i in top_got]
        reference = [labels[i] for i in top_want]
        figures["reference_accuracy"] = float(
            np.mean([p == t for p, t in zip(reference, truth, strict=True)])
        )
        figures["accuracy"] = float(
            np.mean([p == t for p, t in zip(predicted, truth, strict=True)])
        )
        figures["reference_macro_f1"] = macro_f1(truth, reference)
        figures["macro_f1"] = macro_f1(truth, predicted)
    return figures


def token_figures(
    got: Sequence[np.ndarray], want: Sequence[np.ndarray], lengths: Sequence[int]
) -> dict[str, float]:
    same = sum(int(np.sum(g[:n] == w[:n])) for g, w, n in zip(got, want, lengths, strict=True))
    return {"token_label_agreement": same / max(sum(lengths), 1)}


def summary(figures: dict[str, float]) -> str:
    """The figures in one short line (for tables)."""
    parts = []
    if "min_cosine" in figures:
        parts.append(f"min cos {figures['min_cosine']:.4f}, mean {figures['mean_cosine']:.4f}")
        parts.append(f"spearman {figures['spearman_pairwise']:.4f}")
    if "accuracy" in figures:
        parts.append(
            f"acc {100 * figures['accuracy']:.1f}% (ref {100 * figures['reference_accuracy']:.1f}%)"
        )
        parts.append(
            f"macro-F1 {figures['macro_f1']:.3f} (ref {figures['reference_macro_f1']:.3f})"
        )
    if "top_label_agreement" in figures:
        parts.append(f"top-1 agree {100 * figures['top_label_agreement']:.1f}%")
    if "token_label_agreement" in figures:
        parts.append(f"token agree {100 * figures['token_label_agreement']:.2f}%")
    return ", ".join(parts)


def gate(task: str, figures: dict[str, float], max_drop: float | None) -> Accuracy:
    """The task's gated drop in points, and pass/fail against `max_drop` (or the default)."""
    limit = DEFAULT_MAX_DROP[task] if max_drop is None else max_drop
    if task == "feature-extraction":
        value = figures["min_cosine"]
        metric, drop = "min cosine", 100 * (1 - value)
        shown = f"min cosine {value:.4f} (floor {1 - limit / 100:.4f})"
    elif task == "text-classification" and "accuracy" in figures:
        value = figures["accuracy"]
        metric = "accuracy"
        accuracy_drop = 100 * (figures["reference_accuracy"] - value)
        f1_drop = 100 * (figures["reference_macro_f1"] - figures["macro_f1"])
        drop = max(accuracy_drop, f1_drop)
        shown = (
            f"accuracy {100 * value:.1f}% vs {100 * figures['reference_accuracy']:.1f}%, "
            f"macro-F1 {figures['macro_f1']:.3f} vs {figures['reference_macro_f1']:.3f}"
        )
    else:
        key = "top_label_agreement" if task == "text-classification" else "token_label_agreement"
        value = figures[key]
        metric, drop = key.replace("_", " "), 100 * (1 - value)
        shown = f"{metric} {100 * value:.2f}%"
    finite = all(math.isfinite(v) for v in figures.values())
    passed = finite and drop <= limit + 1e-9
    verdict = "pass" if passed else "FAIL"
    reason = f"{verdict}: {shown}, drop {drop:.2f} points (max {limit:g})"
    if not finite:
        reason = "FAIL: the variant produced NaN or infinite outputs"
    return Accuracy(metric, drop, limit, passed, reason, figures)


@dataclass(frozen=True)
class Reference:
    """The evaluation set encoded once, and the PyTorch outputs every variant is held to."""

    eval_set: EvalSet
    outputs: dict[str, list[np.ndarray]]  # one row per text, keyed by ONNX output name
    batches: tuple[dict[str, np.ndarray], ...]  # the variants' feeds, EVAL_BATCH_SIZE texts each
    lengths: tuple[int, ...]  # real tokens per text


def load_tokenizer(model_dir: Path) -> Any:
    """The model folder's fast tokenizer (transformers), as the PyTorch reference uses it."""
    from transformers import AutoTokenizer

    tokenizer_class: Any = AutoTokenizer
    return tokenizer_class.from_pretrained(model_dir, use_fast=True, local_files_only=True)


def encode(
    tokenizer: Any, input_names: Sequence[str], texts: Sequence[str], max_length: int
) -> dict[str, np.ndarray]:
    """int64 feeds padded to the longest text, zeros for token_type_ids when the tokenizer does
    not produce them (as the reference encodes)."""
    encoded = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length)
    ids = np.asarray(encoded["input_ids"], dtype=np.int64)
    return {
        name: np.asarray(encoded[name], dtype=np.int64) if name in encoded else np.zeros_like(ids)
        for name in input_names
    }


REFERENCE_CHUNK = 128  # texts per eager PyTorch batch (bounds its attention memory)


def prepare_reference(info: ModelInfo, eval_set: EvalSet, max_length: int) -> Reference:
    """Run the fp32 PyTorch reference on the evaluation set and encode the variants' batches."""
    from tritonkit.export import reference_outputs

    rows: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(eval_set.texts), REFERENCE_CHUNK):
        chunk = eval_set.texts[start : start + REFERENCE_CHUNK]
        outputs = reference_outputs(info.model_dir, info.task, chunk, max_length=max_length)
        for name, array in outputs.items():
            rows.setdefault(name, []).extend(array)
    tokenizer = load_tokenizer(info.model_dir)
    batches: list[dict[str, np.ndarray]] = []
    lengths: list[int] = []
    for start in range(0, len(eval_set.texts), EVAL_BATCH_SIZE):
        chunk = eval_set.texts[start : start + EVAL_BATCH_SIZE]
        feeds = encode(tokenizer, info.input_names, chunk, max_length)
        batches.append(feeds)
        lengths.extend(int(n) for n in feeds["attention_mask"].sum(axis=1))
    return Reference(eval_set, rows, tuple(batches), tuple(lengths))


def run_rows(
    onnx_path: Path, batches: Sequence[dict[str, np.ndarray]], names: Sequence[str], threads: int
) -> dict[str, list[np.ndarray]]:
    """The model's outputs for each batch, split into one row per text."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    try:
        session = onnxruntime.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        rows: dict[str, list[np.ndarray]] = {name: [] for name in names}
        for feeds in batches:
            for name, array in zip(names, session.run(list(names), feeds), strict=True):
                rows[name].extend(array)
    except Exception as e:  # onnxruntime raises its own types for graphs it cannot run
        raise OptimizeError(
            f"{onnx_path}: ONNX Runtime cannot run this variant ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:200]}): rebuild it or leave it out of --variants"
        ) from e
    return rows


def score(
    onnx_path: Path,
    info: ModelInfo,
    reference: Reference,
    max_drop: float | None,
    threads: int,
) -> Accuracy:
    """Run a variant on the evaluation set and gate it against the reference."""
    names = list(reference.outputs)
    got = run_rows(onnx_path, reference.batches, names, threads)
    want = reference.outputs
    if info.task == "feature-extraction":
        figures = embedding_figures(np.stack(got["embeddings"]), np.stack(want["embeddings"]))
    elif info.task == "text-classification":
        figures = classification_figures(
            np.stack(got["probabilities"]),
            np.stack(want["probabilities"]),
            info.labels,
            reference.eval_set.labels,
        )
    else:
        figures = token_figures(got["label_ids"], want["label_ids"], reference.lengths)
    return gate(info.task, figures, max_drop)
