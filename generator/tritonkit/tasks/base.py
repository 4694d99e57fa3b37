"""What a task is: one record per task, read by every stage that used to branch on its name.

A task says which transformers head it needs, which raw output optimum's export gives, how the
ONNX graph turns that output into what clients want (the post-processing lives in the graph),
how eager PyTorch does the same (the reference), how a served answer is compared with the
reference (`check`, load-test sampling, export parity) and how a variant's accuracy is gated.
Adding a task is one subclass of `Task` plus its entry in `tritonkit.tasks.REGISTRY`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import onnx

    from tritonkit.tasks.graph import GraphBuilder

Precision = Literal["fp32", "fp16", "int8"]


@dataclass(frozen=True)
class Tolerance:
    """How close a served or exported answer must stay to the PyTorch reference."""

    min_cosine: float = 0.999  # embeddings
    max_prob_diff: float = 1e-3  # class probabilities


# How close a precision's outputs must stay to the PyTorch reference. fp32 is the default;
# fp16 rounds activations to 11 significant bits; int8 quantizes activations and weights, so
# classification may also flip borderline labels (the top label must still match in `check`).
PRECISION_TOLERANCES: dict[Precision, Tolerance] = {
    "fp32": Tolerance(min_cosine=0.999, max_prob_diff=1e-3),
    "fp16": Tolerance(min_cosine=0.995, max_prob_diff=1e-2),
    "int8": Tolerance(min_cosine=0.98, max_prob_diff=5e-2),
}


@dataclass(frozen=True)
class Output:
    """One output of the exported graph (and, upper-cased, of the served ensemble)."""

    name: str
    kind: Literal["float", "labels"]  # labels: integer class ids, compared exactly
    per_token: bool = False  # one value per token: compared on real tokens only


@dataclass(frozen=True)
class Comparison:
    """One text's served (or exported) answer against its reference."""

    ok: bool
    metric: float  # cosine, max probability difference, or differing tokens
    detail: str


@dataclass(frozen=True)
class GateFigure:
    """The one figure a task's accuracy gate judges, as a drop in points (0 = no loss)."""

    metric: str
    drop: float
    shown: str


class Task(ABC):
    """One task tritonkit can export, serve, check and gate."""

    name: str
    head: str | None  # architectures suffix the checkpoint needs, e.g. ForSequenceClassification
    auto_class: str  # transformers class that loads the checkpoint for this task
    raw_output: str  # the output optimum's ONNX export gives for this task
    outputs: tuple[Output, ...]
    label_output: str | None = None  # output that carries class names (labels.txt)
    emits_offsets: bool = False  # the tokenizer also returns character offsets
    needs_labels: bool = False  # the checkpoint must name >= 2 labels (id2label)
    mean_pooled: bool = False  # the graph mean-pools: a sentence-transformers folder must too
    default_max_drop: float = 1.0  # accuracy gate, points

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)

    @abstractmethod
    def add_postprocessing(
        self, g: GraphBuilder, raw: str, batch: str | int, seq: str | int, width: str | int
    ) -> list[onnx.ValueInfoProto]:
        """Append the post-processing to the graph; the new graph outputs, in order."""

    @abstractmethod
    def torch_postprocess(self, output: Any, attention_mask: Any) -> dict[str, np.ndarray]:
        """The same post-processing on eager PyTorch outputs (the reference)."""

    @abstractmethod
    def compare(
        self,
        served: Mapping[str, np.ndarray],
        reference: Mapping[str, np.ndarray],
        labels: Sequence[str],
        tolerance: Tolerance,
        n_tokens: int,
    ) -> Comparison:
        """One text: served row vs reference row, both keyed by graph output name."""

    @abstractmethod
    def figures(
        self,
        got: Mapping[str, Sequence[np.ndarray]],
        want: Mapping[str, Sequence[np.ndarray]],
        labels: Sequence[str],
        truth: Sequence[str] | None,
        lengths: Sequence[int],
    ) -> dict[str, float]:
        """A variant's accuracy figures over an evaluation set (rows keyed by output name)."""

    @abstractmethod
    def gate_figure(self, figures: Mapping[str, float], max_drop: float) -> GateFigure:
        """The gated figure among `figures`."""

    def compare_rows(
        self,
        served: Mapping[str, np.ndarray],
        reference: Mapping[str, np.ndarray],
        served_row: int,
        row: int,
        labels: Sequence[str],
        tolerance: Tolerance,
        n_tokens: int,
    ) -> Comparison:
        """Row `served_row` of a served answer (keyed by the ensemble's names) against row
        `row` of the reference (keyed by graph output names): what check and load-test
        sampling judge."""
        got = {o: served[self.served_name(o)][served_row] for o in self.output_names}
        want = {o: reference[o][row] for o in self.output_names}
        return self.compare(got, want, labels, tolerance, n_tokens)

    def served_name(self, output: str) -> str:
        """The ensemble's name for a graph output (the repository contract upper-cases them)."""
        return output.upper()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / denom) if denom else 0.0


def finite(figures: Mapping[str, float]) -> bool:
    return all(math.isfinite(v) for v in figures.values())
