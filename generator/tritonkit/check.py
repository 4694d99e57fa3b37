"""`tritonkit check`: the served ensemble against the Hugging Face PyTorch reference.

Texts go over HTTP and gRPC, as one batch and one by one; each answer is compared with the
reference computed in-process, by the task's own rule (`Task.compare`): embeddings by cosine
similarity, classification by top label and probability difference, token classification by
per-token labels. The deployment (task, tokenizer limits) is read from the served configs by
the repository contract; with a repository folder it must also match that folder's files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tritonkit.errors import CheckError
from tritonkit.model.inspect import inspect_model_dir
from tritonkit.model.runners import load_tokenizer, reference_outputs
from tritonkit.repository.contract import RECORD_FILE, Deployment
from tritonkit.server.client import Client, admin_headers, served_deployment
from tritonkit.spec.sections import VARIANT_PRECISION
from tritonkit.tasks import PRECISION_TOLERANCES, Precision, Tolerance

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
MODES = ("http batch", "http single", "grpc batch", "grpc single")


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
    tolerance: Tolerance

    @property
    def passed(self) -> bool:
        return all(r.ok for r in self.results)

    def failures(self) -> list[TextResult]:
        return [r for r in self.results if not r.ok]


def deployed_precision(repo: Path) -> Precision:
    """The precision a repository's deployed variant serves at (fp32 when unknown)."""
    try:
        record = json.loads((repo / RECORD_FILE).read_text(encoding="utf-8"))
        variant = record.get("variant") or {}
        name = variant.get("name") if isinstance(variant, dict) else None
        name = name or record["spec"]["variant"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return "fp32"
    return VARIANT_PRECISION.get(str(name), "fp32")


def tolerance_for(
    precision: Precision | None,
    min_cosine: float | None = None,
    max_prob_diff: float | None = None,
    repo: Path | None = None,
) -> Tolerance:
    """Explicit bounds win; else the precision's (given, or the repository's variant's)."""
    chosen = precision or (deployed_precision(repo) if repo is not None else "fp32")
    base = PRECISION_TOLERANCES[chosen]
    return Tolerance(
        base.min_cosine if min_cosine is None else min_cosine,
        base.max_prob_diff if max_prob_diff is None else max_prob_diff,
    )


def token_counts(model_dir: Path, texts: Sequence[str], max_length: int) -> list[int]:
    """Tokens per text after truncation, special tokens included, counted by the reference's
    tokenizer (the folder's, as transformers loads it: what tritonkit serves)."""
    encoded = load_tokenizer(model_dir)(list(texts), truncation=True, max_length=max_length)
    return [len(ids) for ids in encoded["input_ids"]]


def compare_with_repository(served: Deployment, repo: Path) -> None:
    """The served deployment must be the one in `repo`: same models, same tokenizer contract.

    A config swapped at run time through the repository API (e.g. a shorter max_length) is
    caught here, instead of being trusted because the server reports it."""
    local = Deployment.from_repository(repo, served.name)
    if local != served:
        raise CheckError(
            f"{repo}: the server's deployment '{served.name}' differs from the repository's "
            f"(served {served.model}, tokenizer {served.tokenizer}; repository {local.model}, "
            f"tokenizer {local.tokenizer}): restart the server from the repository"
        )


def run_check(
    model_dir: Path,
    name: str,
    http_url: str,
    grpc_url: str,
    texts: Sequence[str] = BUILTIN_TEXTS,
    tol: Tolerance | None = None,
    batch_size: int = 8,
    repository: Path | None = None,
    admin_key: str | None = None,
) -> CheckReport:
    """Send `texts` in every mode and compare with the PyTorch reference (`admin_key`, else
    $TRITONKIT_ADMIN_KEY, unlocks the served configs on a server that restricts them)."""
    if not texts:
        raise CheckError("no texts to check: give a non-empty --texts file or use the built-ins")
    tol = tol or tolerance_for(None, repo=repository)
    headers = admin_headers(admin_key, http_url)
    clients = [Client("http", http_url, headers), Client("grpc", grpc_url, headers)]
    try:
        for client in clients:
            client.ensure_ready(name)
        deployment = served_deployment(clients[0], name)
        if repository is not None:
            compare_with_repository(deployment, repository)
        results = _compare_all(model_dir, deployment, clients, list(texts), tol, batch_size)
    finally:
        for client in clients:
            client.close()
    labels = inspect_model_dir(model_dir, deployment.task.name).labels
    return CheckReport(name, deployment.task.name, tuple(texts), tuple(results), labels, tol)


def _compare_all(
    model_dir: Path,
    deployment: Deployment,
    clients: Sequence[Client],
    texts: list[str],
    tol: Tolerance,
    batch_size: int,
) -> list[TextResult]:
    task = deployment.task
    info = inspect_model_dir(model_dir, task.name)
    max_length = deployment.tokenizer.max_length
    reference = reference_outputs(model_dir, task.name, texts, max_length=max_length)
    lengths = token_counts(model_dir, texts, max_length)

    def judge(served: dict[str, np.ndarray], row: int, served_row: int) -> tuple[bool, float, str]:
        found = task.compare_rows(
            served, reference, served_row, row, info.labels, tol, lengths[row]
        )
        return found.ok, found.metric, found.detail

    results: list[TextResult] = []
    outputs = list(deployment.served_outputs)
    for client in clients:
        for start in range(0, len(texts), batch_size):
            served = client.infer(deployment.name, texts[start : start + batch_size], outputs)
            for offset in range(len(texts[start : start + batch_size])):
                ok, metric, detail = judge(served, start + offset, offset)
                mode = f"{client.protocol} batch"
                results.append(TextResult(start + offset, mode, ok, metric, detail))
        for index, text in enumerate(texts):
            ok, metric, detail = judge(client.infer(deployment.name, [text], outputs), index, 0)
            results.append(TextResult(index, f"{client.protocol} single", ok, metric, detail))
    return results
