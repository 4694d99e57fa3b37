"""Optimization profiles from the tokenizer's padded lengths and batch ranges, and the
coverage check (both read the lengths from the tokenizer's one padding rule)."""

from __future__ import annotations

import pytest

from tritonkit.runtime.tokenizer import TokenizerParams
from tritonkit.tensorrt.profiles import Profile, plan_profiles, shapes_spec, uncovered


def tok(buckets: tuple[int, ...], max_length: int) -> TokenizerParams:
    return TokenizerParams(max_length=max_length, buckets=buckets)


def test_one_profile_per_bucket_with_disjoint_ranges() -> None:
    profiles = plan_profiles(tok((16, 40, 128), 256), max_batch_size=32, opt_batch_size=8)
    assert profiles == (
        Profile((1, 1), (8, 16), (32, 16)),
        Profile((1, 17), (8, 40), (32, 40)),
        Profile((1, 41), (8, 128), (32, 128)),
        Profile((1, 129), (8, 256), (32, 256)),  # longer texts are padded to max_length
    )


def test_buckets_above_max_length_are_capped_and_merged() -> None:
    assert tok((600, 16, 16, 512), 512).padded_lengths() == (16, 512)
    profiles = plan_profiles(tok((16, 600), 512), max_batch_size=4)
    assert [p.max for p in profiles] == [(4, 16), (4, 512)]
    assert profiles[0].opt == (4, 16)  # opt batch defaults to the max batch size


def test_single_range_profile_without_buckets() -> None:
    assert plan_profiles(tok((), 128), 16, opt_batch_size=1) == (
        Profile((1, 1), (1, 128), (16, 128)),
    )
    single = plan_profiles(tok((16, 64), 128), 16, layout="single", opt_seq_len=64)
    assert single == (Profile((1, 1), (16, 64), (16, 128)),)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (((), 128, 8, None, "per-bucket"), "needs the tokenizer's buckets"),
        (((16,), 128, 8, 9), "opt batch size 9 must lie in 1..8"),
        (((), 128, 8, None, "single", 200), "opt sequence length 200 must lie in 1..128"),
        (((16,), 128, 0), "must be at least 1"),
    ],
)
def test_bad_profile_requests(args: tuple[object, ...], message: str) -> None:
    buckets, max_length, *rest = args
    with pytest.raises(ValueError, match=message):
        plan_profiles(tok(buckets, max_length), *rest)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("buckets", "layout"), [((16, 40, 128), "per-bucket"), ((16, 40, 128), "single"), ((), None)]
)
def test_planned_profiles_cover_everything_the_tokenizer_sends(
    buckets: tuple[int, ...], layout: str | None
) -> None:
    tokenizer = tok(buckets, 256)
    profiles = plan_profiles(tokenizer, 32, layout=layout)  # type: ignore[arg-type]
    assert uncovered(profiles, 32, tokenizer) is None


def test_uncovered_finds_the_first_missing_shape() -> None:
    profiles = plan_profiles(tok((16, 64), 128), max_batch_size=8)
    # a larger batch than the plan was built for
    assert uncovered(profiles, 16, tok((16, 64), 128)) == (9, 16)
    # a bucket the plan has no profile for
    assert uncovered(profiles[:2], 8, tok((16, 64), 128)) == (1, 128)
    # batch ranges that leave a hole
    split = [Profile((1, 1), (1, 16), (2, 16)), Profile((4, 1), (4, 16), (8, 16))]
    assert uncovered(split, 8, tok((16,), 16)) == (3, 16)
    # without buckets every length counts: a per-bucket plan misses nothing, a partial one does
    assert uncovered(profiles, 8, tok((), 128)) is None
    assert uncovered(profiles[1:], 8, tok((), 128)) == (1, 1)
    assert uncovered([Profile((1, 10), (1, 10), (8, 128))], 8, tok((), 128)) == (1, 1)
    # pad_to_multiple_of sends only multiples: a profile from 8 on covers them all
    rounded = TokenizerParams(max_length=128, pad_to_multiple_of=8)
    assert uncovered([Profile((1, 8), (8, 64), (8, 128))], 8, rounded) is None


def test_shapes_spec_for_trtexec_and_onnxruntime() -> None:
    spec = shapes_spec(("input_ids", "attention_mask"), (8, 128))
    assert spec == "input_ids:8x128,attention_mask:8x128"
