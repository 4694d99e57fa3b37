"""Model folder -> one ONNX graph with its post-processing inside, checked against PyTorch.

The post-processing (mean pooling + L2 norm, softmax, argmax) lives in the graph so that Triton
returns what clients want from one model with no Python step, and so that the parity check covers
the whole path. The export goes through optimum-onnx from a model loaded with eager attention:
that graph is the one ONNX Runtime's transformer optimizer fuses into Attention ops.

torch, transformers and optimum are imported inside the functions that need them, after the
process is switched to offline mode, so that importing this module (and the CLI) stays cheap.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from tritonkit.errors import ExportError, ModelSourceError, ParityError
from tritonkit.resources import package_versions

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

TASKS = ("text-classification", "feature-extraction", "token-classification")
TASK_OUTPUTS: dict[str, tuple[str, ...]] = {
    "feature-extraction": ("embeddings",),
    "text-classification": ("probabilities",),
    "token-classification": ("label_ids", "scores"),
}
# Outputs with one value per token: compared only where attention_mask is 1.
TOKEN_OUTPUTS = frozenset({"label_ids", "scores"})
MIN_OPSET = 14
DEFAULT_SAMPLE_TEXTS = (
    "Hello world!",
    "The quick brown fox jumps over the lazy dog.",
    "Triton serves this model with dynamic batching on CPUs and GPUs.",
    "Ünïcödé façade, naïve café, 日本語のテキスト and emoji 🚀🔥👍🏽",
    "ok",
    "A much longer input that keeps going, " * 12 + "so that it is padded least and cut last.",
)

_HEADS = {
    "text-classification": "ForSequenceClassification",
    "token-classification": "ForTokenClassification",
}
_RAW_OUTPUT = {"feature-extraction": "last_hidden_state", **dict.fromkeys(_HEADS, "logits")}
_REQUIRED_INPUTS = ("input_ids", "attention_mask")
_ENCODER_INPUTS = frozenset({*_REQUIRED_INPUTS, "token_type_ids"})
_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
# transformers stores int(1e30) as model_max_length when a tokenizer sets no limit.
_SANE_MAX_LENGTH = 1_000_000
_LENGTH_FIELDS = (
    ("tokenizer_config.json", "model_max_length"),
    ("sentence_bert_config.json", "max_seq_length"),
)
# Protobuf cannot serialise more than 2 GiB: bigger weights go to an external data file.
_PROTOBUF_LIMIT = 2**31 - 1
_POST = "tritonkit_post"
_VERSIONED_PACKAGES = ("torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime")


@dataclass(frozen=True)
class ModelInfo:
    """What tritonkit needs to know about a model folder, validated once."""

    model_dir: Path
    task: str
    model_type: str
    architectures: tuple[str, ...]
    max_length: int
    input_names: tuple[str, ...]
    labels: tuple[str, ...]


@dataclass(frozen=True)
class ExportResult:
    """A verified export: `max_abs_diff` is the largest ONNX Runtime vs PyTorch gap found."""

    onnx_path: Path
    info: ModelInfo
    output_names: tuple[str, ...]
    opset: int
    max_abs_diff: float
    seconds: float


def inspect_model_dir(model_dir: Path, task: str) -> ModelInfo:
    """Validate `model_dir` for `task` and describe it; raises ModelSourceError with the fix.

    Rules: the model_type must have an optimum ONNX export for the task that takes only
    input_ids, attention_mask and optionally token_type_ids (encoder models). Any such checkpoint
    can give embeddings; a classification task also needs its head (*ForSequenceClassification or
    *ForTokenClassification) in `architectures`, or, when `architectures` is absent, an explicit
    id2label in config.json. Classification needs at least two labels (softmax over one logit is
    constant). A sentence-transformers folder (modules.json) must pool by mean for embeddings.
    """
    if task not in TASKS:
        raise ModelSourceError(f"task '{task}': not supported: use one of {', '.join(TASKS)}")
    if not model_dir.is_dir():
        raise ModelSourceError(
            f"{model_dir}: model folder not found: pass a local Hugging Face model folder"
        )
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise ModelSourceError(
            f"{config_path}: not found: pass a folder written by save_pretrained() that holds it"
        )
    if not (model_dir / "tokenizer.json").is_file():
        raise ModelSourceError(
            f"{model_dir / 'tokenizer.json'}: not found: tritonkit needs the fast tokenizer file; "
            "write it with AutoTokenizer.from_pretrained(folder).save_pretrained(folder)"
        )
    if not any(any(model_dir.glob(pattern)) for pattern in _WEIGHT_PATTERNS):
        raise ModelSourceError(
            f"{model_dir}: no model.safetensors or pytorch_model.bin: "
            "save the weights with save_pretrained()"
        )
    raw: dict[str, Any] = _read_json(config_path)
    model_type = raw.get("model_type")
    if not isinstance(model_type, str):
        raise ModelSourceError(
            f"{config_path}: field model_type is missing: re-save the config with save_pretrained()"
        )
    config, input_names = _load_config(config_path, model_type, task)
    architectures = tuple(str(name) for name in raw.get("architectures") or ())
    _check_head(config_path, raw, architectures, task)
    if task == "feature-extraction":
        _check_pooling(model_dir)
    labels = () if task == "feature-extraction" else _labels(config_path, config.id2label)
    return ModelInfo(
        model_dir=model_dir,
        task=task,
        model_type=model_type,
        architectures=architectures,
        max_length=_max_length(model_dir, getattr(config, "max_position_embeddings", None)),
        input_names=input_names,
        labels=labels,
    )


def export_model(
    model_dir: Path,
    task: str,
    out_dir: Path,
    *,
    opset: int | None = None,
    atol: float = 1e-4,
    sample_texts: Sequence[str] | None = None,
) -> ExportResult:
    """Write out_dir/model.onnx (post-processing included) and out_dir/export.json.

    The graph is checked with onnx.checker, then run with ONNX Runtime on `sample_texts` (a
    padded batch, then the first text alone) against the eager PyTorch model; a float output
    further than `atol` from PyTorch, or any label id that differs on a real token, raises
    ParityError. Empty or missing `sample_texts` means DEFAULT_SAMPLE_TEXTS.
    """
    started = time.perf_counter()
    info = inspect_model_dir(model_dir, task)
    newest = onnx.defs.onnx_opset_version()
    if opset is not None and not MIN_OPSET <= opset <= newest:
        raise ExportError(
            f"opset {opset}: not supported: pass an opset from {MIN_OPSET} to {newest}"
        )
    reference = _Reference(info)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "model.onnx"
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out_dir) as tmp:
        _export_raw(reference.model, info, Path(tmp), opset)
        model = onnx.load(Path(tmp) / "model.onnx")
    _add_postprocessing(model, task)
    _save(model, onnx_path)
    check_onnx_file(onnx_path)
    max_abs_diff = _check_parity(
        onnx_path, reference, tuple(sample_texts or DEFAULT_SAMPLE_TEXTS), atol
    )
    result = ExportResult(
        onnx_path=onnx_path,
        info=info,
        output_names=TASK_OUTPUTS[task],
        opset=next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
        max_abs_diff=max_abs_diff,
        seconds=time.perf_counter() - started,
    )
    _write_export_json(out_dir / "export.json", result, atol)
    return result


def reference_outputs(
    model_dir: Path, task: str, texts: Sequence[str], *, max_length: int | None = None
) -> dict[str, np.ndarray]:
    """Eager PyTorch outputs for `texts` (one padded batch), post-processed like the ONNX graph.

    Keyed by the ONNX output names (TASK_OUTPUTS[task]). `max_length` truncates the tokens; it
    is capped at the model's own limit.
    """
    info = inspect_model_dir(model_dir, task)
    limit = info.max_length if max_length is None else min(max_length, info.max_length)
    reference = _Reference(info)
    return reference.run(reference.encode(texts, limit))


def check_onnx_file(path: Path) -> None:
    """Run onnx.checker on the file (by path, so that models over 2 GiB work too)."""
    try:
        onnx.checker.check_model(str(path))
    except (onnx.checker.ValidationError, OSError) as e:
        detail = _one_line(e).replace(f": {path}", "")
        raise ExportError(
            f"{path}: not a valid ONNX model ({detail}): re-export it with `tritonkit export`"
        ) from e


def _offline() -> None:
    """Never reach a hub: every model comes from a local folder."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    first = text.splitlines()[0].split(". ")[0].rstrip(". ") if text else type(error).__name__
    return first[:200]


