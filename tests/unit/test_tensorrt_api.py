"""The TensorRT Python API path against a fake `tensorrt` that enforces the documented return
values (tests/fixtures/fake_tensorrt): version-compatible deserialization, the timing cache
(per GPU and version, every return value checked, merged under a lock), TensorRT 11."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import ModuleType

import pytest

from tests.unit.trt_fakes import bin_dir, fake_gpu, load_fake_tensorrt, token_onnx
from tritonkit.errors import PlanBuildError
from tritonkit.runtime import plan_builder
from tritonkit.runtime.plan_builder import BuildError, cache_file, inspect_plan, locked
from tritonkit.runtime.tokenizer import TokenizerParams
from tritonkit.tensorrt.build import BuildOptions, build_plan
from tritonkit.tensorrt.profiles import plan_profiles

__all__ = ["bin_dir", "fake_gpu"]  # fixtures

PROFILES = plan_profiles(TokenizerParams(max_length=64, buckets=(16,)), 8, 4)


@pytest.fixture
def trt(fake_gpu: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_fake_tensorrt(monkeypatch, "10.5.0.18")


def test_version_compatible_plans_are_deserialized_with_host_code_allowed(
    trt: ModuleType, tmp_path: Path
) -> None:
    """A version-compatible plan embeds a lean runtime: deserialize_cuda_engine needs
    runtime.engine_host_code_allowed = True first (developer guide, version compatibility;
    trtexec sampleEngines.cpp 11.1 :113-118), else it returns None."""
    options = BuildOptions(PROFILES, version_compatible=True)
    record = build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "v", options)
    assert record.version_compatible and record.checked == ("io", "profiles")
    assert "deserialize(host_code_allowed=True)" in trt.CALLS
    plan = (tmp_path / "v" / "model.plan").read_bytes()
    with pytest.raises(BuildError) as error:  # without the opt-in: None, never AttributeError
        inspect_plan(trt, plan, version_compatible=False)
    assert str(error.value) == (
        "TensorRT could not deserialize the plan it built (its log says why)"
    )
    assert set(json.loads(plan)["precision"]) == {"FP16", "VERSION_COMPATIBLE"}


def test_a_failed_build_is_one_line(
    trt: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRT_BUILD_FAILS", "1")
    with pytest.raises(PlanBuildError) as error:
        build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "v", BuildOptions(PROFILES))
    assert str(error.value).endswith("TensorRT could not build the plan (its log above says why)")
    assert list((tmp_path / "v").iterdir()) == []


def test_the_parser_refuses_contrib_operators(trt: ModuleType, tmp_path: Path) -> None:
    model = token_onnx(tmp_path / "m.onnx", domain="com.microsoft")
    with pytest.raises(PlanBuildError, match=r"operators outside ai.onnx \['com.microsoft:Re"):
        build_plan(model, tmp_path / "v", BuildOptions(PROFILES))


def test_timing_cache_per_gpu_and_version_merged(
    trt: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One file per (TensorRT version, GPU) in the folder; a second build combines into it."""
    caches = tmp_path / "caches"
    options = BuildOptions(PROFILES, timing_cache=caches)
    build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "a", options)
    (path,) = [p for p in caches.iterdir() if p.suffix == ".cache"]
    assert path.name == "tensorrt-10.5.0.18-sm89-nvidia-fake-l4.cache"
    assert path == cache_file(caches, "10.5.0.18", ("NVIDIA Fake L4", "8.9"))
    build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "b", options)
    assert len(json.loads(path.read_text())["entries"]) == 2
    assert trt.CALLS.count("combine") == 1


def _warnings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    lines: list[str] = []
    real = plan_builder.build
    monkeypatch.setattr(
        plan_builder, "build", lambda *a, **k: real(*a, **{**k, "log": lines.append})
    )
    return lines


