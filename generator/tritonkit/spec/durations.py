"""Durations as users write them: `20s`, `90`, `2m`, `1m30s`, `1h`."""

from __future__ import annotations

import re

from tritonkit.errors import SpecError

DURATION_HINT = "expected a duration of at least 1s, such as 20s, 90, 2m or 1m30s"


def duration_seconds(text: str) -> float | None:
    """Seconds; None unless a duration of at least 1 s."""
    match = re.fullmatch(r"\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds = (float(group or 0) for group in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    return total if total >= 1 else None


def parse_duration(text: str, source: str = "--duration") -> float:
    seconds = duration_seconds(text)
    if seconds is None:
        raise SpecError(f"{source} {text}: {DURATION_HINT}")
    return seconds
