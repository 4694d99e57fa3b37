"""Building plans up to the TensorRT boundary with trtexec: the command line per release, and
builds end to end against the strict fake trtexec (tests/fixtures/fake_trtexec.py), which
parses argv as the trtexec of FAKE_TRT_VERSION does and fails as it does.

No test here builds a real plan (that needs a GPU and TensorRT: `make gpu-check`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.unit.trt_fakes import (
    FIXTURES,
    bin_dir,
    calls,
    fake_gpu,
    fake_trtexec,
    load_fake_tensorrt,
    token_onnx,
)
from tritonkit.errors import PlanBuildError, TensorRTUnavailableError
from tritonkit.runtime import plan_builder
from tritonkit.runtime.plan_builder import BuildError, banner_version, trtexec_argv
from tritonkit.runtime.tokenizer import TokenizerParams
from tritonkit.tensorrt.build import (
    BuildOptions,
    PlanRecord,
    build_plan,
    choose_builder,
    read_metadata,
    write_metadata,
)
from tritonkit.tensorrt.profiles import plan_profiles
from tritonkit.tensorrt.recipe import make_recipe
from tritonkit.tensorrt.versions import TensorRTRelease

__all__ = ["bin_dir", "fake_gpu", "fake_trtexec"]  # fixtures

PROFILES = plan_profiles(
    TokenizerParams(max_length=128, buckets=(16, 64)), max_batch_size=8, opt_batch_size=4
)
ONE = plan_profiles(TokenizerParams(max_length=128), max_batch_size=8, opt_batch_size=4)
INPUTS = ("input_ids", "attention_mask")


def recipe(profiles: Any = PROFILES, **options: Any) -> dict[str, Any]:
    return {
        "inputs": list(INPUTS),
        "profiles": [p.as_dict() for p in profiles],
        "precision": "fp16",
        "workspace_mib": 4096,
        "optimization_level": 3,
        "hardware_compatibility": "none",
        "version_compatible": False,
        **options,
    }


def argv(version: tuple[int, ...], **options: Any) -> list[str]:
    return trtexec_argv("trtexec", version, recipe(**options), Path("m.onnx"), Path("p"), None)


def run_fake(version: str, args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    model = token_onnx(tmp_path / "m.onnx")
    args = [a.replace("=m.onnx", f"={model}") for a in args]
    return subprocess.run(
        [sys.executable, str(FIXTURES / "fake_trtexec.py"), *args],
        capture_output=True, text=True, env={"FAKE_TRT_VERSION": version, "PATH": "/usr/bin"},
        cwd=tmp_path,  # --saveEngine=p is relative: the fake's plan lands in tmp_path
    )  # fmt: skip


@pytest.mark.parametrize("version", [(9, 3, 0), (10, 0, 1), (10, 13, 3), (11, 1, 0)])
def test_profiles_are_grouped_behind_profile_n_from_9_0(version: tuple[int, ...]) -> None:
    """getOptimizationProfiles (TRT 11.1 sampleOptions.cpp:642-714; 9.0 :592-602): each
    --profile=N is followed directly by its shape flags (getAndDelOptionBehind matches only
    position pos+1, 11.1 :407), indexes 0..N-1."""
    command = argv(version, precision="fp32")
    start = command.index("--profile=0")
    assert command[start : start + 12] == [
        "--profile=0",
        "--minShapes=input_ids:1x1,attention_mask:1x1",
        "--optShapes=input_ids:4x16,attention_mask:4x16",
        "--maxShapes=input_ids:8x16,attention_mask:8x16",
        "--profile=1",
        "--minShapes=input_ids:1x17,attention_mask:1x17",
        "--optShapes=input_ids:4x64,attention_mask:4x64",
        "--maxShapes=input_ids:8x64,attention_mask:8x64",
        "--profile=2",
        "--minShapes=input_ids:1x65,attention_mask:1x65",
        "--optShapes=input_ids:4x128,attention_mask:4x128",
        "--maxShapes=input_ids:8x128,attention_mask:8x128",
    ]
    assert command[-2:] == ["--dumpOptimizationProfile", "--skipInference"]


@pytest.mark.parametrize("version", ["9.3.0", "10.5.0", "10.16.0", "11.1.0"])
def test_the_fake_takes_our_argv_and_refuses_the_old_one(version: str, tmp_path: Path) -> None:
    ours = argv(tuple(int(v) for v in version.split(".")), precision="fp32")[1:]
    done = run_fake(version, ours, tmp_path)
    assert done.returncode == 0, done.stdout
    assert "Model input input_ids (profile 2): min=1x65, opt=4x128, max=8x128" in done.stdout
    repeated = [a for a in ours if not a.startswith("--profile")]  # the argv of before
    done = run_fake(version, repeated, tmp_path)
    assert done.returncode == 1
    assert "Multiple --minShapes/--optShapes/--maxShapes without --profile are not allowed." in (
        done.stdout
    )


def test_the_fake_enforces_adjacency_and_contiguous_indexes(tmp_path: Path) -> None:
    base = ["--onnx=m.onnx", "--skipInference"]
    shapes = ["--minShapes=input_ids:1x1,attention_mask:1x1",
              "--optShapes=input_ids:2x8,attention_mask:2x8",
              "--maxShapes=input_ids:4x8,attention_mask:4x8"]  # fmt: skip
    apart = [*base, "--profile=0", "--fp16", *shapes]  # nothing adjacent: an empty profile 0
    assert "missing shape spec at profile index 0" in run_fake("10.5.0", apart, tmp_path).stdout
    extra = [*base, "--profile=0", *shapes, "--fp16", *shapes]  # a triple left over
    assert "Multiple --minShapes" in run_fake("10.5.0", extra, tmp_path).stdout
    gap = [*base, "--profile=1", *shapes]
    assert "missing shape spec at profile index 0" in run_fake("10.5.0", gap, tmp_path).stdout
    twice = [*base, "--profile=0", *shapes, "--profile=0", *shapes]
    assert "index cannot be the same" in run_fake("10.5.0", twice, tmp_path).stdout


def test_trtexec_8_6_builds_one_profile_and_refuses_several(tmp_path: Path) -> None:
    """8.6 has no --profile (none in release/8.6 sampleOptions.cpp) and reads one
    --minShapes/--optShapes/--maxShapes each (:870-872): a second triple is left over."""
    single = argv((8, 6, 1), profiles=ONE, precision="fp32")
    assert "--profile=0" not in single and "--dumpOptimizationProfile" not in single
    assert run_fake("8.6.1", single[1:], tmp_path).returncode == 0
    assert "Unknown option: --profile 0" in run_fake("8.6.1", argv((9, 3, 0))[1:], tmp_path).stdout
    with pytest.raises(BuildError) as error:
        argv((8, 6, 1))
    assert str(error.value) == (
        "trtexec 8.6.1 builds one optimization profile (no --profile option before TensorRT "
        "9.0) but the recipe has 3: build with the TensorRT Python API (import tensorrt), or "
        "use one profile (build-plan --profiles single)"
    )


def test_precision_flags_per_release(tmp_path: Path) -> None:
    """--fp16/--int8 exist up to 10.x and are gone in 11.0 (11.1 BuildOptions::parse has none;
    research §1.4): the fake 11 refuses them as unknown options; tritonkit never sends them."""
    assert "--fp16" in argv((10, 5, 0))
    assert argv((10, 5, 0), precision="int8").count("--int8") == 1
    assert not {"--fp16", "--int8"} & set(argv((11, 1, 0), precision="int8"))
    done = run_fake("11.1.0", [*argv((11, 1, 0), precision="fp32")[1:], "--fp16"], tmp_path)
    assert "Unknown option: --fp16" in done.stdout
    with pytest.raises(BuildError, match=r"TensorRT 11.1.0 builds strongly typed networks only"):
        argv((11, 1, 0))


def test_every_option_reaches_the_argv() -> None:
    command = trtexec_argv(
        "/usr/src/tensorrt/bin/trtexec", (10, 5, 0),
        recipe(profiles=ONE, precision="int8", workspace_mib=1024, optimization_level=5,
               hardware_compatibility="ampere+", version_compatible=True),
        Path("q.onnx"), Path("p.plan"), Path("/cache/t.cache"),
    )  # fmt: skip
    assert command[0] == "/usr/src/tensorrt/bin/trtexec"
    assert command[command.index("--maxShapes=input_ids:8x128,attention_mask:8x128") + 1 :] == [
        "--int8",
        "--fp16",
        "--memPoolSize=workspace:1024",
        "--builderOptimizationLevel=5",
        "--timingCacheFile=/cache/t.cache",
        "--hardwareCompatibilityLevel=ampere+",
        "--versionCompatible",
        "--dumpOptimizationProfile",
        "--skipInference",
    ]


@pytest.mark.parametrize(
    ("banner", "version"),
    [("[TensorRT v8601]", (8, 6, 1)), ("[TensorRT v100500]", (10, 5, 0)),
     ("[TensorRT v101303]", (10, 13, 3)), ("[TensorRT v110100]", (11, 1, 0))],
)  # fmt: skip
def test_banner_version(banner: str, version: tuple[int, ...]) -> None:
    """NV_TENSORRT_VERSION: major*1000+minor*100+patch in 8.x, major*10000+... from 10.0
    (NvInferRuntimeBase.h 10.0 :89-93)."""
    assert banner_version(f"&&&& RUNNING TensorRT.trtexec {banner} # trtexec --help") == version


def test_trtexec_is_found_where_nvidia_images_keep_it(
    bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not on PATH in NVIDIA's images: /usr/src/tensorrt/bin (Triton QA L0_perf_resnet)."""
    assert plan_builder.TRTEXEC_DIRS == ()  # the fixture hid the real list
    monkeypatch.undo()
    assert plan_builder.TRTEXEC_DIRS[0] == "/usr/src/tensorrt/bin"
    image_bin = tmp_path / "usr-src-tensorrt-bin"
    image_bin.mkdir()
    (image_bin / "trtexec").write_text("#!/bin/sh\n")
    (image_bin / "trtexec").chmod(0o755)
    monkeypatch.setattr(plan_builder, "TRTEXEC_DIRS", (str(image_bin),))
    assert plan_builder.find_trtexec({"PATH": str(bin_dir)}) == str(image_bin / "trtexec")


