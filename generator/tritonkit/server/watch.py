"""Watching a running local server, because Triton 2.51 does not.

A Python-backend stub that dies (kill -9, an OOM kill) is never restarted in 2.51
(python_backend r24.10 removed the restart; readiness that sees a dead stub came in r26.01):
every request then fails with "Stub process '<instance>' is not healthy." while
/v2/health/ready and every model's ready endpoint keep answering 200. So `serve` checks for
itself: the server process, the stubs it started, and one tiny inference (a canary) per model
that clients call. A dead stub's model is reloaded with a changed config (a plain load does
nothing when nothing changed); the ensembles that use it follow. What cannot be recovered ends
the watch with the reason.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tritonkit.errors import ServerError
from tritonkit.server.models import canary_request, entry_points, model_of_instance, read_repository
from tritonkit.server.process import TritonServer
from tritonkit.util.processes import pid_alive

Log = Callable[[str], None]
_UNHEALTHY = re.compile(r"Stub process '([^']+)' is not healthy")
_STUB_BINARY = "triton_python_backend_stub"
# Stub argv (python_backend r24.10 stub_launcher.cc): model path, shm region, shm default and
# growth sizes, server pid, backend dir, IPC handle, instance name, runtime.
_ARG_SERVER_PID, _ARG_INSTANCE = 5, 8


def describe_exit(code: int) -> str:
    """`exited with code 1`, or `was killed by SIGKILL` for a negative (signal) code."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def python_stubs(server_pid: int) -> dict[int, str]:
    """The server's live Python-backend stubs: pid -> instance name."""
    stubs = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) <= _ARG_INSTANCE or not argv[0].endswith(_STUB_BINARY.encode()):
            continue
        if argv[_ARG_SERVER_PID] == str(server_pid).encode() and pid_alive(int(entry.name)):
            stubs[int(entry.name)] = argv[_ARG_INSTANCE].decode(errors="replace")
    return stubs


class Watcher:
    """Checks one started TritonServer; `check()` recovers what it can and raises ServerError
    when the deployment is down for good."""

    def __init__(
        self,
        server: TritonServer,
        log: Log,
        *,
        canary_timeout: float = 30.0,
        recover_timeout: float = 120.0,
        strikes: int = 3,
    ) -> None:
        self.server = server
        self.log = log
        self.canary_timeout = canary_timeout
        self.recover_timeout = recover_timeout
        self.strikes = strikes
        self.configs = read_repository(server.repo)
        self.requests = {
            name: json.dumps(canary_request(self.configs[name])).encode()
            for name in entry_points(self.configs)
        }
        self.failures = dict.fromkeys(self.requests, 0)
        self.stubs = self._scan()
        self.recoveries: list[tuple[str, float]] = []  # (model, seconds)

    def _scan(self) -> dict[int, str]:
        pid = self.server.pid
        return python_stubs(pid) if pid is not None else {}

    def check_server(self) -> None:
        """ServerError, with the log's last lines, once tritonserver has ended."""
        code = self.server.exit_code()
        if code is not None:
            raise ServerError(
                f"tritonserver {describe_exit(code)} while serving {self.server.repo}: the "
                f"deployment is down; read the log for the cause{self.server.log_tail()}"
            )

    def check(self) -> None:
        """One round: the server, its stubs, one canary per entry point."""
        self.check_server()
        broken: dict[str, str] = {}  # model -> what happened to it
        for pid, instance in self.stubs.items():
            if not pid_alive(pid):
                self._note(broken, instance, f"its Python stub {instance} (pid {pid}) died")
        for name, request in self.requests.items():
            error = self._canary(name, request)
            if error is None:
                self.failures[name] = 0
                continue
            unhealthy = _UNHEALTHY.search(error)
            if unhealthy:
                self._note(broken, unhealthy[1], f"its Python stub {unhealthy[1]} is not healthy")
                continue
            self.check_server()
            self.failures[name] += 1
            if self.failures[name] >= self.strikes:
                raise ServerError(
                    f"model '{name}' failed {self.failures[name]} canary inferences in a row "
                    f"({error}): the deployment is not serving{self.server.log_tail()}"
                )
        for model, why in broken.items():
            self._recover(model, why)
        if broken:
            self.stubs = self._scan()

    def _note(self, broken: dict[str, str], instance: str, why: str) -> None:
        model = model_of_instance(instance, self.configs)
        if model is None:
            self.log(f"warning: {why}, and no model of {self.server.repo} owns it")
        else:
            broken.setdefault(model, why)

    def _recover(self, model: str, why: str) -> None:
        started = time.monotonic()
        self.log(f"model '{model}': {why}: reloading it")
        error = self.server.reload_model(model, self.recover_timeout)
        deadline = started + self.recover_timeout
        while error is None:  # the ensembles follow the reload: wait until every canary answers
            errors = [e for n, r in self.requests.items() if (e := self._canary(n, r))]
            if not errors:
                break
            if time.monotonic() > deadline:
                error = errors[0]
            time.sleep(0.2)
        if error is not None:
            raise ServerError(
                f"model '{model}' could not be recovered after {why} ({error}): the deployment "
                f"is down{self.server.log_tail()}"
            )
        seconds = time.monotonic() - started
        self.recoveries.append((model, seconds))
        self.log(f"model '{model}' recovered in {seconds:.1f} s: every model answers again")

    def _canary(self, name: str, body: bytes) -> str | None:
        """The error of one tiny inference on `name`, or None when it answered."""
        request = urllib.request.Request(
            f"http://{self.server.http_url}/v2/models/{urllib.parse.quote(name)}/infer",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.canary_timeout) as response:
                response.read()
            return None
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            with contextlib.suppress(ValueError, KeyError, TypeError):
                text = str(json.loads(text)["error"])
            return f"HTTP {e.code}: {' '.join(text.split())}"
        except OSError as e:
            return f"{type(e).__name__}: {e}"
