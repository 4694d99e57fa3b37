"""`tritonkit check`: the served ensemble against the Hugging Face PyTorch reference.

Texts go over HTTP and gRPC, as one batch and one by one; each answer is compared with the
reference computed in-process. Tolerances: embeddings by cosine similarity, classification by
top label and probability difference, token classification by per-token labels.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from tritonkit.errors import CheckError

BUILTIN_TEXTS: tuple[str, ...] = (
    "The quick brown fox jumps over the lazy dog.",
    "I absolutely loved this movie: the acting was superb!",
    "This was the worst purchase I have ever made.",
    "Triton serves models over HTTP and gRPC.",
    "東京は日本の首都です。北京和上海也是大城市。",
    "Emoji work too 🚀🔥😀 or do they?",
    "Crème brûlée, naïve café, résumé: accents everywhere. Ça va?",
    "",
    "Short.",
    " ".join(["A sentence that repeats until it is far longer than the model's maximum."] * 120),
)

TASK_BY_OUTPUT = {
    "EMBEDDINGS": "feature-extraction",
    "PROBABILITIES": "text-classification",
    "LABEL_IDS": "token-classification",
}
MODES = ("http batch", "http single", "grpc batch", "grpc single")


@dataclass(frozen=True)
class Tolerance:
    min_cosine: float = 0.999
    max_prob_diff: float = 1e-3


@dataclass(frozen=True)
class TextResult:
    index: int
    mode: str
    ok: bool
    metric: float  # cosine (embeddings), max prob diff (classification), mismatches (tokens)
    detail: str


@dataclass(frozen=True)
class CheckReport:
    name: str
    task: str
    texts: tuple[str, ...]
    results: tuple[TextResult, ...]
    labels: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return all(r.ok for r in self.results)

    def failures(self) -> list[TextResult]:
        return [r for r in self.results if not r.ok]


def load_texts(path: Path) -> list[str]:
    """One text per line, or JSONL with a "text" field (detected by the .jsonl suffix)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise CheckError(f"{path}: text file not found") from None
    except UnicodeDecodeError:
        raise CheckError(f"{path}: not UTF-8 text: save it as UTF-8") from None
    if path.suffix == ".jsonl":
        texts = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                raise CheckError(f"{path}:{number}: not valid JSON") from None
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                raise CheckError(f"{path}:{number}: expected an object with a string 'text'")
            texts.append(item["text"])
    else:
        texts = [line for line in lines if line.strip()]
    if not texts:
        raise CheckError(f"{path}: no texts in the file: add one text per line")
    return texts


class _Client:
    """The same calls over tritonclient.http or tritonclient.grpc."""

    def __init__(self, protocol: str, url: str) -> None:
        self.protocol = protocol
        if protocol == "http":
            import tritonclient.http as module
        else:
            import tritonclient.grpc as module  # type: ignore[no-redef]
        self.module: Any = module
        self.client: Any = module.InferenceServerClient(url=url)
        self.url = url

    def ensure_ready(self, name: str) -> None:
        try:
            live = self.client.is_server_live()
        except Exception as e:
            raise CheckError(
                f"{self.protocol} {self.url}: cannot reach the server ({type(e).__name__}): "
                "start it with `tritonkit serve` or fix --url"
            ) from None
        if not live:
            raise CheckError(f"{self.protocol} {self.url}: server is not live")
        if not self.client.is_model_ready(name):
            raise CheckError(
                f"{self.protocol} {self.url}: model '{name}' is not ready on the server: "
                "check --name (and that the repository loaded)"
            )

    def config(self, name: str) -> dict[str, Any]:
        if self.protocol == "http":
            return dict(self.client.get_model_config(name))
        return dict(self.client.get_model_config(name, as_json=True)["config"])

    def infer(self, name: str, texts: Sequence[str], outputs: Sequence[str]) -> dict[str, Any]:
        data = np.array([[t.encode("utf-8")] for t in texts], dtype=np.object_)
        tensor = self.module.InferInput("TEXT", list(data.shape), "BYTES")
        tensor.set_data_from_numpy(data)
        requested = [self.module.InferRequestedOutput(o) for o in outputs]
        result = self.client.infer(name, [tensor], outputs=requested)
        return {o: result.as_numpy(o) for o in outputs}

    def close(self) -> None:
        self.client.close()


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / denom) if denom else 0.0