def test_neither_api_nor_trtexec(bin_dir: Path) -> None:
    with pytest.raises(TensorRTUnavailableError) as error:
        choose_builder(Path("m.onnx"))
    assert str(error.value) == (
        "m.onnx: cannot build a TensorRT plan on this machine: the TensorRT Python API (import "
        "tensorrt) and trtexec (PATH or ) are missing; let the plan be built on the serving GPU "
        "(tritonkit generate --defer-plan, as the Helm chart does), or serve the ONNX model with "
        "ONNX Runtime's TensorRT accelerator instead"
    )


@pytest.mark.parametrize(
    ("version", "profiles", "io_type"),
    [("8.6.1", ONE, "TYPE_INT32"), ("9.3.0", PROFILES, "TYPE_INT32"),
     ("10.0.1", PROFILES, "TYPE_INT64"), ("10.13.3", PROFILES, "TYPE_INT64")],
)  # fmt: skip
def test_trtexec_build_end_to_end(
    fake_trtexec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    version: str, profiles: Any, io_type: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("FAKE_TRT_VERSION", version)
    serving = TensorRTRelease(version, "test")
    record = build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "m_trt" / "1",
                        BuildOptions(profiles), serving=serving)  # fmt: skip
    (argv_,) = [c for c in calls(fake_trtexec) if c != ["--help"]]
    assert argv_.count("--skipInference") == 1
    folder = tmp_path / "m_trt" / "1"
    assert sorted(p.name for p in folder.iterdir()) == ["model.plan", "tensorrt.json"]
    plan = json.loads((folder / "model.plan").read_text())
    assert len(plan["profiles"]) == len(profiles) and plan["precision"] == ["--fp16"]
    assert record.builder == "trtexec" and record.tensorrt_version == version
    assert (record.gpu_name, record.compute_capability) == ("NVIDIA Fake L4", "8.9")
    assert record.io_types["input_ids"] == io_type  # predicted: trtexec does not print dtypes
    assert record.checked == (("profiles",) if not version.startswith("8.") else ())
    assert read_metadata(folder) == {"model.plan": record}


