"""The local tritonserver installation: Triton 2.51.0 from a PyPI wheel, with its own Python
environment and tritonkit's Python-based `onnxruntime` backend.

The server is the real Triton 2.51.0 binary shipped in the `nvidia-pytriton` wheel. That wheel
has only the Python backend, so tritonkit adds a Python-based `onnxruntime` backend that serves
ONNX configs unmodified on CPU: a local emulation for development and CI. Production GPU nodes
run the Triton container image with its real ONNX Runtime and TensorRT backends.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from tritonkit.errors import ServerError
from tritonkit.util.resources import triton_model_source

TRITON_VERSION = "2.51.0"
PYTRITON_WHEEL = "nvidia-pytriton==0.7.0"
# numpy 2 silently corrupts tensors in the 2.51 Python backend; onnxruntime 1.31.1 runs on 1.26.4.
_TOKENIZERS = f"tokenizers=={version('tokenizers')}"  # the client's own: same tokenizer.json
SERVER_ENV_PACKAGES = ("numpy==1.26.4", "onnxruntime==1.31.1", _TOKENIZERS)
_PYTHON = sysconfig.get_python_version()  # "3.11": the stub and the server env must match it
_MARKER = "tritonkit-install.json"
_SERVER_DIRS = ("bin/", "backends/", "caches/")  # under pytriton/tritonserver/; stubs: one copied
_WHEEL_DIRS = (*(f"pytriton/tritonserver/{d}" for d in _SERVER_DIRS), "nvidia_pytriton.libs/")
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
        refresh_server_env(install)
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


# Executed by `site` when the server environment's interpreter starts, also inside the
# Python backend stub (whose embedded interpreter ignores PYTHONDONTWRITEBYTECODE): a stub
# importing <model>/1/model.py must not write <model>/1/__pycache__/ into the repository (a
# read-only volume in production; and the new folder changes the version folder's mtime, so
# Triton reloads the model when the ensemble loads).
_NO_BYTECODE_PTH = ("tritonkit-no-bytecode.pth", "import sys; sys.dont_write_bytecode = True\n")


def refresh_server_env(install: ServerInstall) -> None:
    """tritonkit's files in a server install: the onnxruntime backend, and in tritonkit's own
    environment the no-bytecode hook. Done on every find_server() and start()."""
    refresh_onnxruntime_backend(install)
    if install.env_bin is None:
        return
    site = install.env_bin.parent / "lib" / f"python{_PYTHON}" / "site-packages"
    name, text = _NO_BYTECODE_PTH
    with contextlib.suppress(OSError):
        if (site / name).read_text() == text:
            return
    try:
        partial = site / f".{name}.{os.getpid()}"
        partial.write_text(text)
        partial.replace(site / name)
    except OSError as e:
        raise ServerError(
            f"cannot write {name} into {site}: {e.strerror}: use a writable tritonserver "
            "install (tritonkit server install)"
        ) from e


def refresh_onnxruntime_backend(install: ServerInstall) -> None:
    """Copy tritonkit's Python-based onnxruntime backend in, unless a real one is installed,
    so edits to the module take effect at once.
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
    refresh_server_env(install)
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
