"""In-process baselines for the served deployment: the same texts through the same ONNX model
(ONNX Runtime) and through PyTorch + transformers, without Triton.

`tritonkit tune` compares the served throughput with the best of these, so the serving
overhead is a measured ratio, not a claim. Each configuration runs for a fixed time on the
whole corpus (cycled), tokenization included, in fresh worker processes.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Baseline:
    engine: str  # "onnxruntime" | "pytorch"
    workers: int
    threads: int  # per worker
    batching: str  # "none" (one text per call) | "equal-length xN" (sorted by length)
    texts_per_s: float

    @property
    def label(self) -> str:
        return f"{self.engine} {self.workers}x{self.threads} threads, batching {self.batching}"


def _batches(lengths: np.ndarray, batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of (nearly) equal token length."""
    if batch_size <= 1:
        return [[i] for i in range(len(lengths))]
    order = np.argsort(lengths, kind="stable")
    return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]


def _loop(
    run: Callable[[list[str]], object],
    texts: list[str],
    lengths: np.ndarray,
    batch_size: int,
    seconds: float,
    queue: Any,
) -> None:
    """Report ready, then run batches for `seconds` and report the texts per second."""
    batches = _batches(lengths, batch_size)
    done, index = 0, 0
    queue.put(("ready", 0))
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = [texts[i] for i in batches[index % len(batches)]]
        run(batch)
        done += len(batch)
        index += 1
    queue.put(("done", done / (time.perf_counter() - start)))


def _ort_worker(args: tuple[str, str, list[str], int, int, int, float, Any]) -> None:
    """ONNX Runtime with the `tokenizers` file the served tokenizer uses."""
    onnx_path, tokenizer_file, texts, max_length, threads, batch_size, seconds, queue = args
    from tokenizers import Tokenizer

    from tritonkit.model.runners import OrtModel

    session = OrtModel(Path(onnx_path), threads=threads)
    tokenizer = Tokenizer.from_file(tokenizer_file)
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding()

    def run(batch: list[str]) -> object:
        encodings = tokenizer.encode_batch(batch)
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        return session(feeds)

    lengths = np.array([len(e.ids) for e in tokenizer.encode_batch(texts)])
    _loop(run, texts, lengths, batch_size, seconds, queue)


def _torch_worker(args: tuple[str, str, list[str], int, int, int, float, Any]) -> None:
    """PyTorch + transformers as a user runs them, with the graph's post-processing."""
    model_dir, task, texts, max_length, threads, batch_size, seconds, queue = args
    from tritonkit.model.inspect import inspect_model_dir
    from tritonkit.model.runners import TorchModel, encode, load_tokenizer

    info = inspect_model_dir(Path(model_dir), task)
    model = TorchModel(info, eager=False, threads=threads)
    tokenizer = load_tokenizer(info.model_dir)

    def run(batch: list[str]) -> object:
        return model(encode(tokenizer, info, batch, max_length))

    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    _loop(run, texts, np.array([len(i) for i in ids]), batch_size, seconds, queue)


def _run(target: Any, args: tuple[Any, ...], workers: int) -> float:
    """Start `workers` processes, let them all load, then sum their throughputs."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=target, args=((*args, queue),)) for _ in range(workers)]
    for process in processes:
        process.start()
    results = []
    try:
        for _ in range(2 * workers):
            kind, value = queue.get(timeout=600)
            if kind == "done":
                results.append(value)
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    return float(sum(results))


def _baseline(
    engine: str, target: Any, args: tuple[Any, ...], workers: int, threads: int, batch_size: int
) -> Baseline:
    rate = _run(target, args, workers)
    batching = "none" if batch_size <= 1 else f"equal-length x{batch_size}"
    return Baseline(engine, workers, threads, batching, rate)


def measure_onnxruntime(
    onnx_path: Path,
    tokenizer_file: Path,
    texts: Sequence[str],
    max_length: int,
    *,
    workers: int,
    threads: int,
    batch_size: int,
    seconds: float,
) -> Baseline:
    args = (
        str(onnx_path),
        str(tokenizer_file),
        list(texts),
        max_length,
        threads,
        batch_size,
        seconds,
    )
    return _baseline("onnxruntime", _ort_worker, args, workers, threads, batch_size)


def measure_pytorch(
    model_dir: Path,
    task: str,
    texts: Sequence[str],
    max_length: int,
    *,
    workers: int,
    threads: int,
    batch_size: int,
    seconds: float,
) -> Baseline:
    args = (str(model_dir), task, list(texts), max_length, threads, batch_size, seconds)
    return _baseline("pytorch", _torch_worker, args, workers, threads, batch_size)


ORT_GRID = ((1, 2, 1), (2, 1, 1), (1, 2, 16), (2, 1, 16))  # (workers, threads, batch size)
TORCH_GRID = ((1, 2, 1), (1, 2, 16), (2, 1, 16))


def measure_all(
    onnx_path: Path,
    tokenizer_file: Path,
    model_dir: Path,
    task: str,
    texts: Sequence[str],
    max_length: int,
    seconds: float = 10.0,
) -> list[Baseline]:
    """Every in-process configuration in ORT_GRID and TORCH_GRID."""
    results = [
        measure_onnxruntime(
            onnx_path,
            tokenizer_file,
            texts,
            max_length,
            workers=w,
            threads=t,
            batch_size=b,
            seconds=seconds,
        )
        for w, t, b in ORT_GRID
    ]
    results += [
        measure_pytorch(
            model_dir, task, texts, max_length, workers=w, threads=t, batch_size=b, seconds=seconds
        )
        for w, t, b in TORCH_GRID
    ]
    return results