def test_the_build_number_is_read_from_the_image(
    fake_trtexec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trtexec's banner has X.Y.Z; NvInferVersion.h has the build (TRT 10.13 :26-33)."""
    header = tmp_path / "NvInferVersion.h"
    header.write_text(
        "#define TRT_MAJOR_ENTERPRISE 10\n#define TRT_MINOR_ENTERPRISE 5\n"
        "#define TRT_PATCH_ENTERPRISE 0\n#define TRT_BUILD_ENTERPRISE 18\n"
    )
    monkeypatch.setattr(plan_builder, "VERSION_HEADERS", (str(header),))
    record = build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "v", BuildOptions(PROFILES))
    assert record.tensorrt_version == "10.5.0.18"
    assert record.tensorrt_version_source == str(header)
    monkeypatch.setattr(plan_builder, "VERSION_HEADERS", ())
    monkeypatch.setenv("TRT_VERSION", "10.5.0.18+cuda12.6")  # NGC TensorRT images set it
    record = build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "w", BuildOptions(PROFILES))
    assert (record.tensorrt_version, record.tensorrt_version_source) == (
        "10.5.0.18", "environment TRT_VERSION"
    )  # fmt: skip
    monkeypatch.setenv("TRT_VERSION", "10.4.0.26")  # another release: not this library's
    record = build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "x", BuildOptions(PROFILES))
    assert record.tensorrt_version == "10.5.0"


