"""What tritonserver's log says while models load: the lines that mean a load has failed.

Some failures never answer the load request: a Python stub that dies before its first message
(model.py missing, the stub unable to start) leaves the request waiting for ever in 2.51
(python_backend r24.10 stub_launcher.cc waits untimed; fixed upstream in r25.09). The log says
so at once, so the launcher reads it instead of waiting for its timeout.

Line format (2.51): `<E|I|W><MMDD> <HH:MM:SS.us> <pid> <file>:<line>] "<message>"`, the
message quoted and escaped on one line; the stub's own lines are not quoted.
"""

from __future__ import annotations

import re

_FAILURES = (
    # model_lifecycle.cc: "failed to load 'NAME' version N: REASON"
    re.compile(r"model_lifecycle\.cc:\d+\] \"(failed to load '[^']+' version \d+: .*)\"$"),
    # pb_stub.cc (the stub, before it reports to the server): the load request hangs
    re.compile(r"pb_stub\.cc:\d+\]\s+(Failed to preinitialize Python stub: .*)$"),
    re.compile(r"model_repository_manager\.cc:\d+\] \"(Poll failed for model directory .*)\"$"),
    re.compile(r"(Failed to run python backend stub.*)$"),
    re.compile(r"(triton_python_backend_stub: error while loading shared libraries: .*)$"),
)


def load_failures(log: str) -> list[str]:
    """Every load failure the log reports, one line each, escapes (\\n) shown as spaces."""
    found = []
    for line in log.splitlines():
        for pattern in _FAILURES:
            match = pattern.search(line.rstrip())
            if match:
                found.append(" ".join(match.group(1).replace("\\n", " ").split()))
                break
    return found
