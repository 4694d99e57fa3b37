"""Processes we start: tied to our life (a parent-death signal), and stopped politely first,
then by force, never leaving stubs."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

_PR_SET_PDEATHSIG = 1  # linux/prctl.h

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


def parent_death_signal(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` after which the child gets `sig` when this process dies, even by SIGKILL
    (Linux prctl PR_SET_PDEATHSIG; it survives execve). None where that cannot be promised:
    off Linux, or outside the main thread, because the kernel sends the signal when the
    *thread* that forked exits, so a worker thread's child would die with the thread."""
    if not sys.platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            os._exit(127)
        if os.getppid() != parent:  # we died between fork and prctl: no signal would come
            os._exit(128)

    return preexec


def pid_alive(pid: int) -> bool:
    """`pid` exists and is not a zombie (a killed child its parent has not reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return state not in ("Z", "X")
