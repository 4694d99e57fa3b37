import itertools
from pathlib import Path

import numpy as np
import pytest

from tritonkit.repository.buckets import optimal_buckets, padding_stats, token_lengths
from tritonkit.runtime.tokenizer import TokenizerParams


def brute_force(lengths: np.ndarray, count: int, max_length: int) -> float:
    values = sorted(set(int(v) for v in lengths))
    best = float("inf")
    for combo in itertools.combinations(values, min(count - 1, len(values))):
        buckets = tuple(sorted({*combo, max_length}))
        best = min(best, padding_stats(lengths, buckets, max_length).mean_padded)
    return best


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dp_matches_brute_force(count: int, seed: int) -> None:
    lengths = np.random.default_rng(seed).integers(3, 40, size=30)
    buckets = optimal_buckets(lengths, count, 64)
    assert buckets[-1] == 64
    assert len(buckets) <= count
    got = padding_stats(lengths, buckets, 64).mean_padded
    assert got == pytest.approx(brute_force(lengths, count, 64))


def test_more_buckets_never_pad_more() -> None:
    lengths = np.clip(np.random.default_rng(0).lognormal(3.0, 0.5, 2000).astype(int), 3, 256)
    padded = [
        padding_stats(lengths, optimal_buckets(lengths, k, 256), 256).mean_padded
        for k in range(1, 10)
    ]
    assert padded == sorted(padded, reverse=True)
    coarse = padding_stats(lengths, (16, 32, 64, 128, 256), 256)
    derived = padding_stats(lengths, optimal_buckets(lengths, 5, 256), 256)
    assert derived.mean_padded < coarse.mean_padded
    assert padding_stats(lengths, (), 256).overhead == 1.0


def test_the_padding_rule() -> None:
    params = TokenizerParams(max_length=32, buckets=(8, 16))
    assert params.padded_length(5) == 8
    assert params.padded_length(8) == 8
    assert params.padded_length(17) == 32
    assert params.padded_lengths() == (8, 16, 32)
    rounded = TokenizerParams(max_length=30, pad_to_multiple_of=8)
    assert [rounded.padded_length(n) for n in (1, 8, 9, 25)] == [8, 8, 16, 30]


def test_token_lengths(minilm_dir: Path) -> None:
    lengths = token_lengths(minilm_dir / "tokenizer.json", ["hello world", "", "x " * 100], 16)
    assert lengths.tolist() == [4, 2, 16]