def compare(
    task: str,
    served: dict[str, np.ndarray],
    reference: dict[str, np.ndarray],
    row: int,
    served_row: int,
    labels: Sequence[str],
    tol: Tolerance,
    n_tokens: int,
) -> tuple[bool, float, str]:
    """Compare one text's served result with its reference: (ok, metric, detail)."""
    if task == "feature-extraction":
        cos = _cosine(served["EMBEDDINGS"][served_row], reference["embeddings"][row])
        return cos >= tol.min_cosine, cos, f"cosine {cos:.6f}"
    if task == "text-classification":
        got = served["PROBABILITIES"][served_row]
        want = reference["probabilities"][row]
        diff = float(np.max(np.abs(got - want)))
        top_got, top_want = int(np.argmax(got)), int(np.argmax(want))
        name = labels[top_got] if top_got < len(labels) else str(top_got)
        ok = top_got == top_want and diff <= tol.max_prob_diff
        return ok, diff, f"{name} (max |dp| {diff:.2e})"
    want_ids = reference["label_ids"][row][:n_tokens]
    got_ids = served["LABEL_IDS"][served_row][:n_tokens]
    mismatches = int(np.sum(got_ids != want_ids)) + abs(len(got_ids) - len(want_ids))
    return mismatches == 0, float(mismatches), f"{n_tokens} tokens, {mismatches} differ"


def token_counts(tokenizer_file: Path, texts: Sequence[str], max_length: int) -> list[int]:
    """Tokens per text after truncation, special tokens included (what the server sees)."""
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    return [len(encoding.ids) for encoding in tokenizer.encode_batch(list(texts))]


def _task_from_config(config: dict[str, Any], name: str) -> tuple[str, list[str]]:
    outputs = [o["name"] for o in config.get("output", [])]
    for output, task in TASK_BY_OUTPUT.items():
        if output in outputs:
            return task, outputs
    raise CheckError(
        f"model '{name}' has outputs {outputs}: not a tritonkit ensemble "
        "(expected EMBEDDINGS, PROBABILITIES or LABEL_IDS)"
    )


def _max_length(client: _Client, name: str, default: int) -> int:
    try:
        config = client.config(f"{name}_tokenizer")
    except Exception:
        return default
    params = config.get("parameters", {})
    value = params.get("max_length", {}).get("string_value")
    return int(value) if value else default


def run_check(
    model_dir: Path,
    name: str,
    http_url: str,
    grpc_url: str,
    texts: Sequence[str] = BUILTIN_TEXTS,
    tol: Tolerance = Tolerance(),
    batch_size: int = 8,
) -> CheckReport:
    """Send `texts` in every mode and compare with the PyTorch reference."""
    from tritonkit.export import inspect_model_dir, reference_outputs

    if not texts:
        raise CheckError("no texts to check: give a non-empty --texts file or use the built-ins")
    clients = [_Client("http", http_url), _Client("grpc", grpc_url)]
    try:
        for client in clients:
            client.ensure_ready(name)
        task, outputs = _task_from_config(clients[0].config(name), name)
        info = inspect_model_dir(model_dir, task)
        max_length = _max_length(clients[0], name, info.max_length)
        reference = reference_outputs(model_dir, task, list(texts), max_length=max_length)
        lengths = token_counts(model_dir / "tokenizer.json", texts, max_length)
        results: list[TextResult] = []
        for client in clients:
            for start in range(0, len(texts), batch_size):
                chunk = list(texts[start : start + batch_size])
                served = client.infer(name, chunk, outputs)
                for offset in range(len(chunk)):
                    row = start + offset
                    ok, metric, detail = compare(
                        task, served, reference, row, offset, info.labels, tol, lengths[row]
                    )
                    results.append(
                        TextResult(start + offset, f"{client.protocol} batch", ok, metric, detail)
                    )
            for index, text in enumerate(texts):
                served = client.infer(name, [text], outputs)
                ok, metric, detail = compare(
                    task, served, reference, index, 0, info.labels, tol, lengths[index]
                )
                results.append(TextResult(index, f"{client.protocol} single", ok, metric, detail))
    finally:
        for client in clients:
            client.close()
    return CheckReport(name, task, tuple(texts), tuple(results), info.labels)
