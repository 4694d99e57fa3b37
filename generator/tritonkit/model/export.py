"""Model folder -> one ONNX graph with its post-processing inside, checked against PyTorch.

The post-processing (the task's, see `tritonkit.tasks`) lives in the graph so that Triton
returns what clients want from one model with no Python step, and so that the parity check
covers the whole path. The export goes through optimum-onnx from a model loaded with eager
attention: that graph is the one ONNX Runtime's transformer optimizer fuses into Attention ops.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from tritonkit.errors import ExportError, ParityError
from tritonkit.model.inspect import ModelInfo, inspect_model_dir, offline, one_line
from tritonkit.model.onnx_io import check_onnx_file, opset_of, save_model
from tritonkit.model.runners import OrtModel, TorchModel, encode, load_tokenizer
from tritonkit.tasks.graph import GraphBuilder
from tritonkit.util.resources import package_versions

MIN_OPSET = 14
DEFAULT_SAMPLE_TEXTS = (
    "Hello world!",
    "The quick brown fox jumps over the lazy dog.",
    "Triton serves this model with dynamic batching on CPUs and GPUs.",
    "Ünïcödé façade, naïve café, 日本語のテキスト and emoji 🚀🔥👍🏽",
    "ok",
    "A much longer input that keeps going, " * 12 + "so that it is padded least and cut last.",
)
_VERSIONED_PACKAGES = ("torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime")


@dataclass(frozen=True)
class ExportResult:
    """A verified export: `max_abs_diff` is the largest ONNX Runtime vs PyTorch gap found."""

    onnx_path: Path
    info: ModelInfo
    output_names: tuple[str, ...]
    opset: int
    max_abs_diff: float
    seconds: float


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
    reference = TorchModel(info)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "model.onnx"
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out_dir) as tmp:
        _export_raw(reference.model, info, Path(tmp), opset)
        model = onnx.load(Path(tmp) / "model.onnx")
    add_postprocessing(model, info)
    save_model(model, onnx_path)
    check_onnx_file(onnx_path)
    texts = tuple(sample_texts or DEFAULT_SAMPLE_TEXTS)
    max_abs_diff = check_parity(onnx_path, info, reference, texts, atol)
    result = ExportResult(
        onnx_path=onnx_path,
        info=info,
        output_names=info.task_record.output_names,
        opset=opset_of(model),
        max_abs_diff=max_abs_diff,
        seconds=time.perf_counter() - started,
    )
    _write_export_json(out_dir / "export.json", result, atol)
    return result


def _export_raw(model: Any, info: ModelInfo, dest: Path, opset: int | None) -> None:
    offline()
    from optimum.exporters.onnx import onnx_export_from_model

    try:
        onnx_export_from_model(model, dest, opset=opset, task=info.task, do_validation=False)
    except OSError as e:  # a full disk is not the exporter's fault
        raise ExportError(f"{dest}: cannot write the ONNX export ({e.strerror or e})") from e
    except Exception as e:  # the exporter raises anything from torch.onnx; report it as one line
        raise ExportError(
            f"{info.model_dir}: ONNX export failed ({type(e).__name__}: {one_line(e)}): "
            "try another --opset or a supported encoder model"
        ) from e


def add_postprocessing(model: onnx.ModelProto, info: ModelInfo) -> None:
    """Replace the raw output (last_hidden_state or logits) by the task's final outputs."""
    task = info.task_record
    graph = model.graph
    raw = next(o for o in graph.output if o.name == task.raw_output)
    raw_dims = [d.dim_param or d.dim_value for d in raw.type.tensor_type.shape.dim]
    input_ids = next(i for i in graph.input if i.name == "input_ids")
    batch, seq = (d.dim_param or d.dim_value for d in input_ids.type.tensor_type.shape.dim)
    outputs = task.add_postprocessing(GraphBuilder(graph), raw.name, batch, seq, raw_dims[-1])
    del graph.output[:]
    graph.output.extend(outputs)


def check_parity(
    onnx_path: Path, info: ModelInfo, reference: TorchModel, texts: Sequence[str], atol: float
) -> float:
    """Largest |ONNX Runtime - PyTorch| over the float outputs; raises ParityError above atol.

    Per-token outputs are compared on real tokens only; label ids must match exactly there.
    """
    session = OrtModel(onnx_path)
    tokenizer = load_tokenizer(info.model_dir)
    worst = 0.0
    for batch in (texts, texts[:1]):
        feeds = encode(tokenizer, info, batch, info.max_length)
        expected = reference(feeds)
        got_all = session(feeds, info.task_record.output_names)
        real_tokens = feeds["attention_mask"].astype(bool)
        for output in info.task_record.outputs:
            want, got = expected[output.name], got_all[output.name]
            if output.per_token:
                want, got = want[real_tokens], got[real_tokens]
            if output.kind == "labels":
                mismatches = int(np.count_nonzero(want != got))
                if mismatches:
                    raise ParityError(
                        f"{onnx_path}: output '{output.name}' differs from PyTorch on "
                        f"{mismatches} of {want.size} tokens: re-export with another --opset",
                        float(mismatches),
                        atol,
                    )
                continue
            diff = float(np.max(np.abs(want.astype(np.float64) - got.astype(np.float64))))
            if not diff <= atol:  # also catches NaN
                raise ParityError(
                    f"{onnx_path}: output '{output.name}' differs from PyTorch by {diff:.3g} "
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
