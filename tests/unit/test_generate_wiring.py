"""Spec keys that reach the generated repository: buckets, the ORT TensorRT accelerator,
TensorRT plan variants (the trtexec path runs against a fake trtexec: no real plan here)."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from tests.unit.test_tensorrt_build import FAKE_TRTEXEC
from tritonkit.errors import SpecError, TensorRTUnavailableError
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


def test_trt_variant_needs_a_gpu_target_and_tensorrt(
    cls_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SpecError) as info:
        spec_for(cls_model, tmp_path / "r", variant="trt-fp16")
    assert str(info.value) == (
        "spec: variant: trt-fp16: TensorRT plans are for GPU targets: set device: gpu"
    )
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(TensorRTUnavailableError, match="cannot build a TensorRT plan"):
        generate(spec_for(cls_model, tmp_path / "r", variant="trt-fp16", device="gpu"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]


def test_trt_variant_with_trtexec(
    cls_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "trtexec"
    script.write_text(FAKE_TRTEXEC.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("FAKE_TRTEXEC_LOG", str(tmp_path / "argv.jsonl"))
    spec = spec_for(
        cls_model,
        tmp_path / "repo",
        variant="trt-fp16",
        device="gpu",
        tokenizer={"buckets": [16, 32]},
    )
    repo = generate(spec).output
    assert not (repo / "cls_onnx").exists()
    config = read_config(repo / "cls_trt" / "config.pbtxt")
    assert config.platform == "tensorrt_plan"
    assert (repo / "cls_trt" / "1" / "model.plan").read_bytes() == b"FAKE-PLAN"
    ensemble = read_config(repo / "cls" / "config.pbtxt")
    assert ensemble.ensemble_scheduling.step[1].model_name == "cls_trt"
    argv = json.loads((tmp_path / "argv.jsonl").read_text().splitlines()[0])
    assert "--fp16" in argv
    assert sum(a.startswith("--maxShapes=") for a in argv) == 3  # buckets 16, 32 and 64
    assert validate_repository(repo) == []
