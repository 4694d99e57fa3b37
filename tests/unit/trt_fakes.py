"""Test doubles for the TensorRT boundary (no GPU, no TensorRT here): a strict fake trtexec
(tests/fixtures/fake_trtexec.py), a fake `tensorrt` module (tests/fixtures/fake_tensorrt), a
fake nvidia-smi, and tiny token models."""

from __future__ import annotations

import importlib.util
import json
import stat
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FAKE_TENSORRT = FIXTURES / "fake_tensorrt"


def token_onnx(
    path: Path,
    *,
    token_type_ids: bool = False,
    qdq: str | None = None,
    domain: str = "",
    opset: int = 17,
) -> Path:
    """A tiny [batch, seq] token model; `qdq` adds a QuantizeLinear/DequantizeLinear pair
    ("int8", "uint8", "asymmetric", "no-zero-point", "constant-zero"), `domain` puts its
    ReduceSum in another operator domain."""
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
        initializers.append(numpy_helper.from_array(np.array(0.1, dtype=np.float32), "scale"))
        zero_inputs = ["scale", "zero"]
        if qdq == "constant-zero":
            nodes.append(helper.make_node("Constant", [], ["zero"],
                                          value=numpy_helper.from_array(zero, "zero")))  # fmt: skip
        elif qdq == "no-zero-point":
            zero_inputs = ["scale"]
        else:
            initializers.append(numpy_helper.from_array(zero, "zero"))
        nodes += [
            helper.make_node("QuantizeLinear", ["as_float", *zero_inputs], ["q"], name="q0"),
            helper.make_node("DequantizeLinear", ["q", *zero_inputs], ["dq"], name="dq0"),
        ]
        summed = "dq"
    nodes.append(
        helper.make_node("ReduceSum", [summed, "axes"], ["embeddings"], keepdims=1, domain=domain)
    )
    graph = helper.make_graph(nodes, "tokens", inputs, [output], initializers)
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    if not domain and qdq != "no-zero-point" and opset >= 13:
        onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def bin_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """PATH is this one empty folder; `import tensorrt` fails; no trtexec anywhere."""
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    for name in ("TRITONKIT_TRTEXEC", "TRITONKIT_TIMING_CACHE", "TRT_VERSION", "FAKE_TRT_VERSION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("tritonkit.runtime.plan_builder.TRTEXEC_DIRS", ())
    monkeypatch.setattr("tritonkit.runtime.plan_builder.VERSION_HEADERS", ())
    return folder


no_tensorrt = bin_dir


@pytest.fixture
def fake_gpu(bin_dir: Path) -> Path:
    """nvidia-smi reporting one GPU (FAKE_GPU_NAME, FAKE_GPU_CC)."""
    return executable(
        bin_dir / "nvidia-smi",
        '#!/bin/sh\necho "${FAKE_GPU_NAME:-NVIDIA Fake L4}, ${FAKE_GPU_CC:-8.9}"\n',
    )


def install_trtexec(folder: Path) -> Path:
    return executable(
        folder / "trtexec",
        f'#!/bin/sh\nexec "{sys.executable}" "{FIXTURES / "fake_trtexec.py"}" "$@"\n',
    )


@pytest.fixture
def fake_trtexec(
    bin_dir: Path, fake_gpu: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Path:
    """The strict fake trtexec on PATH (FAKE_TRT_VERSION picks its release); returns the
    file its argv lists are appended to."""
    install_trtexec(bin_dir)
    log = tmp_path / "trtexec-argv.jsonl"
    monkeypatch.setenv("FAKE_TRTEXEC_LOG", str(log))
    return log


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def load_fake_tensorrt(monkeypatch: pytest.MonkeyPatch, version: str = "10.5.0.18") -> ModuleType:
    """The fake `tensorrt` module, imported afresh for `version`."""
    monkeypatch.setenv("FAKE_TRT_VERSION", version)
    spec = importlib.util.spec_from_file_location(
        "tensorrt", FAKE_TENSORRT / "tensorrt" / "__init__.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "tensorrt", module)  # restored after the test
    return module
