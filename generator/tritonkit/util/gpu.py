"""What GPU this machine has: the one place that asks nvidia-smi."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GpuInfo:
    """GPU 0: its name and compute capability ("unknown" when nvidia-smi cannot say)."""

    name: str
    compute_capability: str


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


def gpu_info() -> GpuInfo:
    """Name and compute capability of GPU 0 from nvidia-smi."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        name, cc = (part.strip() for part in out.splitlines()[0].rsplit(",", 1))
        return GpuInfo(name, cc)
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        return GpuInfo("unknown", "unknown")
