"""What the CPU can do, and the int8 quantization preset that suits it.

ONNX Runtime's int8 GEMMs (MLAS) take uint8 activations and int8 weights (U8S8). With AVX512-VNNI
(or AVX-VNNI) the products accumulate in 32 bits; without it, AVX2/AVX-512 use VPMADDUBSW, whose
16-bit intermediate sums can saturate with full-range weights, so ONNX Runtime's guidance there
is 7-bit weights (`reduce_range`). U8U8 avoids that saturation too, but measured twice as slow as
U8S8 on the development machine, so no preset uses it. ARM64 (SDOT/UDOT) needs neither.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

PRESETS = ("avx2", "avx512", "avx512-vnni", "arm64")


@dataclass(frozen=True)
class QuantPreset:
    """How int8 (U8S8) weights are stored for one instruction set."""

    name: str
    reduce_range: bool  # 7-bit weights
    why: str


_PRESETS = {
    "avx2": QuantPreset(
        "avx2", True, "AVX2 without VNNI: 7-bit weights avoid VPMADDUBSW saturation"
    ),
    "avx512": QuantPreset(
        "avx512", True, "AVX-512 without VNNI: 7-bit weights avoid VPMADDUBSW saturation"
    ),
    "avx512-vnni": QuantPreset(
        "avx512-vnni", False, "VNNI accumulates in 32 bits: full-range int8 weights"
    ),
    "arm64": QuantPreset("arm64", False, "ARM64 dot products: full-range int8 weights"),
}


@dataclass(frozen=True)
class CpuInfo:
    """The machine a variant was built or measured on."""

    model: str
    machine: str
    cores: int  # CPUs this process may run on
    flags: tuple[str, ...]  # the SIMD flags that matter here, sorted

    @property
    def preset(self) -> str:
        """The quantization preset this CPU should use."""
        if self.machine in ("aarch64", "arm64"):
            return "arm64"
        if "avx512_vnni" in self.flags or "avx_vnni" in self.flags:
            return "avx512-vnni"
        if "avx512f" in self.flags:
            return "avx512"
        return "avx2"

    def as_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "machine": self.machine,
            "cores": self.cores,
            "flags": list(self.flags),
            "preset": self.preset,
        }


_INTERESTING = (
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_int8",
    "asimddp",
)


def parse_cpuinfo(text: str) -> tuple[str, tuple[str, ...]]:
    """(model name, interesting flags) from the text of /proc/cpuinfo."""
    model = ""
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return model, tuple(sorted(flag for flag in flags if flag in _INTERESTING))


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    """This machine's CPU (flags are empty where /proc/cpuinfo does not exist)."""
    try:
        model, flags = parse_cpuinfo(cpuinfo.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        model, flags = "", ()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return CpuInfo(model or platform.processor(), platform.machine(), cores or 1, flags)


def cpu_identity(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, str]:
    """Vendor, family, model, stepping and clock of the first CPU in /proc/cpuinfo: a KVM guest's
    model name is often only "AMD EPYC", and the family/model numbers tell the generation."""
    keys = {"vendor_id": "vendor", "cpu family": "family", "model": "model",
            "stepping": "stepping", "cpu mhz": "mhz"}  # fmt: skip
    found: dict[str, str] = {}
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return found
    for line in text.splitlines():
        key, _, value = line.partition(":")
        name = keys.get(key.strip().lower())
        if name and name not in found:
            found[name] = value.strip()
        if not line.strip() and found:
            break
    return found


def quant_preset(name: str | None, info: CpuInfo) -> QuantPreset:
    """The named preset, or this CPU's when `name` is None or "auto"."""
    return _PRESETS[info.preset if name in (None, "auto") else str(name)]
