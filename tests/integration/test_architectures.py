"""Every (architecture, task) pair of tests/fixtures/architectures.py, served by one real
tritonserver and checked against PyTorch.

Each pair's repository is the one `tritonkit generate` writes (shared with the unit tests of
tests/unit/test_architectures.py: export with parity, plan, render, validate); their model
folders are merged into one repository so that a single server loads all of them, which keeps
this module to one server start. `check` then sends the built-in texts (unicode, the empty
string, a text past the model's maximum) over HTTP and gRPC, batched and one by one, and
compares every answer with the Hugging Face model run in PyTorch.

All pairs are served, not a sample: the 21 tiny deployments (plus one BERT whose
tokenizer_config.json disagrees with its tokenizer.json) load in one server start, and the
module takes about 70 s on 2 cores, repository generation included.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.architectures import (
    ARCHITECTURES,
    architecture_tasks,
    deployment_name,
    with_tokenizer_config,
)
from tests.integration.conftest import start_server
from tritonkit.check import BUILTIN_TEXTS, run_check
from tritonkit.pipeline.generate import generate
from tritonkit.server.install import ServerInstall
from tritonkit.server.process import TritonServer
from tritonkit.spec import build_spec

pytestmark = pytest.mark.integration

PAIRS = architecture_tasks()
CASED = "bert_cased_config"  # tokenizer_config.json and tokenizer.json disagree


@pytest.fixture(scope="module")
def cased_config_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BERT whose tokenizer_config.json says do_lower_case false while its tokenizer.json
    lower-cases: transformers (the reference) does not lower-case it, so Triton must not."""
    model = ARCHITECTURES["bert"].build(tmp_path_factory.mktemp("cased"), "token-classification")
    return with_tokenizer_config(model, do_lower_case=False)


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
    triton_install: ServerInstall,
    architecture_repo: Callable[[str, str], Path],
    cased_config_model: Path,
) -> Iterator[TritonServer]:
    root = tmp_path_factory.mktemp("architectures_served")
    repos = [architecture_repo(model_type, task) for model_type, task in PAIRS]
    cased = {"model": cased_config_model, "task": "token-classification", "name": CASED}
    repos.append(generate(build_spec(None, {**cased, "output": root / CASED})).output)
    combined = root / "repo"
    for repo in repos:
        for folder in repo.iterdir():
            if folder.is_dir():
                shutil.copytree(folder, combined / folder.name)
    server = start_server(combined, triton_install)
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("model_type", "task"), PAIRS, ids=[f"{model_type}-{task}" for model_type, task in PAIRS]
)
def test_served_deployment_matches_pytorch(
    served: TritonServer,
    model_type: str,
    task: str,
    architecture_model: Callable[[str, str], Path],
    architecture_repo: Callable[[str, str], Path],
) -> None:
    report = run_check(
        architecture_model(model_type, task),
        deployment_name(model_type, task),
        served.http_url,
        served.grpc_url,
        BUILTIN_TEXTS,
        repository=architecture_repo(model_type, task),
        admin_key=served.admin_key,
    )
    assert report.task == task
    assert report.passed, report.failures()
    assert len(report.results) == 4 * len(BUILTIN_TEXTS)


def test_check_fails_against_another_architecture(
    served: TritonServer, architecture_model: Callable[[str, str], Path]
) -> None:
    """The served RoBERTa embeddings checked against MPNet's (same task, outputs and maximum
    length, other weights and tokenizer) must not pass: the comparison above can fail."""
    report = run_check(
        architecture_model("mpnet", "feature-extraction"),
        deployment_name("roberta", "feature-extraction"),
        served.http_url,
        served.grpc_url,
        BUILTIN_TEXTS,
        admin_key=served.admin_key,
    )
    assert not report.passed
    assert len(report.failures()) > len(report.results) // 2


def test_a_tokenizer_config_that_changes_tokenizer_json_is_served_as_loaded(
    served: TritonServer, cased_config_model: Path
) -> None:
    texts = ("Hello World from Paris", "THE QUICK BROWN FOX", *BUILTIN_TEXTS)
    report = run_check(
        cased_config_model, CASED, served.http_url, served.grpc_url, texts,
        admin_key=served.admin_key,
    )  # fmt: skip
    assert report.passed, report.failures()