def test_another_tensorrt_is_refused_before_the_plan_lands(
    fake_trtexec: Path, tmp_path: Path
) -> None:
    serving = TensorRTRelease("10.7.0.23", "test")
    options = BuildOptions(PROFILES, triton_image="nvcr.io/nvidia/tritonserver:24.12-py3")
    with pytest.raises(PlanBuildError) as error:
        build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "v", options, serving=serving)
    assert str(error.value) == (
        f"{tmp_path / 'm.onnx'}: this is TensorRT 10.5.0 but "
        "nvcr.io/nvidia/tritonserver:24.12-py3 runs TensorRT 10.7.0.23: a plan loads only on "
        "the TensorRT that built it; run this in nvcr.io/nvidia/tensorrt of the same release "
        "(or set tensorrt.image)"
    )
    assert not (tmp_path / "v").exists() or list((tmp_path / "v").iterdir()) == []


def test_trtexec_failure_leaves_nothing(
    fake_trtexec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRT_EXIT", "1")
    with pytest.raises(PlanBuildError) as error:
        build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "v", BuildOptions(PROFILES))
    assert str(error.value) == (
        f"{tmp_path / 'm.onnx'}: trtexec failed (exit 1): [E] Error[4]: fake failure requested "
        "by the test"
    )
    assert list((tmp_path / "v").iterdir()) == []


