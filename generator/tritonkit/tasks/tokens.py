"""token-classification: per-token label ids and scores (argmax of the softmax) inside the
graph; the tokenizer also returns each token's character offsets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

from tritonkit.tasks.base import Comparison, GateFigure, Output, Task, Tolerance
from tritonkit.tasks.graph import GraphBuilder, float_output, int64_output


class TokenClassification(Task):
    name = "token-classification"
    head = "ForTokenClassification"
    auto_class = "AutoModelForTokenClassification"
    raw_output = "logits"
    outputs = (Output("label_ids", "labels", per_token=True), Output("scores", "float", True))
    emits_offsets = True
    needs_labels = True

    def add_postprocessing(
        self, g: GraphBuilder, raw: str, batch: str | int, seq: str | int, width: str | int
    ) -> list[onnx.ValueInfoProto]:
        last = g.const("axis_last", [-1], TensorProto.INT64)
        probabilities = g.node("Softmax", [raw], axis=-1)
        best = g.node("ArgMax", [probabilities], axis=-1, keepdims=1)
        g.node("Squeeze", [best, last], "label_ids")
        top = g.node("GatherElements", [probabilities, best], axis=-1)
        g.node("Squeeze", [top, last], "scores")
        return [int64_output("label_ids", [batch, seq]), float_output("scores", [batch, seq])]

    def torch_postprocess(self, output: Any, attention_mask: Any) -> dict[str, np.ndarray]:
        import torch

        scores, label_ids = torch.softmax(output.logits, dim=-1).max(dim=-1)
        return {"label_ids": label_ids.numpy(), "scores": scores.numpy()}

    def compare(
        self,
        served: Mapping[str, np.ndarray],
        reference: Mapping[str, np.ndarray],
        labels: Sequence[str],
        tolerance: Tolerance,
        n_tokens: int,
    ) -> Comparison:
        want = reference["label_ids"][:n_tokens]
        got = served["label_ids"][:n_tokens]
        common = min(len(got), len(want))  # a row cut short counts its missing tokens
        mismatches = int(np.sum(got[:common] != want[:common])) + abs(len(got) - len(want))
        return Comparison(
            mismatches == 0, float(mismatches), f"{n_tokens} tokens, {mismatches} differ"
        )

    def figures(
        self,
        got: Mapping[str, Sequence[np.ndarray]],
        want: Mapping[str, Sequence[np.ndarray]],
        labels: Sequence[str],
        truth: Sequence[str] | None,
        lengths: Sequence[int],
    ) -> dict[str, float]:
        pairs = zip(got["label_ids"], want["label_ids"], lengths, strict=True)
        same = sum(int(np.sum(g[:n] == w[:n])) for g, w, n in pairs)
        return {"token_label_agreement": same / max(sum(lengths), 1)}

    def gate_figure(self, figures: Mapping[str, float], max_drop: float) -> GateFigure:
        value = figures["token_label_agreement"]
        return GateFigure(
            "token label agreement", 100 * (1 - value), f"token label agreement {100 * value:.2f}%"
        )
