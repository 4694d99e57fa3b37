"""A running local tritonserver: start it on chosen ports, load the repository, stop it."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2

from tritonkit.errors import ServerError
from tritonkit.server.client import ADMIN_KEY_HEADER, key_file
from tritonkit.server.install import ServerInstall, refresh_server_env
from tritonkit.server.loglines import load_failures
from tritonkit.server.models import load_waves, read_repository
from tritonkit.util.gpu import gpu_available
from tritonkit.util.processes import parent_death_signal, pid_alive, stop_process_group

_LOG_TAIL_LINES = 40
_SHM_PREFIX = re.compile(r"tritonkit(?P<pid>\d+)_[0-9a-f]+_")
# A load the log reports as failed gets this long to answer with its own error first.
_ANSWER_GRACE = 2.0
# Triton's control APIs, closed to anyone without the per-run admin key: loading a model is
# running code (a Python-backend model.py), and the others can reconfigure or abort the server.
# Syntax from `tritonserver --help` (2.51) and docs/customization_guide/inference_protocols.md
# ("Limit endpoint access"): --http-restricted-api=<api>,<api>:<header>=<value>.
RESTRICTED_APIS = ("model-repository", "model-config", "shared-memory", "logging", "trace")


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now and was not handed out before in this process
    (the kernel may return a port it just released; another process may still take it)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def restricted_api_args(key: str) -> list[str]:
    """tritonserver flags that close RESTRICTED_APIS over HTTP and gRPC except for `key`."""
    apis = ",".join(RESTRICTED_APIS)
    return [
        f"--http-restricted-api={apis}:{ADMIN_KEY_HEADER}={key}",
        f"--grpc-restricted-protocol={apis}:{ADMIN_KEY_HEADER}={key}",
    ]


class TritonServer:
    """A running local tritonserver; a context manager that starts and stops it."""

    def __init__(
        self,
        repo: Path,
        install: ServerInstall,
        *,
        http_port: int = 8000,
        grpc_port: int = 8001,
        metrics_port: int = 8002,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.repo = repo.resolve()
        self.install = install
        self.ports = {"--http-port": http_port, "--grpc-port": grpc_port,
                      "--metrics-port": metrics_port}  # fmt: skip
        self.host = host
        self.log_path = log_path or Path(tempfile.mkdtemp(prefix="tritonkit-")) / "tritonserver.log"
        self.extra_args = tuple(extra_args)
        self.loaded_notices: list[str] = []
        # Embeds our pid: regions of a tritonkit that died are found and removed (_sweep_shm).
        self.shm_prefix = f"tritonkit{os.getpid()}_{secrets.token_hex(4)}_"
        self.admin_key = secrets.token_urlsafe(24)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def admin_headers(self) -> dict[str, str]:
        """The header tritonkit's own calls to this server's restricted APIs send."""
        return {ADMIN_KEY_HEADER: self.admin_key}

    def _url(self, port: int) -> str:
        return f"{'127.0.0.1' if self.host in ('0.0.0.0', '') else self.host}:{port}"

    @property
    def http_url(self) -> str:
        return self._url(self.ports["--http-port"])

    @property
    def grpc_url(self) -> str:
        return self._url(self.ports["--grpc-port"])

    @property
    def metrics_url(self) -> str:
        return self._url(self.ports["--metrics-port"])

    @property
    def pid(self) -> int | None:
        """The tritonserver process id while it runs (the leader of its process group)."""
        return self._process.pid if self._process is not None else None

    def exit_code(self) -> int | None:
        """None while tritonserver runs; its exit code (negative: the signal) once it ended."""
        return self._process.poll() if self._process is not None else None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The log's last lines, under a header naming the file."""
        last = self.log_text().splitlines()[-lines:]
        return f"\n--- last lines of {self.log_path} ---\n" + "\n".join(last)

    def command(self) -> list[str]:
        """The tritonserver command line."""
        ports = [f"{flag}={port}" for flag, port in self.ports.items()]
        return [
            str(self.install.tritonserver),
            f"--model-repository={self.repo}",
            "--model-control-mode=explicit",
            *(f"--{kind}-address={self.host}" for kind in ("http", "grpc", "metrics")),
            *ports,
            f"--backend-directory={self.install.backend_dir}",
            "--pinned-memory-pool-byte-size=0",
            "--cuda-memory-pool-byte-size=0:0",
            "--allow-gpu-metrics=false",
            "--exit-timeout-secs=5",  # open client connections otherwise delay exit by 30 s
            # Our configs are complete: skip the extra Python stub per model that auto-complete
            # starts (1.5 s of every load here); incomplete configs then fail at load, clearly.
            "--disable-auto-complete-config",
            f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
            *restricted_api_args(self.admin_key),
            *self.extra_args,
        ]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONHOME"}
        if self.install.env_bin is not None:  # the Python backend stub runs its `python3`
            env["PATH"] = f"{self.install.env_bin}{os.pathsep}{env.get('PATH', os.defpath)}"
        libs = [*map(str, self.install.lib_paths), env.get("LD_LIBRARY_PATH", "")]
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, libs))
        return env

    def _check_ports(self) -> None:
        seen: dict[int, str] = {}
        for flag, port in self.ports.items():
            if port in seen:
                raise ServerError(f"port {port} is given to {seen[port]} and {flag}: choose others")
            seen[port] = flag
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                # Like tritonserver itself: a port left in TIME_WAIT counts as free.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((self.host, port))
                except OSError:
                    raise ServerError(
                        f"port {port} is already in use ({flag}): stop the process that holds "
                        "it or choose another port"
                    ) from None

    def start(self, timeout: float = 120.0) -> None:
        """Start, wait until live, load every model (ensembles last), wait until ready."""
        if self._process is not None:
            raise ServerError(f"tritonserver for {self.repo} is already running: stop() it first")
        self._check_ports()
        refresh_server_env(self.install)
        _sweep_shm()
        deadline = time.monotonic() + timeout
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._process = process = subprocess.Popen(
                self.command(),
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us only; stop() ends the whole group
                # If we die, even by SIGKILL, tritonserver gets SIGTERM: it shuts down, removes
                # its /dev/shm regions, and its stubs exit once it is gone.
                preexec_fn=parent_death_signal(signal.SIGTERM),
            )
        atexit.register(self.stop)
        self._write_key()
        try:
            self._wait_for(process, "live", deadline, timeout)
            self._load_models(deadline)
            self._wait_for(process, "ready", deadline, timeout)
        except BaseException:
            self.stop(grace=2.0)  # a hung load never lets SIGINT finish: escalate soon
            raise

    def _wait_for(
        self, process: subprocess.Popen[bytes], state: str, deadline: float, timeout: float
    ) -> None:
        url = f"http://{self.http_url}/v2/health/{state}"
        while True:
            code = process.poll()
            if code is not None:
                raise ServerError(
                    f"tritonserver exited with code {code} before it was {state}: read the log "
                    f"for the cause{self.log_tail()}"
                )
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
            if time.monotonic() > deadline:
                raise ServerError(
                    f"tritonserver was not {state} after {timeout:.0f} s: raise the timeout or "
                    f"read the log for the cause{self.log_tail()}"
                )
            time.sleep(0.1)

    def _load_models(self, deadline: float) -> None:
        """Load through the repository API, each wave's models in parallel; a failure the log
        reports ends the start at once, even if its load request never answers."""
        configs = read_repository(self.repo)
        on_cpu_only = not gpu_available()
        pool = ThreadPoolExecutor(max_workers=4)
        try:
            for wave in load_waves(configs):
                loads = {
                    name: pool.submit(
                        self._load,
                        name,
                        self._load_body(name, configs[name]) if on_cpu_only else b"{}",
                        deadline,
                    )
                    for name in wave
                }
                self._await_loads(loads)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _await_loads(self, loads: dict[str, Future[str | None]]) -> None:
        seen = len(load_failures(self.log_text()))
        logged_at: float | None = None
        while True:
            done, pending = wait(loads.values(), timeout=0.2)
            failed = [
                f"model '{name}' failed to load: {future.result()}"
                for name, future in loads.items()
                if future in done and future.result()
            ]
            if failed or (logged_at and time.monotonic() - logged_at > _ANSWER_GRACE):
                failed = failed or [f"tritonserver: {load_failures(self.log_text())[seen]}"]
                raise ServerError(
                    f"{'; '.join(failed)}: fix the model or its config.pbtxt{self.log_tail()}"
                )
            if not pending:
                return
            if logged_at is None and len(load_failures(self.log_text())) > seen:
                logged_at = time.monotonic()
            code = self.exit_code()
            if code is not None:
                raise ServerError(
                    f"tritonserver exited with code {code} while loading models: read the log "
                    f"for the cause{self.log_tail()}"
                )

    def model_config(self, name: str) -> dict[str, Any]:
        """The config `name` is served with (the restricted model-config API, with our key)."""
        request = urllib.request.Request(
            f"http://{self.http_url}/v2/models/{urllib.parse.quote(name)}/config",
            headers=self.admin_headers,
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                config: dict[str, Any] = json.loads(response.read())
        except (OSError, ValueError) as e:
            raise ServerError(f"cannot read the served config of '{name}': {e}") from None
        return config

    def reload_model(self, name: str, timeout: float = 120.0) -> str | None:
        """Replace `name`'s instances (and so its Python stubs) with fresh ones; the error text,
        or None once reloaded. Ensembles that use it are reloaded by Triton with it.

        A plain load does nothing in 2.51 when the files and the config are unchanged (a dead
        stub stays dead), so the served config is sent back as an override with a new
        `tritonkit_reload` parameter: a config change that forces a full reload. No file of
        the repository is written."""
        config = self.model_config(name)
        config.setdefault("parameters", {})["tritonkit_reload"] = {
            "string_value": secrets.token_hex(8)
        }
        body = json.dumps({"parameters": {"config": json.dumps(config)}}).encode()
        return self._load(name, body, time.monotonic() + timeout)

    def _load(self, name: str, body: bytes, deadline: float) -> str | None:
        """POST /v2/repository/models/<name>/load; the error text, or None once loaded."""
        request = urllib.request.Request(
            f"http://{self.http_url}/v2/repository/models/{urllib.parse.quote(name)}/load",
            data=body,
            headers={"Content-Type": "application/json", **self.admin_headers},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=max(deadline - time.monotonic(), 1)):
                return None
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            with contextlib.suppress(ValueError, KeyError, TypeError):
                text = str(json.loads(text)["error"])
            return " ".join(text.split())
        except OSError as e:  # timeout, connection reset
            return f"{type(e).__name__}: {e}"

    def _load_body(self, name: str, config: model_config_pb2.ModelConfig) -> bytes:
        """No GPU here: a config override that moves KIND_GPU instance groups to CPU."""
        groups = [g for g in config.instance_group if g.kind == g.KIND_GPU]
        if not groups:
            return b"{}"
        for group in groups:
            group.kind = group.KIND_CPU
            del group.gpus[:]
        self.loaded_notices.append(
            f"model '{name}' asks for KIND_GPU but this machine has no GPU: loaded on CPU "
            "(local emulation)"
        )
        override = json_format.MessageToDict(config, preserving_proto_field_name=True)
        override["max_batch_size"] = config.max_batch_size  # proto3 drops 0: keep it explicit
        return json.dumps({"parameters": {"config": json.dumps(override)}}).encode()

    def stop(self, grace: float = 15.0) -> None:
        """SIGINT, then SIGTERM and SIGKILL to the process group; remove our /dev/shm files."""
        process, self._process = self._process, None
        atexit.unregister(self.stop)
        if process is not None:
            stop_process_group(
                process, ((signal.SIGINT, grace), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0))
            )
        for path in Path("/dev/shm").glob(f"{self.shm_prefix}*"):
            path.unlink(missing_ok=True)
        key = key_file(self.http_url)
        with contextlib.suppress(OSError):
            if key.read_text(encoding="utf-8").strip() == self.admin_key:
                key.unlink()

    def _write_key(self) -> None:
        """The admin key in a file only this user can read, so that tritonkit's own clients
        (check, loadtest, tune) on this machine unlock the restricted APIs."""
        path = key_file(self.http_url)
        with contextlib.suppress(OSError):
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(self.admin_key + "\n")
            partial.replace(path)

    def __enter__(self) -> TritonServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _sweep_shm() -> None:
    """Remove /dev/shm regions that servers of dead tritonkit processes left (a server killed
    with SIGKILL cannot remove its own)."""
    for path in Path("/dev/shm").glob("tritonkit*_*"):
        found = _SHM_PREFIX.match(path.name)
        if found and not pid_alive(int(found["pid"])):
            path.unlink(missing_ok=True)
