"""Building plans up to the TensorRT boundary: the exact trtexec command line, the builder choice,
and the trtexec path end to end against a fake trtexec that records its argv.

The fake writes a few bytes where the plan goes and prints the lines a real trtexec prints; no
test here builds a real plan (that needs a GPU and TensorRT: see the gpu-marked test).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tritonkit.errors import PlanBuildError, TensorRTUnavailableError
from tritonkit.runtime.tokenizer import TokenizerParams
from tritonkit.tensorrt.build import (
    BuildOptions,
    PlanRecord,
    build_plan,
    choose_builder,
    read_metadata,
    trtexec_command,
    write_metadata,
)
from tritonkit.tensorrt.profiles import Profile, plan_profiles

FAKE_TRTEXEC = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_TRTEXEC_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
version = os.environ.get("FAKE_TRT_VERSION", "10.5.0")
major, minor, patch = (int(x) for x in version.split(".")[:3])
# TensorRT 10 encodes major*10000 + minor*100 + patch, TensorRT 8 major*1000 + minor*100 + patch
banner = major * (10000 if major >= 10 else 1000) + minor * 100 + patch
print(f"&&&& RUNNING TensorRT.trtexec [TensorRT v{{banner}}] # trtexec")
print("[I] === Device Information ===")
print("[I] Selected Device: Fake GPU (not a real build)")
print("[I] Compute Capability: 8.9")
if os.environ.get("FAKE_TRT_PRINT_VERSION", "1") == "1":
    print(f"[I] TensorRT version: {{version}}")
code = int(os.environ.get("FAKE_TRT_EXIT", "0"))
if code:
    print("[E] Error[4]: fake failure requested by the test", file=sys.stderr)
    sys.exit(code)
plan = next(a.split("=", 1)[1] for a in args if a.startswith("--saveEngine="))
with open(plan, "wb") as f:
    f.write(b"FAKE-PLAN")
print("&&&& PASSED TensorRT.trtexec")
"""


