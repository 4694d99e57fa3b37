"""Stopping a process group we started: politely first, then by force, never leaving stubs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence

# (signal, seconds to wait for the leader to exit) in turn.
DEFAULT_ESCALATION: tuple[tuple[signal.Signals, float], ...] = (
    (signal.SIGINT, 15.0),
    (signal.SIGTERM, 5.0),
    (signal.SIGKILL, 5.0),
)


def stop_process_group(
    process: subprocess.Popen[bytes],
    escalation: Sequence[tuple[signal.Signals, float]] = DEFAULT_ESCALATION,
    linger: float = 5.0,
) -> None:
    """Signal the group led by `process` (started with start_new_session=True) until the
    leader exits, then SIGKILL what is left of the group (children it left behind)."""
    for sig, wait in escalation:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait)
            break
    deadline = time.monotonic() + linger
    with contextlib.suppress(ProcessLookupError):
        while time.monotonic() < deadline:
            os.killpg(process.pid, signal.SIGKILL)
            time.sleep(0.05)
