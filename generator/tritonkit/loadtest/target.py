"""What a load test is aimed at: preflight checks of the served model, and the reference
results that sampled correctness checks compare with (computed before the load starts)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tritonkit.errors import LoadtestInputError, ModelSourceError, TritonkitError
from tritonkit.loadtest.metrics import scrape_metrics
from tritonkit.repository.contract import Deployment
from tritonkit.server.client import ADMIN_KEY_ENV, Client, admin_headers, served_deployment

if TYPE_CHECKING:
    from tritonkit.loadtest.config import LoadtestConfig

CHECK_TEXTS = 64  # corpus texts with precomputed references, for sampled correctness checks


@dataclass(frozen=True)
class Target:
    """The served model, as its config describes it."""

    name: str
    input: str  # the TYPE_STRING input
    outputs: tuple[str, ...]
    steps: tuple[str, ...]  # composing models of an ensemble, in order
    max_batch_size: int


def http_client(url: str) -> Any:
    import tritonclient.http as httpclient

    return httpclient.InferenceServerClient(url, connection_timeout=10.0, network_timeout=30.0)


def probe(config: LoadtestConfig) -> Target:
    """Check that the server answers and serves `config.name` with a text input."""
    client = http_client(config.url)
    try:
        try:
            client.is_server_live()
        except Exception:
            raise LoadtestInputError(
                f"{config.url}: cannot reach the Triton server over HTTP: start it "
                "(tritonkit serve) or fix --url"
            ) from None
        if not client.is_model_ready(config.name):
            ready = sorted(
                {
                    m["name"]
                    for m in client.get_model_repository_index(
                        headers=admin_headers(http_url=config.url)
                    )
                    if m.get("state") == "READY"
                }
            )
            listed = f"ready: {', '.join(ready)}" if ready else "no model is ready"
            raise LoadtestInputError(
                f"model '{config.name}' is not ready on {config.url} ({listed}): check --name"
            )
        try:
            served = client.get_model_config(
                config.name, headers=admin_headers(http_url=config.url)
            )
        except Exception as e:
            raise LoadtestInputError(
                f"{config.url}: cannot read the config of '{config.name}' ({e}): if the server "
                f"restricts the model-config API, set {ADMIN_KEY_ENV}"
            ) from None
        target = _target(config, dict(served))
    finally:
        client.close()
    if config.protocol == "grpc":
        _probe_grpc(config.resolved_grpc_url, config.name)
    try:
        scrape_metrics(config.resolved_metrics_url)
    except OSError:
        raise LoadtestInputError(
            f"{config.resolved_metrics_url}: cannot read Triton's /metrics: fix --metrics-url "
            "(default: the --url host, port 8002)"
        ) from None
    return target


def _target(config: LoadtestConfig, model: dict[str, Any]) -> Target:
    name = config.name
    texts = [t["name"] for t in model.get("input", []) if t.get("data_type") == "TYPE_STRING"]
    if len(texts) != 1 or len(model.get("input", [])) != 1:
        raise LoadtestInputError(
            f"model '{name}' does not take one TYPE_STRING input: send the load to the "
            "deployment's ensemble (--name)"
        )
    max_batch = int(model.get("max_batch_size", 0))
    if max_batch < config.batch_size:
        raise LoadtestInputError(
            f"--batch-size {config.batch_size}: model '{name}' takes at most {max_batch} texts "
            "per request (max_batch_size): lower --batch-size"
        )
    steps = model.get("ensemble_scheduling", {}).get("step", [])
    return Target(
        name=name,
        input=texts[0],
        outputs=tuple(o["name"] for o in model.get("output", [])),
        steps=tuple(dict.fromkeys(step["model_name"] for step in steps)),
        max_batch_size=max_batch,
    )


def _probe_grpc(url: str, name: str) -> None:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    try:
        ready = client.is_model_ready(name, client_timeout=10.0)
    except Exception:
        ready = False
    finally:
        client.close()
    if not ready:
        raise LoadtestInputError(
            f"{url}: cannot reach model '{name}' over gRPC: fix --grpc-url "
            "(default: the --url port + 1)"
        )


def prepare_check(
    config: LoadtestConfig, model_dir: Path, target: Target, texts: Sequence[str], run_dir: Path
) -> dict[str, Any]:
    """Reference results for a sample of the corpus, computed before the load starts."""
    from tritonkit.check import token_counts, tolerance_for
    from tritonkit.model.inspect import inspect_model_dir
    from tritonkit.model.runners import reference_outputs

    deployment = _served(config)
    task = deployment.task.name
    try:
        info = inspect_model_dir(model_dir, task)
    except ModelSourceError as e:
        raise LoadtestInputError(str(e)) from None
    max_length = deployment.tokenizer.max_length
    unique = sorted(set(texts))
    sample = random.Random(0).sample(unique, min(CHECK_TEXTS, len(unique)))
    references = reference_outputs(model_dir, task, sample, max_length=max_length)
    tokens = token_counts(model_dir, sample, max_length)
    path = run_dir / "references.npz"
    arrays: dict[str, Any] = {"n_tokens": np.array(tokens), **references}
    np.savez(path, **arrays)
    tolerance = tolerance_for(None)
    return {
        "fraction": config.check_fraction,
        "task": task,
        "labels": list(info.labels),
        "texts": sample,
        "references": str(path),
        "min_cosine": tolerance.min_cosine,
        "max_prob_diff": tolerance.max_prob_diff,
    }


def _served(config: LoadtestConfig) -> Deployment:
    """The deployment the load goes to, by the repository contract (its task, its limits)."""
    client = Client("http", config.url)
    try:
        return served_deployment(client, config.name)
    except TritonkitError as e:
        raise LoadtestInputError(
            f"model '{config.name}': correctness sampling needs a tritonkit deployment: {e}"
        ) from None
    finally:
        client.close()
