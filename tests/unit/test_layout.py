"""Instances, threads and buckets from the target: the `auto` defaults, recorded in the
repository (config, tritonkit.json, README) and overridable from the spec and the flags."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tritonclient.grpc.model_config_pb2 import ModelInstanceGroup

from tritonkit.cli import main
from tritonkit.errors import SpecError
from tritonkit.pipeline.generate import generate
from tritonkit.repository.layout import CORES_PER_CPU_TOKENIZER, resolve_layout
from tritonkit.repository.pbtxt import read_config
from tritonkit.spec import build_spec

KIND_GPU, KIND_CPU = ModelInstanceGroup.KIND_GPU, ModelInstanceGroup.KIND_CPU


def spec_for(model: Path, **keys: object):  # type: ignore[no-untyped-def]
    return build_spec(None, {"model": model, "task": "text-classification", "name": "cls", **keys})


@pytest.fixture()
def cls_model(tiny_model_dirs: dict[str, Path]) -> Path:
    return tiny_model_dirs["text-classification"]


def _configs(repo: Path) -> tuple[Any, Any]:
    return (
        read_config(repo / "cls_onnx" / "config.pbtxt"),
        read_config(repo / "cls_tokenizer" / "config.pbtxt"),
    )


def test_cpu_defaults_follow_the_target_and_are_recorded(cls_model: Path, tmp_path: Path) -> None:
    repo = generate(spec_for(cls_model, output=tmp_path / "repo", target={"cpus": 3})).output
    model, tokenizer = _configs(repo)
    assert [(g.count, g.kind) for g in model.instance_group] == [(3, KIND_CPU)]
    assert model.parameters["intra_op_thread_count"].string_value == "1"
    assert [g.count for g in tokenizer.instance_group] == [1]
    assert not model.HasField("dynamic_batching")  # CPU, no buckets: shapes rarely match
    assert tokenizer.dynamic_batching.max_queue_delay_microseconds == 0
    assert tokenizer.HasField("dynamic_batching")
    assert tokenizer.parameters["buckets"].string_value == ""
    layout = json.loads((repo / "tritonkit.json").read_text())["layout"]
    assert layout["cpus"] == 3 and layout["cpus_from"] == "the spec's target.cpus"
    assert (layout["model_instances"], layout["threads"], layout["tokenizer_instances"]) == (
        3,
        1,
        1,
    )
    assert layout["why"]["model_instances"].startswith("auto: one per core of the target (3)")
    readme = (repo / "README.md").read_text()
    assert "## Instances, threads and batching" in readme
    assert "| `cls_onnx` instances | 3 | auto: one per core of the target (3)" in readme
    assert "Padding: each request to its own longest text." in readme


def test_the_default_target_is_this_machines_usable_cpus(cls_model: Path) -> None:
    layout = resolve_layout(spec_for(cls_model))
    cores = len(os.sched_getaffinity(0))
    assert (layout.cpus, layout.model_instances, layout.threads) == (cores, cores, 1)
    assert layout.cpus_from == "this machine's usable CPUs (os.sched_getaffinity)"


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"target": {"cpus": 16}}, (16, 1, 2)),
        ({"target": {"cpus": 16}, "instances": {"model": 4}}, (4, 4, 2)),
        ({"target": {"cpus": 8}, "instances": {"model": 1, "threads": 0}}, (1, 0, 1)),
        ({"target": {"cpus": 8}, "instances": {"threads": 2, "tokenizer": 3}}, (8, 2, 3)),
        ({"device": "gpu", "target": {"cpus": 8}}, (1, 1, 7)),
        ({"device": "gpu", "target": {"cpus": 1}}, (1, 1, 1)),
    ],
)
def test_every_choice_is_overridable(
    cls_model: Path, keys: dict[str, object], expected: tuple[int, int, int]
) -> None:
    layout = resolve_layout(spec_for(cls_model, **keys))
    assert (layout.model_instances, layout.threads, layout.tokenizer_instances) == expected
    assert CORES_PER_CPU_TOKENIZER == 8  # 16 cores: two tokenizer instances


def test_zero_threads_leaves_onnx_runtimes_default(cls_model: Path, tmp_path: Path) -> None:
    spec = spec_for(cls_model, output=tmp_path / "r", instances={"model": 1, "threads": 0})
    model, _ = _configs(generate(spec).output)
    assert "intra_op_thread_count" not in model.parameters


def test_gpu_defaults_one_instance_per_gpu_and_corpus_buckets(
    cls_model: Path, tmp_path: Path
) -> None:
    spec = spec_for(cls_model, output=tmp_path / "r", device="gpu", target={"cpus": 4})
    repo = generate(spec).output
    model, tokenizer = _configs(repo)
    assert [(g.count, g.kind) for g in model.instance_group] == [(1, KIND_GPU)]
    assert [g.count for g in tokenizer.instance_group] == [3]
    buckets = tokenizer.parameters["buckets"].string_value.split(",")
    assert len(buckets) == 3 and buckets[-1] == "64"
    none = spec_for(cls_model, output=tmp_path / "n", device="gpu", tokenizer={"bucket_count": 0})
    _, tokenizer = _configs(generate(none).output)
    assert tokenizer.parameters["buckets"].string_value == ""


def test_flags_set_the_layout(cls_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "repo"
    args = ["generate", str(cls_model), "--task", "text-classification", "--name", "cls"]
    args += ["-o", str(out), "--instances", "2", "--intra-op-threads", "auto"]
    args += ["--target-cpus", "6", "--tokenizer-instances", "2"]
    args += ["--tokenizer-max-queue-delay-us", "100"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    model, tokenizer = _configs(out)
    assert model.instance_group[0].count == 2
    assert model.parameters["intra_op_thread_count"].string_value == "3"
    assert tokenizer.instance_group[0].count == 2
    assert tokenizer.dynamic_batching.max_queue_delay_microseconds == 100


def test_bad_values_are_one_line_each(cls_model: Path) -> None:
    with pytest.raises(SpecError) as info:
        spec_for(cls_model, instances={"model": 0, "threads": "many"}, target={"cpus": 0})
    assert str(info.value).splitlines() == [
        "spec: instances.model: '0' is not valid: give auto or an integer from 1 to 64",
        "spec: instances.threads: 'many' is not valid: give auto or an integer from 0 to 1024",
        "spec: target.cpus: Input should be greater than or equal to 1",
    ]
    result = CliRunner().invoke(main, ["generate", str(cls_model), "--instances", "lots"])
    assert result.exit_code == 2
    assert "'lots' is not auto or an integer" in result.output


@pytest.mark.parametrize(
    ("keys", "buckets", "model", "tokenizer"),
    [
        ({}, (), False, True),
        ({}, (16, 64), True, True),
        ({"device": "gpu"}, (), True, True),
        ({"dynamic_batching": {"enabled": True}}, (), True, True),
        ({"dynamic_batching": {"enabled": False}}, (16, 64), False, False),
    ],
)
def test_model_batching_where_shapes_can_match(
    cls_model: Path, keys: dict[str, object], buckets: tuple[int, ...], model: bool, tokenizer: bool
) -> None:
    layout = resolve_layout(spec_for(cls_model, **keys), buckets)
    assert (layout.model_batching, layout.tokenizer_batching) == (model, tokenizer)


def test_no_batching_flag_turns_both_off(cls_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "repo"
    args = ["generate", str(cls_model), "--task", "text-classification", "--name", "cls"]
    result = CliRunner().invoke(main, [*args, "-o", str(out), "--no-dynamic-batching"])
    assert result.exit_code == 0, result.output
    model, tokenizer = _configs(out)
    assert not model.HasField("dynamic_batching") and not tokenizer.HasField("dynamic_batching")
