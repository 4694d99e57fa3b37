"""text-classification: softmax class probabilities inside the graph; class names travel in
labels.txt (Triton's classification extension)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx

from tritonkit.tasks.base import Comparison, GateFigure, Output, Task, Tolerance
from tritonkit.tasks.graph import GraphBuilder, float_output


def macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Mean F1 over the classes that occur in `truth` or `predicted`."""
    scores = []
    for label in sorted(set(truth) | set(predicted)):
        pairs = list(zip(truth, predicted, strict=True))
        tp = sum(t == label and p == label for t, p in pairs)
        fp = sum(t != label and p == label for t, p in pairs)
        fn = sum(t == label and p != label for t, p in pairs)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(scores)) if scores else 0.0


class TextClassification(Task):
    name = "text-classification"
    head = "ForSequenceClassification"
    auto_class = "AutoModelForSequenceClassification"
    raw_output = "logits"
    outputs = (Output("probabilities", "float"),)
    label_output = "probabilities"
    needs_labels = True

    def add_postprocessing(
        self, g: GraphBuilder, raw: str, batch: str | int, seq: str | int, width: str | int
    ) -> list[onnx.ValueInfoProto]:
        g.node("Softmax", [raw], "probabilities", axis=-1)
        return [float_output("probabilities", [batch, width])]

    def torch_postprocess(self, output: Any, attention_mask: Any) -> dict[str, np.ndarray]:
        import torch

        return {"probabilities": torch.softmax(output.logits, dim=-1).numpy()}

    def compare(
        self,
        served: Mapping[str, np.ndarray],
        reference: Mapping[str, np.ndarray],
        labels: Sequence[str],
        tolerance: Tolerance,
        n_tokens: int,
    ) -> Comparison:
        got, want = served["probabilities"], reference["probabilities"]
        diff = float(np.max(np.abs(got - want)))
        top_got, top_want = int(np.argmax(got)), int(np.argmax(want))
        name = labels[top_got] if top_got < len(labels) else str(top_got)
        ok = top_got == top_want and diff <= tolerance.max_prob_diff
        return Comparison(ok, diff, f"{name} (max |dp| {diff:.2e})")

    def figures(
        self,
        got: Mapping[str, Sequence[np.ndarray]],
        want: Mapping[str, Sequence[np.ndarray]],
        labels: Sequence[str],
        truth: Sequence[str] | None,
        lengths: Sequence[int],
    ) -> dict[str, float]:
        a, b = np.stack(got["probabilities"]), np.stack(want["probabilities"])
        top_got, top_want = np.argmax(a, axis=1), np.argmax(b, axis=1)
        figures = {
            "top_label_agreement": float(np.mean(top_got == top_want)),
            "max_prob_diff": float(np.max(np.abs(a - b))),
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

    def gate_figure(self, figures: Mapping[str, float], max_drop: float) -> GateFigure:
        if "accuracy" in figures:
            value = figures["accuracy"]
            accuracy_drop = 100 * (figures["reference_accuracy"] - value)
            f1_drop = 100 * (figures["reference_macro_f1"] - figures["macro_f1"])
            shown = (
                f"accuracy {100 * value:.1f}% vs {100 * figures['reference_accuracy']:.1f}%, "
                f"macro-F1 {figures['macro_f1']:.3f} vs {figures['reference_macro_f1']:.3f}"
            )
            return GateFigure("accuracy", max(accuracy_drop, f1_drop), shown)
        value = figures["top_label_agreement"]
        return GateFigure(
            "top label agreement", 100 * (1 - value), f"top label agreement {100 * value:.2f}%"
        )
