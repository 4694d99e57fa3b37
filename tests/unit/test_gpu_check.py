"""`make gpu-check` cannot run here (no GPU, no TensorRT): it must stop in one line, and its
reproduction of item 1 is exercised against the strict fake trtexec."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.gpu import gpu_check
from tests.unit.trt_fakes import bin_dir, executable, fake_gpu, fake_trtexec, token_onnx

__all__ = ["bin_dir", "fake_gpu", "fake_trtexec"]
SCRIPT = Path(gpu_check.__file__)


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env)


def test_stops_in_one_line_without_a_gpu(tmp_path: Path) -> None:
    done = run({"PATH": str(tmp_path)})
    assert done.returncode == 1
    assert done.stdout == (
        "gpu-check: stopped: no NVIDIA GPU is visible (libcuda.so.1 and nvidia-smi found none): "
        "run on a GPU node with the NVIDIA container runtime and a GPU resource limit\n"
    )


def test_stops_in_one_line_without_tensorrt(tmp_path: Path) -> None:
    executable(tmp_path / "nvidia-smi", '#!/bin/sh\necho "NVIDIA H200, 9.0"\n')
    done = run({"PATH": str(tmp_path)})
    assert done.returncode == 1
    assert done.stdout == (
        "gpu-check: stopped: needs TensorRT: neither `import tensorrt` nor trtexec is available "
        "here\n"
    )


@pytest.mark.parametrize("version", ["8.6.1", "10.5.0"])
def test_item_1_reproduction(
    fake_trtexec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    monkeypatch.setenv("FAKE_TRT_VERSION", version)
    model = token_onnx(tmp_path / "m.onnx", token_type_ids=True)
    trtexec = str(fake_trtexec.parent / "bin" / "trtexec")
    gpu_check.item_1(trtexec, model, tmp_path)  # raises Stop if trtexec took the old argv
