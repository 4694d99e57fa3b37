"""Variants of the tiny models: each one's creation, its record, and the graph rewrites."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper

from tritonkit.errors import OptimizeError, SpecError
from tritonkit.model.inspect import inspect_model_dir
from tritonkit.spec import OptimizeSpec, build_section
from tritonkit.util.texts import TextFileError
from tritonkit.variants.build import Variant, build_variants, built_for, fuse
from tritonkit.variants.quantize import smooth, split_skip_layernorm

ALL = ("fp32", "fp32-fused", "fp16", "int8-dynamic", "int8-static")
EVAL_TEXTS = [
    "the movie was great and i love it",
    "bad food and terrible service",
    "hello world, this is a test sentence",
    "the quick brown fox jumps over the lazy dog",
    "paris and london are cities",
    "not good",
]


@pytest.fixture(scope="module")
def eval_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("eval") / "texts.txt"
    path.write_text("\n".join(EVAL_TEXTS) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs: dict[str, Path], eval_file: Path
) -> dict[str, tuple[Path, list[Variant]]]:
    """Every variant of each tiny model (a second or so each)."""
    result = {}
    for task, model in tiny_model_dirs.items():
        out = tmp_path_factory.mktemp("variants") / task
        options = OptimizeSpec(variants=ALL, eval_file=eval_file, calibration_file=eval_file)
        result[task] = (out, build_variants(model, task, out, options))
    return result


def _io(path: Path) -> tuple[list[tuple[str, int, list[str | int]]], ...]:
    graph = onnx.load(str(path), load_external_data=False).graph

    def describe(values: list[onnx.ValueInfoProto]) -> list[tuple[str, int, list[str | int]]]:
        return [
            (
                v.name,
                v.type.tensor_type.elem_type,
                [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim],
            )
            for v in values
        ]

    return describe(list(graph.input)), describe(list(graph.output))


@pytest.mark.parametrize(
    "task", ["feature-extraction", "text-classification", "token-classification"]
)
def test_every_variant_is_a_folder_with_model_and_record(
    built: dict[str, tuple[Path, list[Variant]]], task: str
) -> None:
    out, variants = built[task]
    assert [v.name for v in variants] == list(ALL)
    fp32_io = _io(out / "fp32" / "model.onnx")
    for variant in variants:
        folder = out / variant.name
        assert sorted(p.name for p in folder.iterdir()) == ["model.onnx", "variant.json"]
        record = json.loads((folder / "variant.json").read_text(encoding="utf-8"))
        assert record["variant"] == variant.name
        assert record["task"] == task
        assert {"onnxruntime", "onnx", "torch"} <= set(record["versions"])
        assert record["cpu"]["preset"] in ("avx2", "avx512", "avx512-vnni", "arm64")
        assert record["accuracy"]["reason"].startswith(("pass:", "FAIL:"))
        assert record["eval_set"]["texts"] == len(EVAL_TEXTS)
        assert record["steps"][0].startswith("optimum-onnx export")
        # Same names, dtypes and dynamic axes as the plain export: the repository fits any variant.
        assert _io(folder / "model.onnx") == fp32_io
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no leftovers


def test_fused_counts_and_cpu_rewrite(built: dict[str, tuple[Path, list[Variant]]]) -> None:
    out, variants = built["feature-extraction"]
    fused = next(v for v in variants if v.name == "fp32-fused")
    assert fused.record["fused_operators"] == {
        "EmbedLayerNormalization": 1,
        "Attention": 2,
        "SkipLayerNormalization": 4,
        "BiasGelu": 2,
    }
    assert fused.record["warnings"] == []
    ops = {n.op_type for n in onnx.load(str(out / "fp32-fused" / "model.onnx")).graph.node}
    assert {"Attention", "EmbedLayerNormalization", "BiasGelu", "LayerNormalization"} <= ops
    assert "SkipLayerNormalization" not in ops  # split for ONNX Runtime's CPU kernel


def test_quantized_variants_hold_int8_ops(built: dict[str, tuple[Path, list[Variant]]]) -> None:
    out, variants = built["text-classification"]

    def ops(name: str) -> set[str]:
        return {n.op_type for n in onnx.load(str(out / name / "model.onnx")).graph.node}

    assert {"DynamicQuantizeLinear", "MatMulInteger", "QAttention"} <= ops("int8-dynamic")
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops("int8-static")
    fp16 = onnx.load(str(out / "fp16" / "model.onnx"))
    assert any(i.data_type == TensorProto.FLOAT16 for i in fp16.graph.initializer)
    dynamic = next(v for v in variants if v.name == "int8-dynamic")
    assert dynamic.record["preset"]["weights"] == "int8, per channel"
    assert any(step.startswith("SmoothQuant alpha 0.5") for step in dynamic.record["steps"])
    sizes = {v.name: v.record["size_bytes"] for v in variants}
    assert sizes["fp16"] < sizes["fp32"]
    assert sizes["int8-dynamic"] < sizes["fp32"]


def test_built_variants_are_found_again_for_the_same_model_only(
    built: dict[str, tuple[Path, list[Variant]]], tiny_model_dirs: dict[str, Path]
) -> None:
    out, variants = built["token-classification"]
    info = inspect_model_dir(tiny_model_dirs["token-classification"], "token-classification")
    for variant in variants:
        found = built_for(out / variant.name, info)
        assert found is not None
        assert found.accuracy.as_dict() == variant.accuracy.as_dict()
    other = inspect_model_dir(tiny_model_dirs["text-classification"], "text-classification")
    assert built_for(out / "int8-dynamic", other) is None
    assert built_for(out / "missing", info) is None


def test_gpu_device_builds_no_int8_and_keeps_skip_layernorm(
    tmp_path: Path, tiny_model_dirs: dict[str, Path], eval_file: Path
) -> None:
    options = OptimizeSpec(eval_file=eval_file)
    variants = build_variants(
        tiny_model_dirs["feature-extraction"], "feature-extraction", tmp_path, options, "gpu"
    )
    assert [v.name for v in variants] == ["fp32", "fp32-fused", "fp16"]
    assert all(v.device == "gpu" for v in variants)
    ops = {n.op_type for n in onnx.load(str(tmp_path / "fp32-fused" / "model.onnx")).graph.node}
    assert "SkipLayerNormalization" in ops


def test_int8_variants_are_refused_for_gpu(
    tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    options = OptimizeSpec(variants=("int8-dynamic",))
    with pytest.raises(OptimizeError, match=r"^variants int8-dynamic/int8-static run on CPU"):
        build_variants(
            tiny_model_dirs["feature-extraction"], "feature-extraction", tmp_path / "o", options,
            "gpu",
        )  # fmt: skip
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            {"variants": ("int4",)},
            "--variants: Input should be 'fp32', 'fp32-fused', 'fp16', 'int8-dynamic', "
            "'int8-static' or 'int8-qdq'",
        ),
        (
            {"calibration_method": "kl"},
            "--calibration-method: Input should be 'minmax', 'entropy' or 'percentile'",
        ),
    ],
)
def test_bad_options_are_spec_errors(flags: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError) as info:
        build_section(OptimizeSpec, "optimize", None, flags)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "file not found: check the path"), ("\n  \n", "no texts in the file")],
)
def test_bad_calibration_file_writes_nothing(
    tmp_path: Path, tiny_model_dirs: dict[str, Path], content: str | None, message: str
) -> None:
    calibration = tmp_path / "calibration.txt"
    if content is not None:
        calibration.write_text(content, encoding="utf-8")
    options = OptimizeSpec(variants=("int8-static",), calibration_file=calibration)
    out = tmp_path / "out"
    with pytest.raises(TextFileError) as info:
        build_variants(tiny_model_dirs["feature-extraction"], "feature-extraction", out, options)
    assert str(info.value).startswith(f"{calibration}: {message}")
    assert not out.exists()


def test_unfusable_graph_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "plain.onnx"
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "plain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), source)
    target = tmp_path / "fused.onnx"
    with pytest.raises(OptimizeError) as info:
        fuse(source, target, "cpu")
    assert str(info.value) == (
        f"{source}: ONNX Runtime's transformer optimizer fused nothing in this graph (no "
        "Attention, LayerNorm or Gelu pattern): deploy --variant fp32, or leave the fused "
        "variants out of --variants"
    )
    assert not target.exists()


def _skip_layernorm_model() -> onnx.ModelProto:
    hidden = 8
    rng = np.random.default_rng(0)
    inits = [
        onnx.numpy_helper.from_array(rng.standard_normal(hidden).astype(np.float32), name)
        for name in ("gamma", "beta", "bias")
    ]
    node = helper.make_node(
        "SkipLayerNormalization",
        ["x", "skip", "gamma", "beta", "bias"],
        ["y"],
        "sln",
        domain="com.microsoft",
        epsilon=1e-12,
    )
    dims: list[str | int] = ["batch", "seq", hidden]
    graph = helper.make_graph(
        [node],
        "sln",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, dims),
            helper.make_tensor_value_info("skip", TensorProto.FLOAT, dims),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)],
        inits,
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray], saved: Path) -> np.ndarray:
    options = onnxruntime.SessionOptions()
    options.optimized_model_filepath = str(saved)
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return np.asarray(session.run(["y"], feeds)[0])


def test_split_skip_layernorm_is_exact_and_not_refused(tmp_path: Path) -> None:
    model = _skip_layernorm_model()
    rng = np.random.default_rng(1)
    feeds = {n: rng.standard_normal((2, 5, 8)).astype(np.float32) for n in ("x", "skip")}
    before = _run(model, feeds, tmp_path / "before.onnx")
    assert split_skip_layernorm(model) == 1
    assert [n.op_type for n in model.graph.node] == ["Add", "Sum", "LayerNormalization"]
    after = _run(model, feeds, tmp_path / "after.onnx")
    np.testing.assert_allclose(after, before, atol=1e-5)
    # What ONNX Runtime actually runs after its own graph optimizations: still no SkipLN.
    loaded = {n.op_type for n in onnx.load(str(tmp_path / "after.onnx")).graph.node}
    assert "SkipLayerNormalization" not in loaded


def test_smooth_keeps_fp32_outputs(built: dict[str, tuple[Path, list[Variant]]]) -> None:
    out, _ = built["feature-extraction"]
    model = onnx.load(str(out / "fp32-fused" / "model.onnx"))
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 100, size=(3, 12)).astype(np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": ids * 0}

    def embeddings(m: onnx.ModelProto) -> np.ndarray:
        session = onnxruntime.InferenceSession(
            m.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        return np.asarray(session.run(["embeddings"], feeds)[0])

    before = embeddings(model)
    assert smooth(model, [feeds], alpha=0.5) == 4  # 2 layers x (QKV Attention + FFN in)
    assert sum(n.name.endswith("/smooth") for n in model.graph.node) == 4
    np.testing.assert_allclose(embeddings(model), before, atol=1e-5)
