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

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tritonkit.errors import OptimizeError
from tritonkit.model.runners import TorchModel, encode, load_tokenizer
from tritonkit.tasks import get_task
from tritonkit.util.resources import PACKAGED_DATA
from tritonkit.util.texts import read_rows, read_texts

if TYPE_CHECKING:
    from tritonkit.model.inspect import ModelInfo

SENTIMENT_TRAIN = PACKAGED_DATA / "sentiment" / "train.jsonl"
SENTIMENT_EVAL = PACKAGED_DATA / "sentiment" / "eval.jsonl"
GENERAL_TEXTS = PACKAGED_DATA / "texts.txt"
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


def default_eval_texts() -> tuple[str, ...]:
    """The packaged evaluation texts: general sentences, then the sentiment eval split."""
    return (*read_texts(GENERAL_TEXTS), *read_texts(SENTIMENT_EVAL))


def read_eval_set(path: Path | None, task: str, model_labels: Sequence[str]) -> EvalSet:
    """The evaluation set: `path`, or the packaged texts. Labels must be the model's own."""
    if path is None:
        return EvalSet("tritonkit's packaged texts", default_eval_texts())
    rows = read_rows(path)
    labelled = [label is not None for _, label in rows]
    if not any(labelled):
        return EvalSet(str(path), tuple(text for text, _ in rows))
    if not get_task(task).label_output:
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
    record = get_task(task)
    limit = record.default_max_drop if max_drop is None else max_drop
    found = record.gate_figure(figures, limit)
    finite = all(math.isfinite(v) for v in figures.values())
    passed = finite and found.drop <= limit + 1e-9
    verdict = "pass" if passed else "FAIL"
    reason = f"{verdict}: {found.shown}, drop {found.drop:.2f} points (max {limit:g})"
    if not finite:
        reason = "FAIL: the variant produced NaN or infinite outputs"
    return Accuracy(found.metric, found.drop, limit, passed, reason, figures)


@dataclass(frozen=True)
class Reference:
    """The evaluation set encoded once, and the PyTorch outputs every variant is held to."""

    eval_set: EvalSet
    outputs: dict[str, list[np.ndarray]]  # one row per text, keyed by ONNX output name
    batches: tuple[dict[str, np.ndarray], ...]  # the variants' feeds, EVAL_BATCH_SIZE texts each
    lengths: tuple[int, ...]  # real tokens per text


REFERENCE_CHUNK = 128  # texts per eager PyTorch batch (bounds its attention memory)


def prepare_reference(info: ModelInfo, eval_set: EvalSet, max_length: int) -> Reference:
    """Run the fp32 PyTorch reference on the evaluation set and encode the variants' batches."""
    tokenizer = load_tokenizer(info.model_dir)
    torch_model = TorchModel(info)
    rows: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(eval_set.texts), REFERENCE_CHUNK):
        chunk = eval_set.texts[start : start + REFERENCE_CHUNK]
        outputs = torch_model(encode(tokenizer, info, chunk, max_length))
        for name, array in outputs.items():
            rows.setdefault(name, []).extend(array)
    batches: list[dict[str, np.ndarray]] = []
    lengths: list[int] = []
    for start in range(0, len(eval_set.texts), EVAL_BATCH_SIZE):
        chunk = eval_set.texts[start : start + EVAL_BATCH_SIZE]
        feeds = encode(tokenizer, info, chunk, max_length)
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
    figures = info.task_record.figures(
        got, reference.outputs, info.labels, reference.eval_set.labels, reference.lengths
    )
    return gate(info.task, figures, max_drop)
