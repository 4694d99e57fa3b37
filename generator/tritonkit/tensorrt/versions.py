"""Which TensorRT each Triton image runs, and whether a plan built with one TensorRT loads there.

A plan is bound to the TensorRT release that built it (`plan_loads`, the rule TensorRT
documents). So tritonkit must know the serving image's TensorRT to the build number, and it
does not guess: a row is *verified* only where a primary source names the version for that very
tag, and every row cites it. An unverified row (a recollection of NVIDIA's Frameworks Support
Matrix, whose stored copies lost their version lists) is kept for the message only and is
refused like an unknown tag, unless the spec states the version (``tensorrt.tensorrt_version``,
read from the image: ``dpkg -l 'libnvinfer*'``).

Rows are keyed by the image tag: the ``-py3`` and ``-trtllm-python-py3`` images of one release
ship different TensorRT versions.
"""

from __future__ import annotations

from dataclasses import dataclass

from tritonkit.errors import PlanBuildError
from tritonkit.runtime.plan_builder import plan_loads, version_tuple

__all__ = [
    "TRITON_TENSORRT",
    "TensorRTRelease",
    "image_tag",
    "io_type_for",
    "plan_loads",
    "release_of",
    "serving_tensorrt",
    "tensorrt_for_image",
    "version_tuple",
]

_ISSUE = "https://github.com/triton-inference-server/server/issues/"
_TRTLLM = (
    "triton-inference-server/server docs/introduction/compatibility.md (r25.10 L37-59; "
    "Release Compatibility Matrix of the trtllm-python-py3 images)"
)
_RECALL = (
    "UNVERIFIED: recollection of the Frameworks Support Matrix (research notes "
    "triton-backends.md §3.2); no primary source was readable"
)


@dataclass(frozen=True)
class TensorRTRelease:
    version: str
    source: str
    verified: bool = True


def _recall(version: str) -> TensorRTRelease:
    return TensorRTRelease(version, _RECALL, verified=False)


def _trtllm(version: str) -> TensorRTRelease:
    return TensorRTRelease(version, _TRTLLM)


TRITON_TENSORRT: dict[str, TensorRTRelease] = {
    # maintainer in server#5812: TRT_VERSION=8.6.1.2 in the 23.04 images
    "23.04-py3": TensorRTRelease("8.6.1.2", _ISSUE + "5812"),
    # server#5975: tritonserver 23.05 "expecting library version 8.6.1.2"
    "23.05-py3": TensorRTRelease("8.6.1.2", _ISSUE + "5975"),
    # Windows Dockerfile.win10.min r24.01 says 8.6.1.6: another product build, not Linux
    "24.01-py3": _recall("8.6.1.6"),
    # server#6959 (maintainer mc-nv, `dpkg -l | grep tensorrt-dev`: 8.6.3) and
    # NVIDIA/TensorRT#3862 ("24.02+ uses 8.6.3.1")
    "24.02-py3": TensorRTRelease("8.6.3.1", _ISSUE + "6959 and NVIDIA/TensorRT#3862"),
    "24.03-py3": _recall("8.6.3.1"),
    "24.04-py3": _recall("8.6.3.1"),
    # DLFW release notes 24.05 (mxnet-release-notes/rel-24-05.html, shared 24.05 stack):
    # "NVIDIA TensorRT 10.0.1.6"
    "24.05-py3": TensorRTRelease("10.0.1.6", "DLFW 24.05 release notes (rel-24-05.html)"),
    "24.06-py3": _recall("10.1.0.27"),
    "24.07-py3": _recall("10.2.0.19"),
    "24.08-py3": _recall("10.3.0.26"),
    "24.09-py3": _recall("10.4.0.26"),
    "24.10-py3": _recall("10.5.0.18"),
    "24.11-py3": _recall("10.6.0.26"),
    # server r24.12 docs/introduction/release_notes.md L51: "NVIDIA TensorRT 10.7.0.23"
    "24.12-py3": TensorRTRelease("10.7.0.23", "server r24.12 docs/introduction/release_notes.md"),
    # server r25.01 docs/introduction/release_notes.md L64-65: "NVIDIA TensorRT 10.8.0.43"
    "25.01-py3": TensorRTRelease("10.8.0.43", "server r25.01 docs/introduction/release_notes.md"),
    "25.02-py3": _recall("10.8.0.43"),
    "25.03-py3": _recall("10.9.0.34"),
    "25.04-py3": _recall("10.9.0.34"),
    "25.05-py3": _recall("10.10.0.31"),
    "25.06-py3": _recall("10.11.0.33"),
    "25.07-py3": _recall("10.11.0.33"),
    "25.08-py3": _recall("10.13.2.6"),
    "25.09-py3": _recall("10.13.3.9"),
    "25.10-py3": _recall("10.13.3.9"),
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


def release_of(image: str) -> tuple[int, int] | None:
    """The NGC release (YY, MM) an image tag names: `24.10-py3` -> (24, 10)."""
    tag = image_tag(image) or ""
    head = tag.split("-", 1)[0].split(".")
    if len(head) == 2 and all(p.isdigit() for p in head):
        return int(head[0]), int(head[1])
    return None


def tensorrt_for_image(image: str) -> TensorRTRelease | None:
    """The image's verified row (None for an unknown tag or an unverified row)."""
    tag = image_tag(image)
    row = TRITON_TENSORRT.get(tag) if tag is not None else None
    return row if row is not None and row.verified else None


def serving_tensorrt(image: str, stated: str | None) -> TensorRTRelease:
    """The TensorRT `image` runs: the spec's stated version, else the image's verified row.

    Anything else is refused: a plan built for a guessed version fails to load at the node."""
    if stated:
        if len(version_tuple(stated)) < 3:
            raise PlanBuildError(
                f"tensorrt.tensorrt_version '{stated}': give the full version, e.g. 10.5.0.18"
            )
        return TensorRTRelease(stated, f"tensorrt.tensorrt_version in the spec for {image}")
    found = tensorrt_for_image(image)
    if found is not None:
        return found
    row = TRITON_TENSORRT.get(image_tag(image) or "")
    why = (
        f"its row ({row.version}) is unverified"
        if row is not None
        else "it is not in tritonkit.tensorrt.versions"
    )
    raise PlanBuildError(
        f"{image}: tritonkit does not know which TensorRT this image runs ({why}): read it "
        f"in the image (dpkg -l 'libnvinfer*') and set tensorrt.tensorrt_version (flag "
        "--tensorrt-version), or deploy an image with a verified row"
    )


def io_type_for(onnx_type: str, tensorrt_version: str) -> str:
    """The Triton dtype a plan exposes for an ONNX I/O tensor of `onnx_type`.

    TensorRT 8.x has no INT64 (NvInferRuntimeBase.h 8.6; kINT64 = 8 from 10.0): its ONNX parser
    maps INT64 inputs to INT32 (onnx2trt_utils.cpp 8.6-GA :357-358). TensorRT 10 keeps INT64
    (importerUtils.cpp 10.1-GA :326), which tensorrt_backend binds from r24.05 on.
    """
    major = version_tuple(tensorrt_version)[:1]
    if onnx_type == "TYPE_INT64" and major and major[0] < 10:
        return "TYPE_INT32"
    return onnx_type
