"""The shared model runners: the Hugging Face tokenizer, eager PyTorch with the task's
post-processing (the reference every check and gate holds the graph to), and ONNX Runtime.

Export parity, the accuracy gate, the benchmark, the in-process baselines and load-test
sampling all run models through these, so the reference is written once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tritonkit.errors import ModelSourceError
from tritonkit.model.inspect import ModelInfo, inspect_model_dir, offline, one_line

Feeds = dict[str, np.ndarray]


def load_tokenizer(model_dir: Path) -> Any:
    """The model folder's fast tokenizer (transformers), as the reference uses it."""
    offline()
    from transformers import AutoTokenizer

    tokenizer_class: Any = AutoTokenizer
    try:
        return tokenizer_class.from_pretrained(model_dir, use_fast=True, local_files_only=True)
    except (OSError, ValueError, TypeError) as e:
        raise ModelSourceError(
            f"{model_dir / 'tokenizer.json'}: cannot be loaded ({one_line(e)}): re-save the "
            "tokenizer with save_pretrained()"
        ) from e


def reference_tokenizer_file(model_dir: Path, dest: Path) -> Path:
    """The tokenizer file a deployment serves: the one the reference tokenizes with.

    That is the folder's tokenizer.json, unless tokenizer_config.json changes it at load time
    (transformers rebuilds parts of it from do_lower_case, add_prefix_space, trim_offsets...);
    then what transformers built is written to `dest` and returned instead.
    """
    from tokenizers import Tokenizer

    source = model_dir / "tokenizer.json"
    loaded = load_tokenizer(model_dir).backend_tokenizer
    if loaded.to_str() == Tokenizer.from_file(str(source)).to_str():
        return source
    dest.parent.mkdir(parents=True, exist_ok=True)
    loaded.save(str(dest))
    return dest


def encode(tokenizer: Any, info: ModelInfo, texts: Sequence[str], max_length: int) -> Feeds:
    """int64 feeds named like the model's inputs, padded to the longest text; zeros for
    token_type_ids when the tokenizer does not produce them."""
    encoded = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length)
    feeds: Feeds = {}
    for name in info.input_names:
        if name in encoded:
            feeds[name] = np.asarray(encoded[name], dtype=np.int64)
        elif name == "token_type_ids":
            feeds[name] = np.zeros_like(np.asarray(encoded["input_ids"], dtype=np.int64))
        else:
            raise ModelSourceError(
                f"{info.model_dir / 'tokenizer_config.json'}: model_input_names lacks {name}: "
                "add it"
            )
    return feeds


class TorchModel:
    """Eager PyTorch for one folder and task, returning the task's post-processed outputs.

    `eager=True` loads eager attention in float32: the graph tritonkit exports and the
    reference it is held to. `eager=False` keeps transformers' default attention: what a user
    runs today, for the benchmark.
    """

    def __init__(self, info: ModelInfo, *, eager: bool = True, threads: int | None = None) -> None:
        offline()
        import torch
        import transformers

        if threads is not None:
            torch.set_num_threads(threads)
        model_class: Any = getattr(transformers, info.task_record.auto_class)
        options: dict[str, Any] = {"local_files_only": True}
        if eager:
            options.update(attn_implementation="eager", dtype=torch.float32)
        try:
            self.model = model_class.from_pretrained(info.model_dir, **options).eval()
        except (OSError, ValueError) as e:
            raise ModelSourceError(
                f"{info.model_dir}: cannot be loaded ({one_line(e)}): "
                "re-save the model and tokenizer with save_pretrained()"
            ) from e
        self.info = info

    def __call__(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        with torch.inference_mode():
            tensors = {
                name: torch.from_numpy(np.asarray(feeds[name])) for name in self.info.input_names
            }
            output = self.model(**tensors)
            return self.info.task_record.torch_postprocess(output, tensors["attention_mask"])


class OrtModel:
    """An ONNX Runtime session on CPU with a fixed thread count; runs feeds by input name."""

    def __init__(self, path: Path, *, threads: int | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(
        self, feeds: Mapping[str, np.ndarray], names: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        wanted = list(names or self.output_names)
        arrays = self.session.run(wanted, {name: feeds[name] for name in self.input_names})
        return dict(zip(wanted, arrays, strict=True))


def reference_outputs(
    model_dir: Path, task: str, texts: Sequence[str], *, max_length: int | None = None
) -> dict[str, np.ndarray]:
    """Eager PyTorch outputs for `texts` (one padded batch), post-processed like the graph.

    Keyed by the graph's output names; `max_length` truncates (capped at the model's limit).
    """
    info = inspect_model_dir(model_dir, task)
    limit = info.max_length if max_length is None else min(max_length, info.max_length)
    return TorchModel(info)(encode(load_tokenizer(model_dir), info, texts, limit))
