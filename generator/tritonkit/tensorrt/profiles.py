"""TensorRT optimization profiles from the tokenizer's buckets, and the check that they cover
every shape the ensemble can send.

Every token input (input_ids, attention_mask, token_type_ids) has the shape [batch, seq] and all
of them always share it, so a profile here is one min/opt/max triple of [batch, seq] applied to
each token input.

Two layouts:

- ``per-bucket`` (default with buckets): one profile per bucket, covering the sequence lengths
  above the previous bucket up to this one: min=[1, prev+1], opt=[opt_batch, bucket],
  max=[max_batch, bucket]. The tokenizer pads every request to a bucket, so each profile is tuned
  (its opt shape) for exactly the length it will see, and the ranges do not overlap, so Triton's
  choice among them is unambiguous. Cost: build time and plan size grow with the number of
  profiles, and each profile gets its own execution context (activation memory) per instance.
- ``single``: one range profile min=[1, 1], opt=[opt_batch, opt_seq], max=[max_batch, max_length].
  Right when the tokenizer pads each request to its own length (no buckets): the lengths are
  arbitrary, so there is nothing better to tune for; one context per instance.

Triton picks a profile per request by input shape among those listed in the instance group's
``profile`` field, so the generated config lists all of them in one group. Splitting profiles
across instance groups would let the scheduler send a request to an instance without a
matching profile, which is why ``uncovered`` checks each instance group on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from tritonkit.runtime.tokenizer import TokenizerParams

ProfileLayout = Literal["per-bucket", "single"]


@dataclass(frozen=True)
class Profile:
    """min/opt/max [batch, seq] shapes, shared by every token input."""

    min: tuple[int, int]
    opt: tuple[int, int]
    max: tuple[int, int]

    def contains(self, batch: int, seq: int) -> bool:
        return self.min[0] <= batch <= self.max[0] and self.min[1] <= seq <= self.max[1]

    def as_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @classmethod
    def from_dict(cls, data: dict[str, list[int]]) -> Profile:
        def pair(key: str) -> tuple[int, int]:
            batch, seq = (int(v) for v in data[key])
            return batch, seq

        return cls(pair("min"), pair("opt"), pair("max"))


def plan_profiles(
    tokenizer: TokenizerParams,
    max_batch_size: int,
    opt_batch_size: int | None = None,
    layout: ProfileLayout | None = None,
    opt_seq_len: int | None = None,
) -> tuple[Profile, ...]:
    """Profiles covering batch 1..max_batch_size and every length the tokenizer sends.

    `layout` defaults to per-bucket when there are buckets, else single.
    """
    buckets, max_length = tokenizer.buckets, tokenizer.max_length
    if max_batch_size < 1:
        raise ValueError("max_batch_size must be at least 1")
    opt_batch = max_batch_size if opt_batch_size is None else opt_batch_size
    if not 1 <= opt_batch <= max_batch_size:
        raise ValueError(f"opt batch size {opt_batch} must lie in 1..{max_batch_size}")
    chosen = layout or ("per-bucket" if buckets else "single")
    if chosen == "single":
        opt_seq = max_length if opt_seq_len is None else opt_seq_len
        if not 1 <= opt_seq <= max_length:
            raise ValueError(f"opt sequence length {opt_seq} must lie in 1..{max_length}")
        return (Profile((1, 1), (opt_batch, opt_seq), (max_batch_size, max_length)),)
    if not buckets:
        raise ValueError("the per-bucket layout needs the tokenizer's buckets")
    profiles = []
    previous = 0
    for length in tokenizer.padded_lengths():
        profiles.append(Profile((1, previous + 1), (opt_batch, length), (max_batch_size, length)))
        previous = length
    return tuple(profiles)


def _batch_gap(ranges: list[tuple[int, int]], max_batch_size: int) -> int | None:
    """The smallest batch in 1..max_batch_size that no range holds (None: all held)."""
    need = 1
    for low, high in sorted(ranges):
        if low > need:
            break
        need = max(need, high + 1)
        if need > max_batch_size:
            return None
    return need if need <= max_batch_size else None


def uncovered(
    profiles: Sequence[Profile], max_batch_size: int, tokenizer: TokenizerParams
) -> tuple[int, int] | None:
    """The first [batch, seq] the ensemble can send that no profile holds (None: all covered).

    The lengths are exactly those the tokenizer pads to (`TokenizerParams.padded_lengths`);
    batches are 1..max_batch_size (Triton's dynamic batcher merges up to it).
    """
    for seq in tokenizer.padded_lengths():
        ranges = [(p.min[0], p.max[0]) for p in profiles if p.min[1] <= seq <= p.max[1]]
        gap = _batch_gap(ranges, max_batch_size)
        if gap is not None:
            return gap, seq
    return None


def shapes_spec(inputs: Sequence[str], shape: tuple[int, int]) -> str:
    """trtexec / ONNX Runtime shape spec: `input_ids:8x128,attention_mask:8x128`."""
    return ",".join(f"{name}:{shape[0]}x{shape[1]}" for name in inputs)
