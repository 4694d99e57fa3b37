"""Local tritonserver: install it from a PyPI wheel, start it on chosen ports, load, stop.

The server is the real Triton 2.51.0 binary shipped in the `nvidia-pytriton` wheel. That wheel
has only the Python backend, so tritonkit adds a Python-based `onnxruntime` backend that serves
ONNX configs unmodified on CPU: a local emulation for development and CI. Production GPU nodes
run the Triton container image with its real ONNX Runtime and TensorRT backends.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from tritonkit.errors import ConfigError, ServerError
from tritonkit.resources import triton_model_source

TRITON_VERSION = "2.51.0"
PYTRITON_WHEEL = "nvidia-pytriton==0.7.0"
# numpy 2 silently corrupts tensors in the 2.51 Python backend; onnxruntime 1.31.1 runs on 1.26.4.
_TOKENIZERS = f"tokenizers=={version('tokenizers')}"  # the client's own: same tokenizer.json
SERVER_ENV_PACKAGES = ("numpy==1.26.4", "onnxruntime==1.31.1", _TOKENIZERS)
_PYTHON = sysconfig.get_python_version()  # "3.11": the stub and the server env must match it
_MARKER = "tritonkit-install.json"
_SERVER_DIRS = ("bin/", "backends/", "caches/")  # under pytriton/tritonserver/; stubs: one copied
_WHEEL_DIRS = (*(f"pytriton/tritonserver/{d}" for d in _SERVER_DIRS), "nvidia_pytriton.libs/")
_LOG_TAIL_LINES = 40
_INSTALLED = {"triton": TRITON_VERSION, "python": _PYTHON, "packages": list(SERVER_ENV_PACKAGES)}

Log = Callable[[str], None]


@dataclass(frozen=True)
class ServerInstall:
    """Where a runnable tritonserver lives, and what its environment needs."""

    root: Path
    tritonserver: Path
    backend_dir: Path
    env_bin: Path | None  # put first on PATH: the Python backend stub uses its `python3`
    lib_paths: tuple[Path, ...]  # put on LD_LIBRARY_PATH


def default_cache_dir() -> Path:
    """$TRITONKIT_HOME, else ~/.cache/tritonkit."""
    home = os.environ.get("TRITONKIT_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "tritonkit"


def _install_dir(cache_dir: Path | None) -> Path:
    return (cache_dir or default_cache_dir()).expanduser().resolve() / f"server-{TRITON_VERSION}"


def _is_installed(root: Path) -> bool:
    try:
        return bool(json.loads((root / _MARKER).read_text()) == _INSTALLED)
    except (OSError, ValueError):
        return False


def _cached_install(root: Path) -> ServerInstall:
    prefix = root / "pytriton" / "tritonserver"
    libdir = sysconfig.get_config_var("LIBDIR")
    libs = (root / "nvidia_pytriton.libs", *((Path(libdir),) if libdir else ()))
    binary, env_bin = prefix / "bin" / "tritonserver", root / "env" / "bin"
    return ServerInstall(root, binary, prefix / "backends", env_bin, libs)


def _run(cmd: Sequence[str], what: str, fix: str) -> None:
    result = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
        raise ServerError(f"{what} failed: {lines[-1]}: {fix}")


def install_server(
    cache_dir: Path | None = None, *, force: bool = False, log: Log = print
) -> ServerInstall:
    """Install Triton 2.51.0 and its Python environment into `<cache>/server-2.51.0`.

    Idempotent (a marker records the versions) and atomic: it builds beside the target and
    renames, under a file lock so parallel runs install once.
    """
    root = _install_dir(cache_dir)
    root.parent.mkdir(parents=True, exist_ok=True)
    with _locked(root.parent / f".{root.name}.lock"):
        if force or not _is_installed(root):
            _build(root, log)
        install = _cached_install(root)
        refresh_onnxruntime_backend(install)
    return install


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _build(root: Path, log: Log) -> None:
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        staging.chmod(0o755)
        started = time.perf_counter()
        log(f"downloading {PYTRITON_WHEEL} (Triton {TRITON_VERSION}, ~55 MB)")
        pip = [sys.executable, "-m", "pip"]
        fix = "check access to PyPI, or set TRITONKIT_TRITONSERVER to an installed tritonserver"
        _run([*pip, "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(staging),
              PYTRITON_WHEEL], f"pip download {PYTRITON_WHEEL}", fix)  # fmt: skip
        wheel = next(staging.glob("nvidia_pytriton-*.whl"))
        _unpack(wheel, staging)
        wheel.unlink()
        log(f"creating the server's Python environment: {', '.join(SERVER_ENV_PACKAGES)}")
        env = staging / "env"
        _run([sys.executable, "-m", "venv", "--without-pip", str(env)], "python -m venv", fix)
        _run([*pip, "--python", str(env / "bin" / "python"), "install", "-q",
              *SERVER_ENV_PACKAGES], "pip install into the server environment", fix)  # fmt: skip
        (staging / _MARKER).write_text(json.dumps(_INSTALLED, indent=2) + "\n")
        if root.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{root.name}-old-", dir=root.parent))
            root.rename(old / root.name)
            shutil.rmtree(old)
        staging.rename(root)
        log(f"installed Triton {TRITON_VERSION} in {root} ({time.perf_counter() - started:.0f} s)")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _unpack(wheel: Path, dest: Path) -> None:
    """Extract the server, its backends and bundled libraries, keeping the wheel's layout
    (the binaries' RPATHs point from there to nvidia_pytriton.libs)."""
    stub = f"pytriton/tritonserver/python_backend_stubs/{_PYTHON}/triton_python_backend_stub"
    with zipfile.ZipFile(wheel) as archive:
        if stub not in archive.namelist():
            raise ServerError(
                f"{PYTRITON_WHEEL} has no Python backend stub for Python {_PYTHON}: "
                "run tritonkit with Python 3.10 to 3.13"
            )
        for info in archive.infolist():
            if info.filename.startswith(_WHEEL_DIRS) and not info.is_dir():
                target = Path(archive.extract(info, dest))
                target.chmod((info.external_attr >> 16) & 0o755 or 0o644)
        backend = dest / "pytriton" / "tritonserver" / "backends" / "python"
        with archive.open(stub) as src, (backend / "triton_python_backend_stub").open("wb") as out:
            shutil.copyfileobj(src, out)
        (backend / "triton_python_backend_stub").chmod(0o755)


def refresh_onnxruntime_backend(install: ServerInstall) -> None:
    """Copy tritonkit's Python-based onnxruntime backend in, unless a real one is installed.

    Done on every find_server() and start(), so edits to the module take effect at once.
    """
    folder = install.backend_dir / "onnxruntime"
    source = triton_model_source("onnxruntime_backend").read_bytes()
    target = folder / "model.py"
    if (folder / "libtriton_onnxruntime.so").exists() or (
        target.is_file() and target.read_bytes() == source
    ):
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".model.py.{os.getpid()}"
        partial.write_bytes(source)
        partial.replace(target)  # atomic: a server loading a model never reads half a file
    except OSError as e:
        raise ServerError(
            f"cannot write the onnxruntime backend into {folder}: {e.strerror}: "
            "use a writable tritonserver install (tritonkit server install)"
        ) from e


def find_server(
    tritonserver: Path | None = None, *, install_if_missing: bool = True, log: Log = print
) -> ServerInstall:
    """The tritonserver to use: `tritonserver`, else $TRITONKIT_TRITONSERVER, else the cache."""
    source = "--tritonserver"
    if tritonserver is None and os.environ.get("TRITONKIT_TRITONSERVER"):
        tritonserver, source = Path(os.environ["TRITONKIT_TRITONSERVER"]), "TRITONKIT_TRITONSERVER"
    if tritonserver is None:
        root = _install_dir(None)
        if _is_installed(root):
            install = _cached_install(root)
        elif install_if_missing:
            return install_server(log=log)
        else:
            raise ServerError(f"no tritonserver installed in {root}: run: tritonkit server install")
    else:
        install = _external_install(tritonserver.expanduser().resolve(), source)
    refresh_onnxruntime_backend(install)
    return install


def _external_install(binary: Path, source: str) -> ServerInstall:
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise ServerError(
            f"{binary} ({source}) is not an executable tritonserver: fix the path, or unset it "
            "to use tritonkit's own install"
        )
    for root in binary.parents:
        if _cached_install(root).tritonserver == binary and _is_installed(root):
            return _cached_install(root)
    return ServerInstall(binary.parent.parent, binary, binary.parent.parent / "backends", None, ())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (another process may take it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gpu_available() -> bool:
    """True when an NVIDIA GPU is visible: /dev/nvidia0 exists or `nvidia-smi -L` succeeds."""
    if Path("/dev/nvidia0").exists():
        return True
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        return subprocess.run([smi, "-L"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def read_repository(repo: Path) -> dict[str, model_config_pb2.ModelConfig]:
    """Every model folder's parsed config.pbtxt, by folder name."""
    configs: dict[str, model_config_pb2.ModelConfig] = {}
    for path in sorted(repo.glob("*/config.pbtxt")):
        config = model_config_pb2.ModelConfig()
        try:
            text_format.Parse(path.read_text(), config)
        except text_format.ParseError as e:
            raise ConfigError(f"{path}: {e}: fix the config") from e
        configs[path.parent.name] = config
    return configs


def load_waves(configs: dict[str, model_config_pb2.ModelConfig]) -> list[list[str]]:
    """Groups of models to load in turn: plain models, then ensembles after their steps."""
    done = {name for name, config in configs.items() if config.platform != "ensemble"}
    waves = [sorted(done)] if done else []
    pending = {
        name: {step.model_name for step in config.ensemble_scheduling.step} & set(configs)
        for name, config in configs.items()
        if name not in done
    }
    while pending:
        wave = sorted(name for name, needs in pending.items() if needs <= done)
        if not wave:
            raise ConfigError(
                f"ensembles {', '.join(sorted(pending))} use each other in a cycle: "
                "fix their ensemble_scheduling steps"
            )
        waves.append(wave)
        done.update(wave)
        for name in wave:
            del pending[name]
    return waves


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
        self.shm_prefix = f"tritonkit{os.getpid()}_{secrets.token_hex(4)}_"
        self._process: subprocess.Popen[bytes] | None = None

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

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _log_tail(self) -> str:
        lines = self.log_text().splitlines()[-_LOG_TAIL_LINES:]
        return f"\n--- last lines of {self.log_path} ---\n" + "\n".join(lines)

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
        refresh_onnxruntime_backend(self.install)
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
            )
        atexit.register(self.stop)
        try:
            self._wait_for(process, "live", deadline, timeout)
            self._load_models(deadline)
            self._wait_for(process, "ready", deadline, timeout)
        except BaseException:
            self.stop()
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
                    f"for the cause{self._log_tail()}"
                )
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
            if time.monotonic() > deadline:
                raise ServerError(
                    f"tritonserver was not {state} after {timeout:.0f} s: raise the timeout or "
                    f"read the log for the cause{self._log_tail()}"
                )
            time.sleep(0.1)

    def _load_models(self, deadline: float) -> None:
        """Load through the repository API, each wave's models in parallel."""
        configs = read_repository(self.repo)
        on_cpu_only = not gpu_available()
        for wave in load_waves(configs):
            bodies = [self._load_body(n, configs[n]) if on_cpu_only else b"{}" for n in wave]
            with ThreadPoolExecutor(max_workers=4) as pool:
                errors = list(pool.map(self._load, wave, bodies, [deadline] * len(wave)))
            failed = [
                f"model '{n}' failed to load: {e}" for n, e in zip(wave, errors, strict=True) if e
            ]
            if failed:
                raise ServerError(
                    f"{'; '.join(failed)}: fix the model or its config.pbtxt{self._log_tail()}"
                )

    def _load(self, name: str, body: bytes, deadline: float) -> str | None:
        """POST /v2/repository/models/<name>/load; the error text, or None once loaded."""
        request = urllib.request.Request(
            f"http://{self.http_url}/v2/repository/models/{urllib.parse.quote(name)}/load",
            data=body,
            headers={"Content-Type": "application/json"},
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
            for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(wait)
                    break
            deadline = time.monotonic() + 5.0  # then kill what is left (stubs) and wait
            with contextlib.suppress(ProcessLookupError):
                while time.monotonic() < deadline:
                    os.killpg(process.pid, signal.SIGKILL)
                    time.sleep(0.05)
        for path in Path("/dev/shm").glob(f"{self.shm_prefix}*"):
            path.unlink(missing_ok=True)

    def __enter__(self) -> TritonServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