def _read_json(path: Path, expected: type = dict) -> Any:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelSourceError(
            f"{path}: not readable JSON ({_one_line(e)}): fix or re-save it"
        ) from e
    if not isinstance(data, expected):
        raise ModelSourceError(f"{path}: not a JSON {expected.__name__}: fix or re-save it")
    return data


def _load_config(config_path: Path, model_type: str, task: str) -> tuple[Any, tuple[str, ...]]:
    """The transformers config, and the inputs of optimum's ONNX export if it is an encoder's."""
    _offline()
    import optimum.exporters.onnx.model_configs  # noqa: F401  (registers the ONNX configs)
    from optimum.exporters.tasks import TasksManager
    from transformers import AutoConfig

    unsupported = ModelSourceError(
        f"{config_path}: model_type '{model_type}' has no ONNX export for {task} that takes "
        "input_ids, attention_mask[, token_type_ids]: use an encoder model "
        "(bert, distilbert, roberta, xlm-roberta, deberta-v2, electra, mpnet)"
    )
    try:
        tasks = TasksManager.get_supported_tasks_for_model_type(
            model_type, "onnx", library_name="transformers"
        )
    except KeyError as e:
        raise unsupported from e
    if task not in tasks:
        raise unsupported
    try:
        config = AutoConfig.from_pretrained(config_path.parent, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelSourceError(
            f"{config_path}: cannot be loaded ({_one_line(e)}): re-save it with save_pretrained()"
        ) from e
    constructor = TasksManager.get_exporter_config_constructor(
        "onnx", model_type=model_type, task=task, library_name="transformers"
    )
    onnx_config = constructor(config, task=task)
    inputs = tuple(onnx_config.inputs)
    encoder = set(_REQUIRED_INPUTS) <= set(inputs) <= _ENCODER_INPUTS
    if not encoder or tuple(onnx_config.outputs) != (_RAW_OUTPUT[task],):
        raise unsupported
    return config, inputs


def _check_head(
    config_path: Path, raw: Mapping[str, Any], architectures: tuple[str, ...], task: str
) -> None:
    head = _HEADS.get(task)
    if head is None or any(name.endswith(head) for name in architectures):
        return
    if not architectures and len(raw.get("id2label") or {}) > 1:
        return
    found = ", ".join(architectures) or "none"
    raise ModelSourceError(
        f"{config_path}: architectures ({found}) has no *{head} head for {task}: "
        f"use a checkpoint fine-tuned for {task}, or --task feature-extraction"
    )


def _labels(config_path: Path, id2label: Mapping[int, str]) -> tuple[str, ...]:
    if len(id2label) < 2 or sorted(id2label) != list(range(len(id2label))):
        raise ModelSourceError(
            f"{config_path}: field id2label must map ids 0..n-1 to n >= 2 labels: "
            'set e.g. "id2label": {"0": "negative", "1": "positive"}'
        )
    return tuple(str(id2label[index]) for index in range(len(id2label)))


def _check_pooling(model_dir: Path) -> None:
    """A sentence-transformers folder says how it pools; the graph's embeddings are mean pooled."""
    modules_path = model_dir / "modules.json"
    modules = _read_json(modules_path, list) if modules_path.is_file() else []
    for module in modules:
        if isinstance(module, dict) and str(module.get("type", "")).endswith(".Pooling"):
            pooling_path = model_dir / str(module.get("path", "")) / "config.json"
            if pooling_path.is_file() and not _read_json(pooling_path).get(
                "pooling_mode_mean_tokens"
            ):
                raise ModelSourceError(
                    f"{pooling_path}: pooling_mode_mean_tokens is not true: tritonkit's "
                    "embeddings are mean pooled; use a mean-pooling sentence-transformers model"
                )


def _max_length(model_dir: Path, max_position_embeddings: object) -> int:
    """The smallest of max_position_embeddings, the tokenizer's model_max_length (when set) and
    sentence-transformers' max_seq_length (all-MiniLM-L6-v2: 512, 512 and 256)."""
    limits = [max_position_embeddings]
    for name, key in _LENGTH_FIELDS:
        if (model_dir / name).is_file():
            limits.append(_read_json(model_dir / name).get(key))
    sane = [n for n in limits if isinstance(n, int) and 0 < n <= _SANE_MAX_LENGTH]
    if not sane:
        raise ModelSourceError(
            f"{model_dir / 'tokenizer_config.json'}: no usable model_max_length and config.json "
            "has no max_position_embeddings: set model_max_length in tokenizer_config.json"
        )
    return min(sane)


class _Reference:
    """Fast tokenizer and eager PyTorch model of one folder: the truth the ONNX graph must match."""

    def __init__(self, info: ModelInfo) -> None:
        _offline()
        import torch
        from transformers import (
            AutoModel,
            AutoModelForSequenceClassification,
            AutoModelForTokenClassification,
            AutoTokenizer,
        )

        tokenizer_class: Any = AutoTokenizer
        model_class: Any = {
            "feature-extraction": AutoModel,
            "text-classification": AutoModelForSequenceClassification,
            "token-classification": AutoModelForTokenClassification,
        }[info.task]
        self.info = info
        try:
            self.tokenizer: PreTrainedTokenizerBase = tokenizer_class.from_pretrained(
                info.model_dir, use_fast=True, local_files_only=True
            )
            self.model: PreTrainedModel = model_class.from_pretrained(
                info.model_dir,
                attn_implementation="eager",
                dtype=torch.float32,
                local_files_only=True,
            ).eval()
        except (OSError, ValueError) as e:
            raise ModelSourceError(
                f"{info.model_dir}: cannot be loaded ({_one_line(e)}): "
                "re-save the model and tokenizer with save_pretrained()"
            ) from e

    def encode(self, texts: Sequence[str], max_length: int) -> dict[str, np.ndarray]:
        """int64 feeds named like the model's inputs; zeros for token_type_ids if not produced."""
        encoded = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="np"
        )
        feeds: dict[str, np.ndarray] = {}
        for name in self.info.input_names:
            if name in encoded:
                feeds[name] = np.asarray(encoded[name], dtype=np.int64)
            elif name == "token_type_ids":
                feeds[name] = np.zeros_like(feeds["input_ids"])
            else:
                raise ModelSourceError(
                    f"{self.info.model_dir / 'tokenizer_config.json'}: model_input_names lacks "
                    f"{name}: add it"
                )
        return feeds

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        with torch.inference_mode():
            tensors = {name: torch.from_numpy(array) for name, array in feeds.items()}
            output = self.model(**tensors)
            mask = tensors["attention_mask"]
            if self.info.task == "feature-extraction":
                return {"embeddings": _mean_pool_normalize(output.last_hidden_state, mask)}
            probabilities = torch.softmax(output.logits, dim=-1)
            if self.info.task == "text-classification":
                return {"probabilities": probabilities.numpy()}
            scores, label_ids = probabilities.max(dim=-1)
            return {"label_ids": label_ids.numpy(), "scores": scores.numpy()}


