"""Sequence-length buckets for the tokenizer, derived from a corpus's length distribution.

Triton's dynamic batcher only merges requests whose tensors have the same shape. A tokenizer
that pads each request to its own length defeats it; one that pads everything to a few coarse
buckets (16/32/64/128) wastes compute on padding (measured here: the average padded length went
from 22 to 53 tokens). The buckets chosen here minimise the expected padding for a given number
of buckets, exactly, by dynamic programming over the corpus's token lengths.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from tritonkit.errors import RepositoryError
from tritonkit.runtime.tokenizer import TokenizerParams


@dataclass(frozen=True)
class PaddingStats:
    texts: int
    mean_tokens: float  # real tokens per text
    mean_padded: float  # tokens per text after padding to its bucket
    buckets: tuple[int, ...]

    @property
    def overhead(self) -> float:
        """Padded tokens computed per real token (1.0 means no padding)."""
        return self.mean_padded / self.mean_tokens if self.mean_tokens else 1.0


def token_lengths(tokenizer_file: Path, texts: Sequence[str], max_length: int) -> np.ndarray:
    """Tokens per text (special tokens included, truncated as the server truncates)."""
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    encodings = tokenizer.encode_batch(list(texts))
    return np.array([len(e.ids) for e in encodings], dtype=np.int64)


def padding_stats(lengths: np.ndarray, buckets: Sequence[int], max_length: int) -> PaddingStats:
    """Padding for one text per request, by the tokenizer's own rule (no buckets: each request
    is padded to itself)."""
    params = TokenizerParams(max_length=max_length, buckets=tuple(buckets))
    padded = np.array([params.padded_length(int(n)) for n in lengths], dtype=np.int64)
    return PaddingStats(
        texts=int(lengths.size),
        mean_tokens=float(lengths.mean()) if lengths.size else 0.0,
        mean_padded=float(padded.mean()) if lengths.size else 0.0,
        buckets=tuple(buckets),
    )


def optimal_buckets(lengths: np.ndarray, count: int, max_length: int) -> tuple[int, ...]:
    """`count` bucket sizes that minimise the total padding of `lengths` (exact DP).

    The largest bucket is always `max_length`, so every request has one; the others are
    upper ends of the optimal partition of the observed lengths into count - 1 groups.
    """
    if count < 1:
        raise ValueError("bucket count must be at least 1")
    values, counts = np.unique(np.minimum(lengths, max_length), return_counts=True)
    inner = count - 1
    if inner == 0 or values.size == 0:
        return (max_length,)
    if values.size <= inner:
        return tuple(sorted({*map(int, values), max_length}))
    n = values.size
    weights = counts.astype(np.float64)
    prefix_w = np.concatenate([[0.0], np.cumsum(weights)])
    prefix_wv = np.concatenate([[0.0], np.cumsum(weights * values)])

    def group_cost(start: np.ndarray, end: int) -> np.ndarray:
        # texts with lengths values[start..end] padded to values[end]
        w = prefix_w[end + 1] - prefix_w[start]
        wv = prefix_wv[end + 1] - prefix_wv[start]
        return np.asarray(values[end] * w - wv)

    # Lengths above the last inner bucket pad to max_length: that is the tail group's cost.
    tail = max_length * (prefix_w[n] - prefix_w) - (prefix_wv[n] - prefix_wv)
    best = np.full((inner + 1, n), np.inf)  # best[k][j]: k groups covering values[0..j]
    choice = np.zeros((inner + 1, n), dtype=np.int64)
    best[1] = [group_cost(np.array([0]), j)[0] for j in range(n)]
    for k in range(2, inner + 1):
        for j in range(k - 1, n):
            starts = np.arange(k - 1, j + 1)  # the k-th group is values[start..j]
            costs = best[k - 1][starts - 1] + group_cost(starts, j)
            pick = int(np.argmin(costs))
            best[k][j], choice[k][j] = costs[pick], starts[pick]
    totals = best[inner] + tail[1:]
    end = int(np.argmin(totals))
    edges = []
    for k in range(inner, 0, -1):
        edges.append(int(values[end]))
        if k > 1:
            end = int(choice[k][end]) - 1
    return tuple(sorted({*edges, max_length}))


def corpus_buckets(
    tokenizer_file: Path, corpus: Path | None, count: int, max_length: int
) -> tuple[int, ...]:
    """`count` buckets with the least padding over `corpus` (default: the shipped corpus)."""
    from tritonkit.util.resources import data_dir
    from tritonkit.util.texts import TextFileError, read_texts

    path = corpus or data_dir("loadtest") / "corpus" / "default.txt"
    try:
        texts = read_texts(path)
    except TextFileError as e:
        raise RepositoryError(f"tokenizer.bucket_corpus: {e}") from None
    return optimal_buckets(token_lengths(tokenizer_file, texts, max_length), count, max_length)