def token_onnx(path: Path, *, token_type_ids: bool = False, qdq: str | None = None) -> Path:
    """A tiny [batch, seq] token model; `qdq` adds a QuantizeLinear pair ("int8", "uint8",
    "asymmetric") the way a static-quantized export carries them."""
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if token_type_ids else [])
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in names]
    output = helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", 1])
    nodes = [
        helper.make_node("Mul", ["input_ids", "attention_mask"], ["masked"]),
        helper.make_node("Cast", ["masked"], ["as_float"], to=TensorProto.FLOAT),
    ]
    initializers = [helper.make_tensor("axes", TensorProto.INT64, [1], [1])]
    summed = "as_float"
    if qdq is not None:
        dtype = np.uint8 if qdq == "uint8" else np.int8
        zero = np.array(3 if qdq == "asymmetric" else 0, dtype=dtype)
        initializers += [
            numpy_helper.from_array(np.array(0.1, dtype=np.float32), "scale"),
            numpy_helper.from_array(zero, "zero"),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", ["as_float", "scale", "zero"], ["q"], name="q0"),
            helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["dq"], name="dq0"),
        ]
        summed = "dq"
    nodes.append(helper.make_node("ReduceSum", [summed, "axes"], ["embeddings"], keepdims=1))
    graph = helper.make_graph(nodes, "tokens", inputs, [output], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def no_tensorrt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Neither `import tensorrt` nor trtexec: PATH holds only an empty folder (returned)."""
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import raises ImportError
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


@pytest.fixture
def fake_trtexec(no_tensorrt: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fake trtexec on PATH; returns the file its argv lists are appended to (JSON lines)."""
    script = no_tensorrt / "trtexec"
    script.write_text(FAKE_TRTEXEC.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "trtexec-argv.jsonl"
    monkeypatch.setenv("FAKE_TRTEXEC_LOG", str(log))
    return log


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


PROFILES = plan_profiles(
    TokenizerParams(max_length=128, buckets=(16, 64)), max_batch_size=8, opt_batch_size=4
)
INPUTS = ("input_ids", "attention_mask")


def test_trtexec_command_default_fp16_per_bucket() -> None:
    command = trtexec_command(Path("m.onnx"), Path("v/model.plan"), INPUTS, BuildOptions(PROFILES))
    assert command == [
        "trtexec",
        "--onnx=m.onnx",
        "--saveEngine=v/model.plan",
        "--minShapes=input_ids:1x1,attention_mask:1x1",
        "--optShapes=input_ids:4x16,attention_mask:4x16",
        "--maxShapes=input_ids:8x16,attention_mask:8x16",
        "--minShapes=input_ids:1x17,attention_mask:1x17",
        "--optShapes=input_ids:4x64,attention_mask:4x64",
        "--maxShapes=input_ids:8x64,attention_mask:8x64",
        "--minShapes=input_ids:1x65,attention_mask:1x65",
        "--optShapes=input_ids:4x128,attention_mask:4x128",
        "--maxShapes=input_ids:8x128,attention_mask:8x128",
        "--fp16",
        "--memPoolSize=workspace:4096",
        "--builderOptimizationLevel=3",
        "--skipInference",
    ]


def test_trtexec_command_int8_with_every_option() -> None:
    options = BuildOptions(
        (Profile((1, 1), (2, 32), (4, 32)),),
        precision="int8",
        workspace_mib=1024,
        timing_cache=Path("/cache/bert.timing"),
        optimization_level=5,
        hardware_compatibility="ampere+",
        version_compatible=True,
    )
    command = trtexec_command(Path("q.onnx"), Path("p.plan"), ("input_ids",), options)
    assert command == [
        "trtexec",
        "--onnx=q.onnx",
        "--saveEngine=p.plan",
        "--minShapes=input_ids:1x1",
        "--optShapes=input_ids:2x32",
        "--maxShapes=input_ids:4x32",
        "--int8",
        "--fp16",
        "--memPoolSize=workspace:1024",
        "--builderOptimizationLevel=5",
        "--timingCacheFile=/cache/bert.timing",
        "--hardwareCompatibilityLevel=ampere+",
        "--versionCompatible",
        "--skipInference",
    ]


def test_trtexec_command_fp32_sets_no_precision_flag() -> None:
    command = trtexec_command(Path("m"), Path("p"), INPUTS, BuildOptions(PROFILES, "fp32"))
    assert not {"--fp16", "--int8"} & set(command)


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


def test_neither_api_nor_trtexec(no_tensorrt: Path) -> None:
    with pytest.raises(TensorRTUnavailableError) as error:
        choose_builder(Path("m.onnx"))
    assert str(error.value) == (
        "m.onnx: cannot build a TensorRT plan on this machine: the TensorRT Python API "
        "(import tensorrt) and trtexec on PATH are both missing; build it on a GPU node inside "
        "the target Triton image (the Helm chart's init container runs tritonkit build-plan), "
        "or serve the ONNX model with ONNX Runtime's TensorRT accelerator instead"
    )


def test_insisting_on_the_api_with_only_trtexec(fake_trtexec: Path) -> None:
    assert choose_builder(Path("m.onnx")) == "trtexec"
    with pytest.raises(TensorRTUnavailableError, match=r"Python API \(import tensorrt\) is"):
        choose_builder(Path("m.onnx"), prefer="api")


def test_trtexec_path_end_to_end(fake_trtexec: Path, tmp_path: Path) -> None:
    model = token_onnx(tmp_path / "model.onnx", token_type_ids=True)
    timing = tmp_path / "cache.timing"
    options = BuildOptions(PROFILES, timing_cache=timing, triton_image="img:24.10-py3")
    record = build_plan(model, tmp_path / "m_trt" / "1", options)
    version_dir = tmp_path / "m_trt" / "1"
    inputs = ("input_ids", "attention_mask", "token_type_ids")
    temporary = version_dir / f".build-{os.getpid()}.plan"  # moved into place afterwards
    assert calls(fake_trtexec) == [trtexec_command(model, temporary, inputs, options)[1:]]
    assert (version_dir / "model.plan").read_bytes() == b"FAKE-PLAN"
    assert sorted(p.name for p in version_dir.iterdir()) == ["model.plan", "tensorrt.json"]
    assert record.builder == "trtexec"
    assert record.tensorrt_version == "10.5.0"
    assert (record.gpu_name, record.compute_capability) == ("Fake GPU (not a real build)", "8.9")
    assert record.profiles == PROFILES
    assert record.inputs == inputs
    # TensorRT 10 keeps INT64 I/O
    assert record.io_types == {
        "input_ids": "TYPE_INT64",
        "attention_mask": "TYPE_INT64",
        "token_type_ids": "TYPE_INT64",
        "embeddings": "TYPE_FP32",
    }
    assert read_metadata(version_dir) == {"model.plan": record}


def test_trtexec_8x_exposes_int32_and_banner_version(
    fake_trtexec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRT_VERSION", "8.6.1")
    monkeypatch.setenv("FAKE_TRT_PRINT_VERSION", "0")  # only the [TensorRT v...] banner
    record = build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "v", BuildOptions(PROFILES))
    assert record.tensorrt_version == "8.6.1"
    assert record.io_types["input_ids"] == "TYPE_INT32"


def test_banner_version_decoding(
    fake_trtexec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRT_PRINT_VERSION", "0")
    monkeypatch.setenv("FAKE_TRT_VERSION", "10.13.3")
    record = build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "v", BuildOptions(PROFILES))
    assert record.tensorrt_version == "10.13.3"


def test_per_cc_plans_accumulate_in_one_metadata_file(fake_trtexec: Path, tmp_path: Path) -> None:
    model = token_onnx(tmp_path / "m.onnx")
    version_dir = tmp_path / "v"
    build_plan(model, version_dir, BuildOptions(PROFILES))
    record = build_plan(model, version_dir, BuildOptions(PROFILES, per_compute_capability=True))
    assert record.file == "model_sm89.plan"
    assert sorted(read_metadata(version_dir)) == ["model.plan", "model_sm89.plan"]


def test_trtexec_failure_leaves_nothing(
    fake_trtexec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRT_EXIT", "1")
    with pytest.raises(PlanBuildError) as error:
        build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "v", BuildOptions(PROFILES))
    assert str(error.value) == (
        f"{tmp_path / 'm.onnx'}: trtexec failed (exit 1): "
        "[E] Error[4]: fake failure requested by the test"
    )
    assert list((tmp_path / "v").iterdir()) == []


def test_plan_for_another_image_is_refused_before_it_lands(
    fake_trtexec: Path, tmp_path: Path
) -> None:
    options = BuildOptions(PROFILES, triton_image="nvcr.io/nvidia/tritonserver:24.02-py3")
    with pytest.raises(PlanBuildError) as error:
        build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "v", options)
    assert str(error.value).endswith(
        "built with TensorRT 10.5.0 but nvcr.io/nvidia/tritonserver:24.02-py3 runs TensorRT "
        "8.6.3: build inside that image"
    )
    assert list((tmp_path / "v").iterdir()) == []


def test_int8_needs_a_qdq_model(fake_trtexec: Path, tmp_path: Path) -> None:
    options = BuildOptions(PROFILES, precision="int8")
    with pytest.raises(PlanBuildError, match="int8 needs the QDQ model of the int8-static"):
        build_plan(token_onnx(tmp_path / "m.onnx"), tmp_path / "v", options)
    for kind in ("uint8", "asymmetric"):
        model = token_onnx(tmp_path / f"{kind}.onnx", qdq=kind)
        with pytest.raises(PlanBuildError, match="TensorRT takes only symmetric int8 Q/DQ"):
            build_plan(model, tmp_path / "v", options)
    record = build_plan(token_onnx(tmp_path / "q.onnx", qdq="int8"), tmp_path / "v", options)
    assert record.precision == "int8"
    assert "--int8" in calls(fake_trtexec)[-1]


def test_non_token_inputs_are_refused(fake_trtexec: Path, tmp_path: Path) -> None:
    from tests.fixtures.tiny_onnx import build_tiny_onnx

    model = build_tiny_onnx(tmp_path / "tiny.onnx")
    with pytest.raises(PlanBuildError, match=r"inputs \['X', 'IDS'\] are not \[batch, seq\]"):
        build_plan(model, tmp_path / "v", BuildOptions(PROFILES))


def test_metadata_round_trip_and_corruption(tmp_path: Path) -> None:
    record = PlanRecord(
        file="model.plan",
        tensorrt_version="10.5.0.18",
        builder="api",
        gpu_name="g",
        compute_capability="9.0",
        precision="fp16",
        hardware_compatibility="none",
        version_compatible=False,
        inputs=INPUTS,
        profiles=PROFILES,
        io_types={"input_ids": "TYPE_INT64"},
    )
    write_metadata(tmp_path, record)
    assert read_metadata(tmp_path) == {"model.plan": record}
    (tmp_path / "tensorrt.json").write_text("{")
    with pytest.raises(PlanBuildError, match="unreadable plan metadata"):
        read_metadata(tmp_path)


def _gpu_tensorrt() -> str | None:
    """Why the GPU test cannot run here (None: it can)."""
    try:
        import tensorrt  # noqa: F401
    except Exception:
        if shutil.which("trtexec") is None:
            return "needs the TensorRT Python API or trtexec (not installable on these machines)"
    if shutil.which("nvidia-smi") is None:
        return "needs an NVIDIA GPU (nvidia-smi not found)"
    return None


@pytest.mark.gpu
@pytest.mark.skipif(_gpu_tensorrt() is not None, reason=str(_gpu_tensorrt()))
def test_real_build_on_a_gpu(tmp_path: Path) -> None:
    """A real fp16 plan with three per-bucket profiles; the engine's own profile shapes match."""
    model = token_onnx(tmp_path / "m.onnx")
    record = build_plan(model, tmp_path / "v", BuildOptions(PROFILES))
    plan = tmp_path / "v" / "model.plan"
    assert plan.stat().st_size > 1000
    assert record.compute_capability.replace(".", "").isdigit()
    if record.builder == "api":
        import tensorrt as trt

        engine = trt.Runtime(trt.Logger()).deserialize_cuda_engine(plan.read_bytes())
        assert engine.num_optimization_profiles == len(PROFILES)
        for index, profile in enumerate(PROFILES):
            shapes = engine.get_tensor_profile_shape("input_ids", index)
            assert [tuple(s) for s in shapes] == [profile.min, profile.opt, profile.max]
