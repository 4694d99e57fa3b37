"""The Triton image -> TensorRT table and the rules for loading a plan."""

from __future__ import annotations

import pytest

from tritonkit.tensorrt.versions import (
    TRITON_TENSORRT,
    image_tag,
    io_type_for,
    plan_loads,
    tensorrt_for_image,
    version_tuple,
)


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("nvcr.io/nvidia/tritonserver:24.10-py3", "24.10-py3"),
        ("registry:5000/mirror/tritonserver:25.01-trtllm-python-py3", "25.01-trtllm-python-py3"),
        ("nvcr.io/nvidia/tritonserver:24.10-py3@sha256:abc", "24.10-py3"),
        ("registry:5000/tritonserver", None),
    ],
)
def test_image_tag(image: str, tag: str | None) -> None:
    assert image_tag(image) == tag


def test_table_lookups_by_tag() -> None:
    release = tensorrt_for_image("nvcr.io/nvidia/tritonserver:24.10-py3")
    assert release is not None and release.version == "10.5.0"
    # the TRT-LLM image of the same release ships a different TensorRT
    trtllm = tensorrt_for_image("nvcr.io/nvidia/tritonserver:24.10-trtllm-python-py3")
    assert trtllm is not None and trtllm.version == "10.4.0"
    assert tensorrt_for_image("nvcr.io/nvidia/tritonserver:19.01-py3") is None
    assert all(
        r.source and version_tuple(r.version)[0] in (8, 9, 10) for r in TRITON_TENSORRT.values()
    )


def test_version_tuple() -> None:
    assert version_tuple("10.5.0.18") == (10, 5, 0, 18)
    assert version_tuple("9.3.0.post12.dev1") == (9, 3, 0)
    assert version_tuple("unknown") == ()


@pytest.mark.parametrize(
    ("plan", "runtime", "compatible", "loads"),
    [
        ("10.5.0", "10.5.0.18", False, True),  # trtexec reports three components
        ("10.5.0.18", "10.5.0.18", False, True),
        ("8.6.1.6", "8.6.1.2", False, False),  # the build number matters
        ("10.4.0", "10.5.0", False, False),
        ("10.4.0", "10.5.0", True, True),  # version-compatible: later runtime, same major
        ("10.6.0", "10.5.0", True, False),  # never an older runtime
        ("8.6.1", "10.5.0", True, False),  # never across major versions
        ("", "10.5.0", False, False),
    ],
)
def test_plan_loads(plan: str, runtime: str, compatible: bool, loads: bool) -> None:
    assert plan_loads(plan, runtime, compatible) is loads


def test_io_types_by_tensorrt_major_version() -> None:
    assert io_type_for("TYPE_INT64", "8.6.3") == "TYPE_INT32"
    assert io_type_for("TYPE_INT64", "10.5.0") == "TYPE_INT64"
    assert io_type_for("TYPE_FP32", "8.6.3") == "TYPE_FP32"
