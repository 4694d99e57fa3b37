"""Spec keys that reach the generated repository: buckets, the ORT TensorRT accelerator,
TensorRT plan variants (the trtexec path runs against a fake trtexec: no real plan here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import onnx
import pytest

from tests.unit.trt_fakes import bin_dir, fake_gpu, fake_trtexec
from tritonkit.errors import PlanBuildError, SpecError, TensorRTUnavailableError
from tritonkit.pipeline.generate import generate
from tritonkit.repository.pbtxt import read_config
from tritonkit.repository.validate import validate_repository
from tritonkit.spec import build_spec


def spec_for(model: Path, out: Path, **keys: object):  # type: ignore[no-untyped-def]
    return build_spec(
        None,
        {"model": model, "task": "text-classification", "name": "cls", "output": out, **keys},
    )


@pytest.fixture()
def cls_model(tiny_model_dirs: dict[str, Path]) -> Path:
    return tiny_model_dirs["text-classification"]


def test_buckets_derived_from_a_corpus(cls_model: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(["short one"] * 20 + ["a somewhat longer text here"] * 10))
    spec = spec_for(
        cls_model, tmp_path / "repo", tokenizer={"bucket_count": 3, "bucket_corpus": corpus}
    )
    repo = generate(spec).output
    tokenizer = read_config(repo / "cls_tokenizer" / "config.pbtxt")
    buckets = [int(b) for b in tokenizer.parameters["buckets"].string_value.split(",")]
    assert buckets[-1] == 64 and len(buckets) == 3 and buckets == sorted(buckets)
    assert json.loads((repo / "tritonkit.json").read_text())["buckets"] == buckets


def test_explicit_buckets_and_none(cls_model: Path, tmp_path: Path) -> None:
    repo = generate(spec_for(cls_model, tmp_path / "a", tokenizer={"buckets": [16, 8]})).output
    tokenizer = read_config(repo / "cls_tokenizer" / "config.pbtxt")
    assert tokenizer.parameters["buckets"].string_value == "8,16"
    repo = generate(spec_for(cls_model, tmp_path / "b")).output
    tokenizer = read_config(repo / "cls_tokenizer" / "config.pbtxt")
    assert tokenizer.parameters["buckets"].string_value == ""


def test_ort_tensorrt_accelerator(cls_model: Path, tmp_path: Path) -> None:
    spec = spec_for(cls_model, tmp_path / "repo", device="gpu", tensorrt={"accelerator": True})
    repo = generate(spec).output
    config = read_config(repo / "cls_onnx" / "config.pbtxt")
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    assert accelerator.parameters["precision_mode"] == "FP16"
    assert accelerator.parameters["trt_engine_cache_path"] == "/trt-cache/cls"
    assert accelerator.parameters["trt_profile_max_shapes"].startswith("input_ids:32x64")
    assert validate_repository(repo) == []
    with pytest.raises(SpecError) as info:  # a cross-field rule: refused before any work
        spec_for(cls_model, tmp_path / "cpu", tensorrt={"accelerator": True})
    assert str(info.value) == (
        "spec: tensorrt.accelerator: ONNX Runtime's TensorRT accelerator needs device: gpu"
    )


IMAGE = "nvcr.io/nvidia/tritonserver:24.12-py3"  # verified: TensorRT 10.7.0.23
__all__ = ["bin_dir", "fake_gpu", "fake_trtexec"]  # fixtures


def test_trt_variant_needs_a_gpu_target_a_known_image_and_tensorrt(
    cls_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SpecError) as info:
        spec_for(cls_model, tmp_path / "r", variant="trt-fp16")
    assert str(info.value) == (
        "spec: variant: trt-fp16: TensorRT plans are for GPU targets: set device: gpu"
    )
    unverified = spec_for(cls_model, tmp_path / "r", variant="trt-fp16", device="gpu")
    with pytest.raises(PlanBuildError, match=r"its row \(10.5.0.18\) is unverified"):
        generate(unverified, defer_plan=True)
    old = spec_for(cls_model, tmp_path / "r", variant="trt-fp16", device="gpu",
                   triton_image="nvcr.io/nvidia/tritonserver:24.02-py3")  # fmt: skip
    with pytest.raises(PlanBuildError, match=r"runs TensorRT 8.6.3.1: TensorRT 8 plans take int32"):
        generate(old, defer_plan=True)
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setattr("tritonkit.runtime.plan_builder.TRTEXEC_DIRS", ())
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    spec = spec_for(cls_model, tmp_path / "r", variant="trt-fp16", device="gpu",
                    triton_image=IMAGE)  # fmt: skip
    with pytest.raises(TensorRTUnavailableError, match="cannot build a TensorRT plan"):
        generate(spec)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]


def test_defer_plan_only_for_tensorrt_variants(cls_model: Path, tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        generate(spec_for(cls_model, tmp_path / "r"), defer_plan=True)
    assert str(info.value) == (
        "--defer-plan: variant fp32 has no TensorRT plan to defer (only trt-fp16, trt-int8): "
        "drop --defer-plan"
    )


def test_trt_variant_built_here_with_trtexec(
    cls_model: Path, tmp_path: Path, fake_trtexec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where TensorRT exists, generate builds the plan in the staged repository through the
    same recipe and builder the pod runs, and validates it with the rest."""
    monkeypatch.setenv("FAKE_TRT_VERSION", "10.7.0")
    monkeypatch.setenv("TRT_VERSION", "10.7.0.23+cuda12.6")
    spec = spec_for(cls_model, tmp_path / "repo", variant="trt-fp16", device="gpu",
                    triton_image=IMAGE, tokenizer={"buckets": [16, 32]},
                    tensorrt={"cuda_graphs": True})  # fmt: skip
    repo = generate(spec).output
    assert not (repo / "cls_onnx").exists()
    config = read_config(repo / "cls_trt" / "config.pbtxt")
    assert config.platform == "tensorrt_plan"
    assert list(config.instance_group[0].profile) == ["0", "1", "2"]
    assert [g.batch_size for g in config.optimization.cuda.graph_spec] == [1, 32]
    assert not any(g.input for g in config.optimization.cuda.graph_spec)
    plan = json.loads((repo / "cls_trt" / "1" / "model.plan").read_text())
    assert len(plan["profiles"]) == 3  # buckets 16, 32 and the max length 64
    ensemble = read_config(repo / "cls" / "config.pbtxt")
    assert ensemble.ensemble_scheduling.step[1].model_name == "cls_trt"
    assert validate_repository(repo) == []
    record = json.loads((repo / "cls_trt" / "1" / "tensorrt.json").read_text())["plans"][0]
    assert record["tensorrt_version"] == "10.7.0.23"
    readme = (repo / "README.md").read_text()
    assert "| `cls_trt` | tensorrt_plan |" in readme and "## TensorRT plan (`trt-fp16`)" in readme


