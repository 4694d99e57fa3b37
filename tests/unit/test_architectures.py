"""Every architecture tritonkit advertises, for every task it supports, through inspect, export
and the repository's tokenizer, on the tiny random models of tests/fixtures/architectures.py.

The tokenizer that runs inside Triton (`TextEncoder`, with the parameters `tritonkit generate`
wrote into the repository) must give exactly what the model's own Hugging Face fast tokenizer
gives: the PyTorch reference of `check` and export parity is fed by the latter.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from transformers import AutoTokenizer

from tests.fixtures.architectures import (
    ARCHITECTURES,
    TASK_LABELS,
    architecture_tasks,
    deployment_name,
    with_tokenizer_config,
)
from tests.fixtures.tiny_models import MAX_LENGTH
from tritonkit.model.export import export_model
from tritonkit.model.inspect import SUPPORTED_TYPES, inspect_model_dir
from tritonkit.pipeline.generate import generate
from tritonkit.repository.contract import Deployment
from tritonkit.runtime.tokenizer import TextEncoder
from tritonkit.spec import build_spec
from tritonkit.tasks import get_task

PAIRS = architecture_tasks()
PAIR_IDS = [f"{model_type}-{task}" for model_type, task in PAIRS]
TEXTS = (
    "Hello world, the quick brown fox jumps over the lazy dog!",
    "Ünïcödé façade, naïve café, 日本語のテキスト and emoji 🚀🔥👍🏽",
    "",
    "  Paris   and London,\ttoday  ",
    " ".join(["the movie was really good and the service was fast"] * 12),  # > MAX_LENGTH
)


def test_the_registry_covers_every_advertised_architecture() -> None:
    assert sorted(ARCHITECTURES) == sorted(SUPPORTED_TYPES.split(", "))
    assert all(ARCHITECTURES[name].supported_tasks for name in ARCHITECTURES)


@pytest.mark.parametrize("model_type", sorted(ARCHITECTURES))
def test_builds_are_deterministic(model_type: str, tmp_path: Path) -> None:
    arch = ARCHITECTURES[model_type]
    first = arch.build(tmp_path / "a", "token-classification")
    second = arch.build(tmp_path / "b", "token-classification")
    files = sorted(p.name for p in first.iterdir())
    assert files == sorted(p.name for p in second.iterdir())
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


@pytest.mark.parametrize(("model_type", "task"), PAIRS, ids=PAIR_IDS)
def test_inspect_accepts_the_folder(
    model_type: str, task: str, architecture_model: Callable[[str, str], Path]
) -> None:
    info = inspect_model_dir(architecture_model(model_type, task), task)
    assert info.model_type == model_type
    assert info.max_length == MAX_LENGTH
    assert ("token_type_ids" in info.input_names) == ARCHITECTURES[model_type].token_type_ids
    assert info.labels == (TASK_LABELS[task] if get_task(task).needs_labels else ())


@pytest.mark.parametrize(("model_type", "task"), PAIRS, ids=PAIR_IDS)
def test_export_passes_its_parity_check(
    model_type: str, task: str, architecture_model: Callable[[str, str], Path], tmp_path: Path
) -> None:
    """export_model raises ParityError when ONNX Runtime and PyTorch disagree; the default
    sample texts include unicode and a text past MAX_LENGTH (the last position embedding)."""
    result = export_model(architecture_model(model_type, task), task, tmp_path)
    assert result.max_abs_diff <= 1e-4
    graph = onnx.load(result.onnx_path).graph
    assert [i.name for i in graph.input] == list(result.info.input_names)
    assert [o.name for o in graph.output] == list(get_task(task).output_names)


@pytest.mark.parametrize(("model_type", "task"), PAIRS, ids=PAIR_IDS)
def test_the_served_tokenizer_matches_the_hugging_face_tokenizer(
    model_type: str,
    task: str,
    architecture_model: Callable[[str, str], Path],
    architecture_repo: Callable[[str, str], Path],
) -> None:
    repo = architecture_repo(model_type, task)
    name = deployment_name(model_type, task)
    model_dir = architecture_model(model_type, task)
    assert_served_tokenizer_matches(repo, name, model_dir, model_type, task)


def assert_served_tokenizer_matches(
    repo: Path, name: str, model_dir: Path, model_type: str, task: str
) -> None:
    """The repository's tokenizer, run as Triton runs it, against the folder's HF tokenizer:
    one request of all TEXTS, then one per text."""
    deployment = Deployment.from_repository(repo, name)
    encoder = TextEncoder(str(deployment.tokenizer_file(repo)), deployment.tokenizer)
    hf = AutoTokenizer.from_pretrained(model_dir)
    offsets = get_task(task).emits_offsets
    expected_names = {"input_ids", "attention_mask"}
    if ARCHITECTURES[model_type].token_type_ids:
        expected_names.add("token_type_ids")
    if offsets:
        expected_names.add("offsets")

    for batch in ([*TEXTS], *([text] for text in TEXTS)):
        got = encoder.encode(batch)
        want = hf(
            batch,
            padding=True,
            truncation=True,
            max_length=MAX_LENGTH,
            return_offsets_mapping=offsets,
            return_tensors="np",
        )
        assert set(got) == expected_names, batch
        for output in expected_names - {"offsets"}:
            np.testing.assert_array_equal(got[output], want[output], err_msg=f"{output}: {batch}")
        if offsets:
            np.testing.assert_array_equal(got["offsets"], want["offset_mapping"], str(batch))

    longest = encoder.encode([TEXTS[-1]])["input_ids"][0]
    assert len(longest) == MAX_LENGTH
    assert longest[-1] == hf.sep_token_id  # truncated before the end token


@pytest.mark.parametrize(
    ("model_type", "option", "value"),
    [("bert", "do_lower_case", False), ("roberta", "add_prefix_space", True),
     ("roberta", "trim_offsets", False)],
)  # fmt: skip
def test_the_served_tokenizer_follows_tokenizer_config(
    model_type: str, option: str, value: bool, tmp_path: Path
) -> None:
    """transformers rebuilds parts of tokenizer.json from tokenizer_config.json when it loads a
    BERT or RoBERTa tokenizer; a folder whose two files disagree is tokenized the way the
    reference (and the user's PyTorch code) tokenizes it, not as tokenizer.json alone says."""
    task = "token-classification"
    model_dir = with_tokenizer_config(
        ARCHITECTURES[model_type].build(tmp_path / "model", task), **{option: value}
    )
    spec = build_spec(
        None, {"model": model_dir, "task": task, "name": "m", "output": tmp_path / "repo"}
    )
    repo = generate(spec).output
    assert_served_tokenizer_matches(repo, "m", model_dir, model_type, task)


@pytest.mark.parametrize(("model_type", "task"), PAIRS, ids=PAIR_IDS)
def test_the_repository_records_the_models_limits(
    model_type: str, task: str, architecture_repo: Callable[[str, str], Path]
) -> None:
    repo = architecture_repo(model_type, task)
    params = Deployment.from_repository(repo, deployment_name(model_type, task)).tokenizer
    assert params.max_length == MAX_LENGTH
    assert params.emit_token_type_ids == ARCHITECTURES[model_type].token_type_ids
    assert params.emit_offsets == get_task(task).emits_offsets
    record = json.loads((repo / "tritonkit.json").read_text(encoding="utf-8"))
    assert record["max_length"] == MAX_LENGTH
    assert record["export_max_abs_diff"] <= 1e-4


@pytest.mark.parametrize("model_type", sorted(ARCHITECTURES))
def test_without_a_tokenizer_limit_the_position_embeddings_bound_the_length(
    model_type: str, tmp_path: Path
) -> None:
    """Fine-tuned checkpoints often save model_max_length as transformers' 'no limit' value
    (int(1e30)). RoBERTa, XLM-RoBERTa and MPNet number positions from pad_token_id + 1, so their
    MAX_LENGTH + 2 position embeddings hold MAX_LENGTH tokens: taking MAX_LENGTH + 2 as the limit
    made the export crash on its long sample text (IndexError in the position embeddings)."""
    model_dir = ARCHITECTURES[model_type].build(tmp_path / "model", "feature-extraction")
    config_path = model_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["model_max_length"] = int(1e30)
    config_path.write_text(json.dumps(config), encoding="utf-8")
    assert inspect_model_dir(model_dir, "feature-extraction").max_length == MAX_LENGTH
    export_model(model_dir, "feature-extraction", tmp_path / "onnx")
