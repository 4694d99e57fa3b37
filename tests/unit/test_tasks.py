"""Task records: the comparisons check and load-test sampling judge served answers by."""

from __future__ import annotations

import numpy as np

from tritonkit.tasks import PRECISION_TOLERANCES, get_task


def test_token_labels_of_a_shorter_row_count_as_differing() -> None:
    """A served row shorter than the tokens to compare (e.g. a shorter padded batch) is a
    failed comparison with every missing token counted, not a numpy broadcast error."""
    task = get_task("token-classification")
    want = {"label_ids": np.array([0, 1, 2, 3, 4, 0]), "scores": np.ones(6)}
    got = {"label_ids": np.array([0, 1, 3]), "scores": np.ones(3)}
    found = task.compare(got, want, ("O", "B", "I", "X", "Y"), PRECISION_TOLERANCES["fp32"], 5)
    assert not found.ok
    assert found.metric == 3.0  # one label differs, two tokens are missing
    assert found.detail == "5 tokens, 3 differ"
    same = task.compare(want, want, ("O", "B", "I", "X", "Y"), PRECISION_TOLERANCES["fp32"], 5)
    assert same.ok and same.metric == 0.0