@pytest.mark.parametrize(
    ("content", "warning"),
    [
        (b"not a cache", "is not a timing cache this TensorRT reads: ignored"),
        (  # made on another device: set_timing_cache returns False
            json.dumps({"version": "10.5.0.18", "device": "9.0", "entries": ["x"]}).encode(),
            "was made on another GPU: starting a fresh timing cache",
        ),
    ],
)
def test_a_foreign_or_corrupt_cache_is_ignored_with_a_warning(
    trt: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes,
    warning: str,
) -> None:  # fmt: skip
    caches = tmp_path / "caches"
    path = cache_file(caches, "10.5.0.18", ("NVIDIA Fake L4", "8.9"))
    caches.mkdir()
    path.write_bytes(content)
    lines = _warnings(monkeypatch)
    build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "v", BuildOptions(PROFILES,
               timing_cache=caches))  # fmt: skip
    assert [w for w in lines if w.startswith("warning:")] == [f"warning: {path} {warning}"]
    assert json.loads(path.read_text())["version"] == "10.5.0.18"  # a valid cache again


def test_a_cache_that_cannot_be_combined_is_replaced(
    trt: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """combine returns False for another TensorRT build's cache ("exact same version,
    otherwise combine will be skipped and return false", pyCoreDoc.h 11.1 :1416-1427); here
    another writer puts one in the file while this build runs."""
    caches = tmp_path / "caches"
    path = cache_file(caches, "10.5.0.18", ("NVIDIA Fake L4", "8.9"))
    real = trt.Builder.build_serialized_network

    def meanwhile(self: object, network: object, config: object) -> bytes | None:
        path.write_text(json.dumps({"version": "10.5.0.17", "device": "8.9", "entries": ["x"]}))
        return real(self, network, config)

    monkeypatch.setattr(trt.Builder, "build_serialized_network", meanwhile)
    lines = _warnings(monkeypatch)
    build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "v", BuildOptions(PROFILES,
               timing_cache=caches))  # fmt: skip
    assert lines[-1] == f"warning: {path} could not be merged (another TensorRT build): replaced"
    assert json.loads(path.read_text())["version"] == "10.5.0.18"


def test_no_timing_cache_kept_leaves_the_file(
    trt: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """get_timing_cache() is None when no cache is set (pyCoreDoc.h 11.1 :1680-1683)."""
    monkeypatch.setattr(trt.BuilderConfig, "get_timing_cache", lambda self: None)
    lines = _warnings(monkeypatch)
    caches = tmp_path / "caches"
    build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "v", BuildOptions(PROFILES,
               timing_cache=caches))  # fmt: skip
    assert any("TensorRT kept no timing cache" in w for w in lines)
    assert not list(caches.glob("*.cache"))


def test_the_cache_lock_is_exclusive_across_read_merge_write(tmp_path: Path) -> None:
    """flock on a file of its own (trtexec lockf()s `<cache>.lock` itself: common.h 8.6)."""
    path = tmp_path / "c.cache"
    order: list[str] = []

    def second() -> None:
        with locked(path):
            order.append("second")

    with locked(path):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        order.append("first done")
    thread.join(5)
    assert order == ["first done", "second"]
    assert (tmp_path / "c.cache.tritonkit-lock").exists()


def test_tensorrt_11_builds_int8_strongly_typed_and_refuses_fp16(
    fake_gpu: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """11.x has no BuilderFlag.FP16/INT8 and no EXPLICIT_BATCH (pyCore.cpp 11.1 :1599-1621,
    :1771-1778): int8 comes from the Q/DQ nodes alone; fp16 is refused in one line."""
    trt = load_fake_tensorrt(monkeypatch, "11.1.0.106")
    assert not hasattr(trt.BuilderFlag, "FP16")
    model = token_onnx(tmp_path / "q.onnx", qdq="int8")
    record = build_plan(model, tmp_path / "v", BuildOptions(PROFILES, precision="int8"))
    assert (
        record.strongly_typed
        and json.loads((tmp_path / "v/model.plan").read_text())["precision"] == []
    )
    with pytest.raises(PlanBuildError, match=r"TensorRT 11.1.0 builds strongly typed networks"):
        build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "w", BuildOptions(PROFILES))
