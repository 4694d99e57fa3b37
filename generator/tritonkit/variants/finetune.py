"""A reproducible offline recipe: the bundled MiniLM fine-tuned into a sentiment classifier.

The packaged sentiment set (data/sentiment/, written for tritonkit: 300 training and 140
evaluation sentences, balanced) trains a BertForSequenceClassification head and the encoder for
a few epochs on CPU. Everything that decides the weights (data, base model, hyper-parameters,
library versions) goes into a hash; the result is cached under that hash, so a second run costs
nothing and a changed input trains again. Seeds are fixed; the folder is written with
save_pretrained (model + tokenizer) and is a normal Hugging Face model folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from tritonkit.errors import OptimizeError
from tritonkit.util.texts import read_rows
from tritonkit.variants.accuracy import SENTIMENT_EVAL, SENTIMENT_TRAIN

LABELS = ("negative", "positive")
RECORD = "finetune.json"


@dataclass(frozen=True)
class FinetuneParams:
    epochs: int = 4
    batch_size: int = 16
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_length: int = 64
    seed: int = 0
    max_steps: int | None = None  # stop early (tests)


@dataclass(frozen=True)
class FinetuneResult:
    model_dir: Path
    cached: bool
    eval_accuracy: float
    record: dict[str, Any]


def default_cache_dir() -> Path:
    root = os.environ.get("TRITONKIT_HOME") or Path.home() / ".cache" / "tritonkit"
    return Path(root) / "finetune"


def _labelled(path: Path) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    for number, (text, label) in enumerate(read_rows(path), 1):
        if label not in LABELS:
            raise OptimizeError(
                f"{path}: row {number}: label {label!r} is not one of {', '.join(LABELS)}: "
                "fix the file"
            )
        texts.append(text)
        labels.append(LABELS.index(label))
    return texts, labels


def cache_key(base_dir: Path, train_file: Path, params: FinetuneParams) -> str:
    """sha256 of the training data, the base model files, the parameters and the versions."""
    digest = hashlib.sha256()
    digest.update(train_file.read_bytes())
    for name in ("config.json", "tokenizer.json"):
        digest.update((base_dir / name).read_bytes())
    for weights in sorted(base_dir.glob("*.safetensors")) + sorted(base_dir.glob("*.bin")):
        with weights.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    versions = {name: metadata.version(name) for name in ("torch", "transformers")}
    digest.update(json.dumps([asdict(params), versions], sort_keys=True).encode())
    return digest.hexdigest()


def evaluate(model: Any, tokenizer: Any, texts: list[str], labels: list[int], length: int) -> float:
    """Accuracy of `model` on the labelled texts."""
    import torch

    model.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(texts), 32):
            batch = tokenizer(
                texts[start : start + 32],
                padding=True,
                truncation=True,
                max_length=length,
                return_tensors="pt",
            )
            predicted = model(**batch).logits.argmax(dim=-1).tolist()
            correct += sum(
                p == y for p, y in zip(predicted, labels[start : start + 32], strict=True)
            )
    return correct / len(texts)


def _train(base_dir: Path, out: Path, params: FinetuneParams, train_file: Path) -> dict[str, Any]:
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        get_linear_schedule_with_warmup,
    )

    torch.manual_seed(params.seed)
    tokenizer_class: Any = AutoTokenizer
    tokenizer = tokenizer_class.from_pretrained(base_dir, local_files_only=True)
    model_class: Any = AutoModelForSequenceClassification
    model = model_class.from_pretrained(
        base_dir,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        local_files_only=True,
    )
    texts, labels = _labelled(train_file)
    steps_per_epoch = -(-len(texts) // params.batch_size)
    total = steps_per_epoch * params.epochs
    if params.max_steps is not None:
        total = min(total, params.max_steps)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay
    )
    warmup: Any = get_linear_schedule_with_warmup
    schedule = warmup(optimizer, int(params.warmup_ratio * total), max(total, 1))
    generator = torch.Generator().manual_seed(params.seed)
    model.train()
    step, losses = 0, []
    while step < total:
        order = torch.randperm(len(texts), generator=generator).tolist()
        for start in range(0, len(order), params.batch_size):
            if step >= total:
                break
            indices = order[start : start + params.batch_size]
            batch = tokenizer(
                [texts[i] for i in indices],
                padding=True,
                truncation=True,
                max_length=params.max_length,
                return_tensors="pt",
            )
            target = torch.tensor([labels[i] for i in indices])
            loss = model(**batch, labels=target).loss
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            losses.append(float(loss.detach()))
            step += 1
    eval_texts, eval_labels = _labelled(SENTIMENT_EVAL)
    accuracy = evaluate(model, tokenizer, eval_texts, eval_labels, params.max_length)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"steps": step, "final_loss": losses[-1] if losses else None, "eval_accuracy": accuracy}


def finetune(
    base_dir: Path,
    cache_dir: Path | None = None,
    params: FinetuneParams = FinetuneParams(),
    train_file: Path = SENTIMENT_TRAIN,
    progress: Callable[[str], None] = lambda _: None,
) -> FinetuneResult:
    """The fine-tuned classifier folder for these inputs: from the cache, or trained now."""
    from tritonkit.model.inspect import inspect_model_dir

    inspect_model_dir(base_dir, "feature-extraction")
    key = cache_key(base_dir, train_file, params)
    root = cache_dir or default_cache_dir()
    target = root / f"sentiment-{key[:16]}"
    record_path = target / RECORD
    if record_path.is_file():
        record = json.loads(record_path.read_text(encoding="utf-8"))
        return FinetuneResult(target, True, float(record["eval_accuracy"]), record)
    root.mkdir(parents=True, exist_ok=True)
    progress(f"fine-tuning {base_dir.name} on {train_file.name} (cache key {key[:16]})")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=".finetune-", dir=root) as tmp:
        staged = Path(tmp) / "model"
        figures = _train(base_dir, staged, params, train_file)
        record = {
            "key": key,
            "base_model": str(base_dir.resolve()),
            "train_file": str(train_file),
            "eval_file": str(SENTIMENT_EVAL),
            "params": asdict(params),
            "labels": list(LABELS),
            **figures,
            "seconds": round(time.perf_counter() - started, 1),
        }
        (staged / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        staged.rename(target)
    return FinetuneResult(target, False, float(record["eval_accuracy"]), record)