def _mean_pool_normalize(hidden: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """sentence-transformers' mean pooling followed by its Normalize module."""
    import torch

    weights = mask.unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    result: np.ndarray = torch.nn.functional.normalize(mean, p=2.0, dim=1, eps=1e-12).numpy()
    return result


def _export_raw(model: PreTrainedModel, info: ModelInfo, dest: Path, opset: int | None) -> None:
    _offline()
    from optimum.exporters.onnx import onnx_export_from_model

    try:
        onnx_export_from_model(model, dest, opset=opset, task=info.task, do_validation=False)
    except Exception as e:  # the exporter raises anything from torch.onnx; report it as one line
        raise ExportError(
            f"{info.model_dir}: ONNX export failed ({type(e).__name__}: {_one_line(e)}): "
            "try another --opset or a supported encoder model"
        ) from e


class _GraphBuilder:
    """Appends uniquely named nodes and constants to a graph."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        self.count = 0

    def node(self, op: str, inputs: Sequence[str], output: str | None = None, **attrs: Any) -> str:
        self.count += 1
        name = f"{_POST}/{op}_{self.count}"
        out = output or f"{name}:0"
        self.graph.node.append(helper.make_node(op, list(inputs), [out], name=name, **attrs))
        return out

    def const(self, label: str, values: Sequence[float], dtype: int) -> str:
        name = f"{_POST}/{label}"
        self.graph.initializer.append(helper.make_tensor(name, dtype, [len(values)], values))
        return name


def _add_postprocessing(model: onnx.ModelProto, task: str) -> None:
    """Replace the raw output (last_hidden_state or logits) by the task's final outputs."""
    graph = model.graph
    raw = next(o for o in graph.output if o.name == _RAW_OUTPUT[task])
    raw_dims = [d.dim_param or d.dim_value for d in raw.type.tensor_type.shape.dim]
    input_ids = next(i for i in graph.input if i.name == "input_ids")
    batch, seq = (d.dim_param or d.dim_value for d in input_ids.type.tensor_type.shape.dim)
    g = _GraphBuilder(graph)
    if task == "feature-extraction":
        last = g.const("axis_last", [-1], TensorProto.INT64)
        seq_axis = g.const("axis_seq", [1], TensorProto.INT64)
        mask = g.node("Cast", ["attention_mask"], to=TensorProto.FLOAT)
        mask = g.node("Unsqueeze", [mask, last])
        summed = g.node("ReduceSum", [g.node("Mul", [raw.name, mask]), seq_axis], keepdims=0)
        count = g.node("ReduceSum", [mask, seq_axis], keepdims=0)
        count = g.node("Max", [count, g.const("min_count", [1e-9], TensorProto.FLOAT)])
        mean = g.node("Div", [summed, count])
        squared = g.node("ReduceSum", [g.node("Mul", [mean, mean]), last], keepdims=1)
        min_norm = g.const("min_norm", [1e-12], TensorProto.FLOAT)
        norm = g.node("Max", [g.node("Sqrt", [squared]), min_norm])
        g.node("Div", [mean, norm], "embeddings")
        outputs = [_float_output("embeddings", [batch, raw_dims[-1]])]
    elif task == "text-classification":
        g.node("Softmax", [raw.name], "probabilities", axis=-1)
        outputs = [_float_output("probabilities", [batch, raw_dims[-1]])]
    else:
        last = g.const("axis_last", [-1], TensorProto.INT64)
        probabilities = g.node("Softmax", [raw.name], axis=-1)
        best = g.node("ArgMax", [probabilities], axis=-1, keepdims=1)
        g.node("Squeeze", [best, last], "label_ids")
        top = g.node("GatherElements", [probabilities, best], axis=-1)
        g.node("Squeeze", [top, last], "scores")
        outputs = [
            helper.make_tensor_value_info("label_ids", TensorProto.INT64, [batch, seq]),
            _float_output("scores", [batch, seq]),
        ]
    del graph.output[:]
    graph.output.extend(outputs)


def _float_output(name: str, dims: Sequence[str | int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(dims))


def _save(model: onnx.ModelProto, path: Path) -> None:
    """Save; weights over protobuf's 2 GiB limit go to `<name>.data` beside the graph."""
    data_file = path.with_name(path.name + ".data")
    data_file.unlink(missing_ok=True)  # onnx appends to an existing external data file
    large = sum(t.ByteSize() for t in model.graph.initializer) > _PROTOBUF_LIMIT
    onnx.save_model(model, str(path), save_as_external_data=large, location=data_file.name)


def _check_parity(
    onnx_path: Path, reference: _Reference, texts: Sequence[str], atol: float
) -> float:
    """Largest |ONNX Runtime - PyTorch| over the float outputs; raises ParityError above atol.

    Per-token outputs are compared on real tokens only; label ids must match exactly there.
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = list(TASK_OUTPUTS[reference.info.task])
    worst = 0.0
    for batch in (texts, texts[:1]):
        feeds = reference.encode(batch, reference.info.max_length)
        expected = reference.run(feeds)
        real_tokens = feeds["attention_mask"].astype(bool)
        for name, got in zip(names, session.run(names, feeds), strict=True):
            want = expected[name]
            if name in TOKEN_OUTPUTS:
                want, got = want[real_tokens], got[real_tokens]
            if name == "label_ids":
                mismatches = int(np.count_nonzero(want != got))
                if mismatches:
                    raise ParityError(
                        f"{onnx_path}: output 'label_ids' differs from PyTorch on {mismatches} "
                        f"of {want.size} tokens: re-export with another --opset",
                        float(mismatches),
                        atol,
                    )
                continue
            diff = float(np.max(np.abs(want.astype(np.float64) - got.astype(np.float64))))
            if not diff <= atol:  # also catches NaN
                raise ParityError(
                    f"{onnx_path}: output '{name}' differs from PyTorch by {diff:.3g} "
                    f"(atol {atol:g}): re-export with another --opset, or raise --atol if "
                    "that difference is acceptable",
                    diff,
                    atol,
                )
            worst = max(worst, diff)
    return worst


def _write_export_json(path: Path, result: ExportResult, atol: float) -> None:
    info = result.info
    record = {
        "model_dir": str(info.model_dir.resolve()),
        "task": info.task,
        "model_type": info.model_type,
        "opset": result.opset,
        "inputs": list(info.input_names),
        "outputs": list(result.output_names),
        "labels": list(info.labels),
        "max_length": info.max_length,
        "max_abs_diff": result.max_abs_diff,
        "atol": atol,
        "seconds": round(result.seconds, 3),
        "versions": package_versions(_VERSIONED_PACKAGES),
    }
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
