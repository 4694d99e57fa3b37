"""Which TensorRT each Triton image runs, and whether a plan built with one TensorRT loads there.

A plan is bound to the TensorRT release that built it: Triton refuses it ("The engine plan file
is not compatible with this version of TensorRT") unless the versions match, or the plan was
built version-compatible and the server runs a later release of the same major version (with
``--backend-config=tensorrt,version-compatible=true``).

Every row below names where it was checked. Rows are keyed by the image tag, because the
``-py3`` and ``-trtllm-python-py3`` images of one release ship different TensorRT versions
(24.10: 10.5.0 and 10.4.0). An image missing here is not guessed: ``validate`` refuses the plan
unless it was built inside that very image (recorded by ``build-plan --triton-image``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TRTLLM_SOURCE = (
    "triton-inference-server/server docs/introduction/compatibility.md "
    "(Release Compatibility Matrix, trtllm-python-py3)"
)
_ISSUE = "https://github.com/triton-inference-server/server/issues/"


@dataclass(frozen=True)
class TensorRTRelease:
    version: str
    source: str


def _trtllm(version: str) -> TensorRTRelease:
    return TensorRTRelease(version, _TRTLLM_SOURCE)


TRITON_TENSORRT: dict[str, TensorRTRelease] = {
    "23.04-py3": TensorRTRelease("8.6.1.2", _ISSUE + "5812 (maintainer: TRT_VERSION=8.6.1.2)"),
    "23.05-py3": TensorRTRelease("8.6.1.2", _ISSUE + "5975 (Frameworks Support Matrix)"),
    "24.02-py3": TensorRTRelease("8.6.3", _ISSUE + "6959 (maintainer: dpkg shows 8.6.3)"),
    "24.05-py3": TensorRTRelease("10.0.1", _ISSUE + "7374 (Frameworks Support Matrix)"),
    "24.10-py3": TensorRTRelease(
        "10.5.0", "Triton 24.10 release notes as given in the task brief; not re-checked"
    ),
    "24.04-trtllm-python-py3": _trtllm("9.3.0"),
    "24.05-trtllm-python-py3": _trtllm("10.0.1.6"),
    "24.06-trtllm-python-py3": _trtllm("10.0.1"),
    "24.07-trtllm-python-py3": _trtllm("10.1.0"),
    "24.08-trtllm-python-py3": _trtllm("10.3.0"),
    "24.09-trtllm-python-py3": _trtllm("10.4.0"),
    "24.10-trtllm-python-py3": _trtllm("10.4.0"),
    "24.11-trtllm-python-py3": _trtllm("10.6.0"),
    "24.12-trtllm-python-py3": _trtllm("10.7.0"),
    "25.01-trtllm-python-py3": _trtllm("10.8.0.43"),
    "25.02-trtllm-python-py3": _trtllm("10.8.0.43"),
    "25.03-trtllm-python-py3": _trtllm("10.9.0.34"),
    "25.04-trtllm-python-py3": _trtllm("10.9.0.34"),
    "25.05-trtllm-python-py3": _trtllm("10.9.0.34"),
    "25.06-trtllm-python-py3": _trtllm("10.10.0.31"),
    "25.07-trtllm-python-py3": _trtllm("10.10.0.31"),
    "25.08-trtllm-python-py3": _trtllm("10.11.0.33"),
    "25.09-trtllm-python-py3": _trtllm("10.11.0.33"),
    "25.10-trtllm-python-py3": _trtllm("10.11.0.33"),
    "25.11-trtllm-python-py3": _trtllm("10.13.3.9"),
    "25.12-trtllm-python-py3": _trtllm("10.13.3.9"),
    "26.01-trtllm-python-py3": _trtllm("10.13.3.9"),
    "26.02-trtllm-python-py3": _trtllm("10.13.3.9"),
    "26.03-trtllm-python-py3": _trtllm("10.14.1.48"),
    "26.04-trtllm-python-py3": _trtllm("10.14.1.48"),
    "26.05-trtllm-python-py3": _trtllm("10.14.1.48"),
    "26.06-trtllm-python-py3": _trtllm("10.14.1.48"),
    "26.07-trtllm-python-py3": _trtllm("10.14.1.48"),
}


def image_tag(image: str) -> str | None:
    """`nvcr.io/nvidia/tritonserver:24.10-py3` -> `24.10-py3` (None without a tag)."""
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def tensorrt_for_image(image: str) -> TensorRTRelease | None:
    tag = image_tag(image)
    return TRITON_TENSORRT.get(tag) if tag is not None else None


def version_tuple(version: str) -> tuple[int, ...]:
    """Leading numeric components: `10.5.0.18` -> (10, 5, 0, 18); `9.3.0.post12` -> (9, 3, 0)."""
    parts = []
    for part in version.split("."):
        if not re.fullmatch(r"\d+", part):
            break
        parts.append(int(part))
    return tuple(parts)


def plan_loads(plan_version: str, runtime_version: str, version_compatible: bool) -> bool:
    """Whether a plan built with `plan_version` loads on `runtime_version`.

    Versions are compared on the components both name (trtexec reports three, the Python API
    four), so 10.5.0 matches 10.5.0.18 but 8.6.1.2 does not match 8.6.1.6.
    """
    plan, runtime = version_tuple(plan_version), version_tuple(runtime_version)
    common = min(len(plan), len(runtime))
    if common == 0:
        return False
    if version_compatible:
        return plan[0] == runtime[0] and plan[:common] <= runtime[:common]
    return plan[:common] == runtime[:common]


def io_type_for(onnx_type: str, tensorrt_version: str) -> str:
    """The Triton dtype a plan exposes for an ONNX I/O tensor of `onnx_type`.

    TensorRT 8.x has no INT64 tensors: its ONNX parser casts INT64 inputs and outputs to INT32,
    so the config must declare TYPE_INT32 and the tokenizer must send int32. TensorRT 10 keeps
    INT64 I/O (DataType.INT64), so the tokenizer's int64 tensors pass unchanged.
    """
    major = version_tuple(tensorrt_version)[:1]
    if onnx_type == "TYPE_INT64" and major and major[0] < 10:
        return "TYPE_INT32"
    return onnx_type