def test_trt_int8_feeds_the_int8_qdq_model(cls_model: Path, tmp_path: Path) -> None:
    """trt-int8 is built from the gated int8-qdq variant, never from the plain export."""
    spec = spec_for(cls_model, tmp_path / "repo", variant="trt-int8", device="gpu",
                    triton_image=IMAGE, optimize={"max_accuracy_drop": 100})  # fmt: skip
    result = generate(spec, defer_plan=True)
    model = onnx.load(str(result.output / "cls_trt" / "onnx" / "model.onnx"))
    assert sum(n.op_type == "QuantizeLinear" for n in model.graph.node) > 0
    recipe = json.loads((result.output / "cls_trt" / "build_recipe.json").read_text())
    assert recipe["precision"] == "int8"
    assert result.variant is not None and result.variant["name"] == "int8-qdq"
    assert validate_repository(result.output) == []


def test_accelerator_on_a_fused_graph_gets_no_explicit_profiles(
    cls_model: Path, tmp_path: Path
) -> None:
    """ORT splits a graph with com.microsoft operators; its TensorRT subgraphs' inputs are
    internal tensors the profile strings cannot name, which fails the session
    (microsoft/onnxruntime#17007): the profiles are left out and the README says why."""
    accelerator = {"accelerator": True}
    spec = spec_for(cls_model, tmp_path / "repo", device="gpu", variant="fp32-fused",
                    tensorrt=accelerator, optimize={"max_accuracy_drop": 100})  # fmt: skip
    repo = generate(spec).output
    config = read_config(repo / "cls_onnx" / "config.pbtxt")
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert "trt_engine_cache_path" in accelerator.parameters
    assert not [k for k in accelerator.parameters if k.startswith("trt_profile")]
    readme = (repo / "README.md").read_text()
    assert "Note: ONNX Runtime's TensorRT accelerator gets no explicit shape profiles" in readme
    assert validate_repository(repo) == []
