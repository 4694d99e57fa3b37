"""A Hugging Face model folder: validated once for a task, and described as `ModelInfo`.

torch, transformers and optimum are imported inside the functions that need them, after the
process is switched to offline mode, so that importing this module (and the CLI) stays cheap.
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from tritonkit.errors import ModelSourceError
from tritonkit.tasks import TASKS, Task, get_task

_REQUIRED_INPUTS = ("input_ids", "attention_mask")
_ENCODER_INPUTS = frozenset({*_REQUIRED_INPUTS, "token_type_ids"})
_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
# transformers stores int(1e30) as model_max_length when a tokenizer sets no limit.
_SANE_MAX_LENGTH = 1_000_000
_LENGTH_FIELDS = (
    ("tokenizer_config.json", "model_max_length"),
    ("sentence_bert_config.json", "max_seq_length"),
)
# Control characters (Cc: \n, \r, \t, NUL...) and line/paragraph separators: one label is one
# line of labels.txt, which Triton reads line by line.
_LINE_BREAKING = frozenset({"Cc", "Zl", "Zp"})
SUPPORTED_TYPES = "bert, distilbert, roberta, xlm-roberta, deberta-v2, electra, mpnet"
# Model types whose position ids start at padding_idx + 1 (transformers'
# create_position_ids_from_input_ids): padding_idx is config.pad_token_id, fixed at 1 for MPNet.
_PADDING_OFFSET_POSITIONS = frozenset({"roberta", "xlm-roberta", "camembert", "data2vec-text"})
_FIXED_PADDING_IDX = {"mpnet": 1}


def offline() -> None:
    """Never reach a hub: every model comes from a local folder."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def one_line(error: BaseException) -> str:
    """The first sentence of an exception's message, for one-line errors."""
    text = str(error).strip()
    first = text.splitlines()[0].split(". ")[0].rstrip(". ") if text else type(error).__name__
    return first[:200]


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
    vocab_size: int  # ids the tokenizer can produce: 0..vocab_size-1

    @property
    def task_record(self) -> Task:
        return get_task(self.task)


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
    record = get_task(task)
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
    tokenizer = load_tokenizer_file(model_dir / "tokenizer.json")
    raw: dict[str, Any] = _read_json(config_path)
    model_type = raw.get("model_type")
    if not isinstance(model_type, str):
        raise ModelSourceError(
            f"{config_path}: field model_type is missing: re-save the config with save_pretrained()"
        )
    config, input_names = _load_config(config_path, model_type, record)
    architectures = tuple(str(name) for name in raw.get("architectures") or ())
    _check_head(config_path, raw, architectures, record)
    if record.mean_pooled:
        _check_pooling(model_dir)
    labels = _labels(config_path, config.id2label) if record.needs_labels else ()
    return ModelInfo(
        model_dir=model_dir,
        task=task,
        model_type=model_type,
        architectures=architectures,
        max_length=_max_length(model_dir, _position_limit(model_type, config)),
        input_names=input_names,
        labels=labels,
        vocab_size=max(tokenizer.get_vocab(with_added_tokens=True).values(), default=-1) + 1,
    )


def load_tokenizer_file(path: Path) -> Tokenizer:
    """The fast tokenizer file, with a one-line error for a corrupt or foreign one."""
    try:
        return Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises its own Exception for every parse problem
        raise ModelSourceError(
            f"{path}: not a tokenizers file ({one_line(e)[:160]}): re-save it with "
            "AutoTokenizer.from_pretrained(folder).save_pretrained(folder)"
        ) from None


def _read_json(path: Path, expected: type = dict) -> Any:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelSourceError(
            f"{path}: not readable JSON ({one_line(e)}): fix or re-save it"
        ) from e
    if not isinstance(data, expected):
        raise ModelSourceError(f"{path}: not a JSON {expected.__name__}: fix or re-save it")
    return data


def _load_config(config_path: Path, model_type: str, task: Task) -> tuple[Any, tuple[str, ...]]:
    """The transformers config, and the inputs of optimum's ONNX export if it is an encoder's."""
    offline()
    import optimum.exporters.onnx.model_configs  # noqa: F401  (registers the ONNX configs)
    from optimum.exporters.tasks import TasksManager
    from transformers import AutoConfig

    unsupported = ModelSourceError(
        f"{config_path}: model_type '{model_type}' has no ONNX export for {task.name} that "
        "takes input_ids, attention_mask[, token_type_ids]: use an encoder model "
        f"({SUPPORTED_TYPES})"
    )
    try:
        tasks = TasksManager.get_supported_tasks_for_model_type(
            model_type, "onnx", library_name="transformers"
        )
    except KeyError as e:
        raise unsupported from e
    if task.name not in tasks:
        raise unsupported
    try:
        config = AutoConfig.from_pretrained(config_path.parent, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelSourceError(
            f"{config_path}: cannot be loaded ({one_line(e)}): re-save it with save_pretrained()"
        ) from e
    constructor = TasksManager.get_exporter_config_constructor(
        "onnx", model_type=model_type, task=task.name, library_name="transformers"
    )
    onnx_config = constructor(config, task=task.name)
    inputs = tuple(onnx_config.inputs)
    encoder = set(_REQUIRED_INPUTS) <= set(inputs) <= _ENCODER_INPUTS
    if not encoder or tuple(onnx_config.outputs) != (task.raw_output,):
        raise unsupported
    return config, inputs


def _check_head(
    config_path: Path, raw: Mapping[str, Any], architectures: tuple[str, ...], task: Task
) -> None:
    head = task.head
    if head is None or any(name.endswith(head) for name in architectures):
        return
    if not architectures and len(raw.get("id2label") or {}) > 1:
        return
    found = ", ".join(architectures) or "none"
    raise ModelSourceError(
        f"{config_path}: architectures ({found}) has no *{head} head for {task.name}: "
        f"use a checkpoint fine-tuned for {task.name}, or --task feature-extraction"
    )


def _labels(config_path: Path, id2label: Mapping[int, str]) -> tuple[str, ...]:
    if len(id2label) < 2 or sorted(id2label) != list(range(len(id2label))):
        raise ModelSourceError(
            f"{config_path}: field id2label must map ids 0..n-1 to n >= 2 labels: "
            'set e.g. "id2label": {"0": "negative", "1": "positive"}'
        )
    labels = tuple(str(id2label[index]) for index in range(len(id2label)))
    for index, label in enumerate(labels):
        if any(unicodedata.category(c) in _LINE_BREAKING for c in label):
            shown = label.encode("unicode_escape").decode("ascii")
            raise ModelSourceError(
                f"{config_path}: field id2label: label {index} '{shown}' holds a newline or "
                "control character, which would shift labels.txt: rename it in config.json"
            )
    return labels


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


def _position_limit(model_type: str, config: Any) -> object:
    """How many tokens the position embeddings hold: max_position_embeddings, less the ids
    that RoBERTa-style models skip (514 positions hold 512 tokens when pad_token_id is 1)."""
    positions = getattr(config, "max_position_embeddings", None)
    padding_idx = _FIXED_PADDING_IDX.get(model_type)
    if padding_idx is None and model_type in _PADDING_OFFSET_POSITIONS:
        padding_idx = getattr(config, "pad_token_id", None)
    if isinstance(positions, int) and isinstance(padding_idx, int):
        return positions - padding_idx - 1
    return positions


def _max_length(model_dir: Path, positions: object) -> int:
    """The smallest of the position embeddings' limit, the tokenizer's model_max_length (when
    set) and sentence-transformers' max_seq_length (all-MiniLM-L6-v2: 512, 512 and 256)."""
    limits = [positions]
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