def test_a_plan_that_differs_from_the_recipe_is_refused(
    fake_trtexec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check reads the built plan (here the profiles trtexec printed), not the recipe."""
    real = plan_builder.dumped_profiles
    monkeypatch.setattr(plan_builder, "dumped_profiles", lambda out, i: real(out, i)[:2])
    with pytest.raises(PlanBuildError, match=r"the built plan does not match build_recipe.json"):
        build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "v", BuildOptions(PROFILES))
    assert list((tmp_path / "v").iterdir()) == []


def test_per_cc_plans_accumulate_in_one_metadata_file(fake_trtexec: Path, tmp_path: Path) -> None:
    model = token_onnx(tmp_path / "m.onnx")
    build_plan(model, tmp_path / "v", BuildOptions(PROFILES))
    record = build_plan(model, tmp_path / "v", BuildOptions(PROFILES, per_compute_capability=True))
    assert record.file == "model_sm89.plan"
    assert sorted(read_metadata(tmp_path / "v")) == ["model.plan", "model_sm89.plan"]


def test_no_gpu_is_one_line(bin_dir: Path, tmp_path: Path) -> None:
    from tests.unit.trt_fakes import install_trtexec

    install_trtexec(bin_dir)
    with pytest.raises(PlanBuildError) as error:
        build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "v", BuildOptions(PROFILES))
    assert str(error.value) == (
        f"{tmp_path / 'm.onnx'}: no NVIDIA GPU is visible (libcuda.so.1 and nvidia-smi found "
        "none): run on a GPU node with the NVIDIA container runtime and a GPU resource limit"
    )


def test_recipe_for_tensorrt_8_needs_the_api_for_several_profiles(tmp_path: Path) -> None:
    model = token_onnx(tmp_path / "m.onnx")
    old = make_recipe(model, BuildOptions(PROFILES), TensorRTRelease("8.6.3.1", "t"), "m.onnx")
    assert old.builders == ("api",)
    assert old.io_types["input_ids"] == "TYPE_INT32"
    new = make_recipe(model, BuildOptions(PROFILES), TensorRTRelease("10.7.0.23", "t"), "m.onnx")
    assert new.builders == ("api", "trtexec") and new.io_types["input_ids"] == "TYPE_INT64"
    with pytest.raises(PlanBuildError, match=r"builds strongly typed networks only"):
        make_recipe(model, BuildOptions(PROFILES), TensorRTRelease("11.1.0.106", "t"), "m.onnx")


def test_api_builds_several_profiles_on_tensorrt_8_6(
    fake_gpu: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_fake_tensorrt(monkeypatch, "8.6.3.1")
    serving = TensorRTRelease("8.6.3.1", "test")
    record = build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "v", BuildOptions(PROFILES),
                        serving=serving)  # fmt: skip
    assert record.builder == "api" and len(record.profiles) == 3
    assert record.io_types["input_ids"] == "TYPE_INT32"  # read from the engine
    assert record.checked == ("io", "profiles")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"profiles": ()}, "at least one optimization profile"),
        ({"optimization_level": 6}, "builder optimization level 6: use 0..5"),
        ({"workspace_mib": 0}, "workspace 0 MiB"),
    ],
)
def test_bad_build_options(kwargs: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"profiles": PROFILES, **kwargs}
    with pytest.raises(PlanBuildError, match=message):
        BuildOptions(**values)  # type: ignore[arg-type]


def test_metadata_round_trip_and_corruption(tmp_path: Path) -> None:
    record = PlanRecord(
        file="model.plan", tensorrt_version="10.5.0.18", builder="api", gpu_name="g",
        compute_capability="9.0", precision="fp16", hardware_compatibility="none",
        version_compatible=False, inputs=INPUTS, profiles=PROFILES,
        io_types={"input_ids": "TYPE_INT64"}, extra={"timing_cache": None},
    )  # fmt: skip
    write_metadata(tmp_path, record)
    assert read_metadata(tmp_path) == {"model.plan": record}
    (tmp_path / "tensorrt.json").write_text("{")
    with pytest.raises(PlanBuildError, match="unreadable plan metadata"):
        read_metadata(tmp_path)


def _gpu_tensorrt() -> str | None:
    """Why the GPU test cannot run here (None: it can)."""
    if plan_builder.import_tensorrt() is None and plan_builder.find_trtexec({}) is None:
        return "needs the TensorRT Python API or trtexec (not installable on these machines)"
    if shutil.which("nvidia-smi") is None:
        return "needs an NVIDIA GPU (nvidia-smi not found)"
    return None


@pytest.mark.gpu
@pytest.mark.skipif(_gpu_tensorrt() is not None, reason=str(_gpu_tensorrt()))
def test_real_build_on_a_gpu(tmp_path: Path) -> None:
    """A real fp16 plan with three per-bucket profiles, checked by the builder itself."""
    record = build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "v", BuildOptions(PROFILES))
    assert (tmp_path / "v" / "model.plan").stat().st_size > 1000
    assert "profiles" in record.checked


def test_trtexec_timing_cache_keyed_locked_and_a_corrupt_one_set_aside(
    fake_trtexec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trtexec reads, combines and writes the cache itself (under its own lockf on
    `<cache>.lock`, common.h 8.6 :1168-1207); tritonkit keys the file by version and GPU, holds
    its own flock around the run, and sets aside a cache trtexec cannot read (from 10.8 a failed
    setTimingCache ends the build, cacheUtils.cpp)."""
    monkeypatch.setenv("FAKE_TRT_VERSION", "10.13.3")
    caches = tmp_path / "caches"
    options = BuildOptions(PROFILES, timing_cache=caches)
    model = token_onnx(tmp_path / "m.onnx")
    build_plan(model, tmp_path / "a", options)
    path = caches / "tensorrt-10.13.3-sm89-nvidia-fake-l4.cache"
    assert len(json.loads(path.read_text())["fake_timing_cache"]) == 1
    build_plan(model, tmp_path / "b", options)
    assert len(json.loads(path.read_text())["fake_timing_cache"]) == 2  # combined
    path.write_text("corrupt")
    record = build_plan(model, tmp_path / "c", options)
    assert record.extra["timing_cache"] == path.name
    assert len(json.loads(path.read_text())["fake_timing_cache"]) == 1  # a fresh cache
    (aside,) = caches.glob("*.unreadable-*")
    assert aside.read_text() == "corrupt"
