"""The repository contract: one object for a deployment's names, kind, task and tokenizer
parameters, read back the same way from an ONNX and a TensorRT repository; plans read back
from configs render to the same text (tune changes data, never text)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.unit.test_tensorrt_config import trt_model, write_repository
from tritonkit.errors import ConfigError, RepositoryError
from tritonkit.repository.contract import Deployment, read_configs
from tritonkit.repository.pbtxt import parse_config, plan_from_config, render_config
from tritonkit.repository.plan import plan_from_repository
from tritonkit.runtime.tokenizer import TokenizerParams
from tritonkit.tasks import get_task
from tritonkit.tune.search import Settings, apply_settings, candidates, read_settings


def test_an_onnx_deployment_read_back(cls_repo: Path) -> None:
    deployment = Deployment.from_repository(cls_repo)  # the only ensemble
    assert deployment == Deployment.from_repository(cls_repo, "cls")
    assert (deployment.name, deployment.tokenizer_model, deployment.model) == (
        "cls", "cls_tokenizer", "cls_onnx",
    )  # fmt: skip
    assert deployment.model_kind == "onnx"
    assert deployment.task is get_task("text-classification")
    assert deployment.served_outputs == ("PROBABILITIES",)
    assert deployment.tokenizer == TokenizerParams(max_length=64, emit_token_type_ids=True)
    assert deployment.labels(cls_repo) == ("negative", "positive")
    assert deployment.tokenizer_file(cls_repo).is_file()


def test_a_tensorrt_deployment_read_back_the_same_way(tmp_path: Path) -> None:
    repo = write_repository(tmp_path)
    deployment = Deployment.from_repository(repo, "m")
    assert (deployment.model, deployment.model_kind) == ("m_trt", "tensorrt")
    assert deployment.task is get_task("feature-extraction")
    assert deployment.tokenizer.buckets == (16, 64)


def test_tune_plans_a_tensorrt_deployment_without_threads_or_new_buckets(tmp_path: Path) -> None:
    repo = write_repository(tmp_path)
    (repo / "m_trt" / "1" / "model.onnx").write_bytes(b"")  # any other file travels along
    plan = plan_from_repository(repo, "m")
    default = read_settings(plan)
    assert default == Settings(2, 0, 1, True, 16, 250, (16, 64), None)  # tokenizer: no batcher
    tried = [
        s
        for stage in ("parallelism", "batching", "queue", "max-batch")
        for s in candidates(default, stage, [10, 20, 30], 128, "tensorrt")
    ]
    assert tried and all(s.threads == 0 and s.buckets == (16, 64) for s in tried)
    tuned = apply_settings(plan, replace(default, model_instances=1, max_batch_size=8))
    model = tuned.model("m_trt")
    assert (model.instance_count, model.max_batch_size, model.profiles) == (1, 8, ("0", "1", "2"))
    assert tuned.ensemble.max_batch_size == 8
    assert any(f.path == "m_trt/1/model.plan" for f in tuned.files)


def test_rendered_configs_read_back_to_the_same_plan(cls_repo: Path) -> None:
    plan = plan_from_repository(cls_repo)
    graphs = replace(
        trt_model(), cuda_graphs=True, cc_model_filenames={"8.9": "model_sm89.plan"},
        parameters={"x": 'quote " and \\ back\nslash'},
    )  # fmt: skip
    for model in (*plan.models, plan.ensemble, graphs):
        text = render_config(model)
        again = plan_from_config(parse_config(text, "t"), text)
        assert again == model, model.name
        assert render_config(again) == text


def test_contract_problems_are_one_line(tmp_path: Path, cls_repo: Path) -> None:
    with pytest.raises(RepositoryError, match=r"no ensemble 'nope' \(ensembles: cls\)"):
        Deployment.from_repository(cls_repo, "nope")
    configs = read_configs(cls_repo)
    config = configs["cls_tokenizer"]
    config.parameters["buckets"].string_value = "8,x"
    with pytest.raises(ConfigError) as info:
        Deployment.from_configs(configs, "cls", "served")
    assert str(info.value) == (
        "served: cls_tokenizer/config.pbtxt: parameter buckets '8,x' is not a list of integers"
    )
    del configs["cls_onnx"]
    with pytest.raises(RepositoryError, match="not a tokenizer and a model in this repository"):
        Deployment.from_configs(configs, "cls")
