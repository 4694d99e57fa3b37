"""feature-extraction: sentence embeddings, mean pooled over real tokens and L2 normalised
(sentence-transformers' Pooling + Normalize modules), inside the graph."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

from tritonkit.tasks.base import Comparison, GateFigure, Output, Task, Tolerance, cosine
from tritonkit.tasks.graph import GraphBuilder, float_output


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (ranks by order; ties are vanishingly rare for float scores)."""
    if len(a) < 2:
        return 1.0
    rank_a = np.argsort(np.argsort(a)).astype(np.float64)
    rank_b = np.argsort(np.argsort(b)).astype(np.float64)
    return float(np.corrcoef(rank_a, rank_b)[0, 1])


def mean_pool_normalize(hidden: Any, mask: Any) -> np.ndarray:
    """sentence-transformers' mean pooling followed by its Normalize module (torch tensors)."""
    import torch

    weights = mask.unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    result: np.ndarray = torch.nn.functional.normalize(mean, p=2.0, dim=1, eps=1e-12).numpy()
    return result


class FeatureExtraction(Task):
    name = "feature-extraction"
    head = None
    auto_class = "AutoModel"
    raw_output = "last_hidden_state"
    outputs = (Output("embeddings", "float"),)
    mean_pooled = True
    default_max_drop = 2.0  # min cosine 0.98

    def add_postprocessing(
        self, g: GraphBuilder, raw: str, batch: str | int, seq: str | int, width: str | int
    ) -> list[onnx.ValueInfoProto]:
        last = g.const("axis_last", [-1], TensorProto.INT64)
        seq_axis = g.const("axis_seq", [1], TensorProto.INT64)
        mask = g.node("Cast", ["attention_mask"], to=TensorProto.FLOAT)
        mask = g.node("Unsqueeze", [mask, last])
        summed = g.node("ReduceSum", [g.node("Mul", [raw, mask]), seq_axis], keepdims=0)
        count = g.node("ReduceSum", [mask, seq_axis], keepdims=0)
        count = g.node("Max", [count, g.const("min_count", [1e-9], TensorProto.FLOAT)])
        mean = g.node("Div", [summed, count])
        squared = g.node("ReduceSum", [g.node("Mul", [mean, mean]), last], keepdims=1)
        min_norm = g.const("min_norm", [1e-12], TensorProto.FLOAT)
        norm = g.node("Max", [g.node("Sqrt", [squared]), min_norm])
        g.node("Div", [mean, norm], "embeddings")
        return [float_output("embeddings", [batch, width])]

    def torch_postprocess(self, output: Any, attention_mask: Any) -> dict[str, np.ndarray]:
        return {"embeddings": mean_pool_normalize(output.last_hidden_state, attention_mask)}

    def compare(
        self,
        served: Mapping[str, np.ndarray],
        reference: Mapping[str, np.ndarray],
        labels: Sequence[str],
        tolerance: Tolerance,
        n_tokens: int,
    ) -> Comparison:
        value = cosine(served["embeddings"], reference["embeddings"])
        return Comparison(value >= tolerance.min_cosine, value, f"cosine {value:.6f}")

    def figures(
        self,
        got: Mapping[str, Sequence[np.ndarray]],
        want: Mapping[str, Sequence[np.ndarray]],
        labels: Sequence[str],
        truth: Sequence[str] | None,
        lengths: Sequence[int],
    ) -> dict[str, float]:
        a, b = np.stack(got["embeddings"]), np.stack(want["embeddings"])
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        cosines = np.sum(a * b, axis=1) / np.maximum(norms, 1e-12)
        upper = np.triu_indices(len(a), 1)
        return {
            "min_cosine": float(np.min(cosines)),
            "mean_cosine": float(np.mean(cosines)),
            "spearman_pairwise": spearman((a @ a.T)[upper], (b @ b.T)[upper]),
        }

    def gate_figure(self, figures: Mapping[str, float], max_drop: float) -> GateFigure:
        value = figures["min_cosine"]
        shown = f"min cosine {value:.4f} (floor {1 - max_drop / 100:.4f})"
        return GateFigure("min cosine", 100 * (1 - value), shown)
