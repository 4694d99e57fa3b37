"""The Triton image -> TensorRT table and the rules for loading a plan."""

from __future__ import annotations

import pytest

from tritonkit.errors import PlanBuildError
from tritonkit.tensorrt.versions import (
    TRITON_TENSORRT,
    image_tag,
    io_type_for,
    plan_loads,
    release_of,
    serving_tensorrt,
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
    release = tensorrt_for_image("nvcr.io/nvidia/tritonserver:24.12-py3")
    assert release is not None and release.version == "10.7.0.23"
    # the TRT-LLM image of the same release ships a different TensorRT
    trtllm = tensorrt_for_image("nvcr.io/nvidia/tritonserver:24.10-trtllm-python-py3")
    assert trtllm is not None and trtllm.version == "10.4.0"
    assert tensorrt_for_image("nvcr.io/nvidia/tritonserver:19.01-py3") is None
    # an unverified row is never used
    assert tensorrt_for_image("nvcr.io/nvidia/tritonserver:24.10-py3") is None


def test_every_py3_tag_from_24_01_to_25_10_has_a_row_with_its_source() -> None:
    tags = [f"{y}.{m:02d}-py3" for y in (24, 25) for m in range(1, 13) if (y, m) <= (25, 10)]
    assert all(t in TRITON_TENSORRT for t in tags)
    for tag in tags:
        row = TRITON_TENSORRT[tag]
        assert row.source and len(version_tuple(row.version)) == 4, tag
        assert row.verified == ("UNVERIFIED" not in row.source), tag
    verified = sorted(t for t in tags if TRITON_TENSORRT[t].verified)
    assert verified == ["24.02-py3", "24.05-py3", "24.12-py3", "25.01-py3"]


def test_an_image_without_a_verified_row_needs_the_stated_version() -> None:
    with pytest.raises(PlanBuildError, match=r"its row \(10.5.0.18\) is unverified"):
        serving_tensorrt("nvcr.io/nvidia/tritonserver:24.10-py3", None)
    with pytest.raises(PlanBuildError, match=r"it is not in tritonkit.tensorrt.versions"):
        serving_tensorrt("r.example.com/triton:custom", None)
    stated = serving_tensorrt("r.example.com/triton:custom", "10.5.0.18")
    assert stated.version == "10.5.0.18" and "spec" in stated.source
    with pytest.raises(PlanBuildError, match=r"give the full version"):
        serving_tensorrt("r.example.com/triton:custom", "10")
    assert release_of("nvcr.io/nvidia/tritonserver:24.04-py3") == (24, 4)
    assert release_of("r.example.com/triton:custom") is None


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
        # "engines built with TensorRT 8 work with TensorRT 9 and TensorRT 10 runtimes"
        # (docs 10.16.1 version-compatibility); 11.1: "built with TensorRT 10 work with 11"
        ("8.6.1", "10.5.0", True, True),
        ("10.13.3.9", "11.1.0.106", True, True),
        ("8.5.3", "10.5.0", True, False),  # "the plan must be built with a version at least 8.6"
        ("10.5.0", "8.6.1", True, False),
        ("", "10.5.0", False, False),
    ],
)
def test_plan_loads(plan: str, runtime: str, compatible: bool, loads: bool) -> None:
    assert plan_loads(plan, runtime, compatible) is loads


def test_io_types_by_tensorrt_major_version() -> None:
    assert io_type_for("TYPE_INT64", "8.6.3") == "TYPE_INT32"
    assert io_type_for("TYPE_INT64", "10.5.0") == "TYPE_INT64"
    assert io_type_for("TYPE_FP32", "8.6.3") == "TYPE_FP32"
