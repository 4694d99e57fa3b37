import pytest
from google.protobuf import json_format

from tritonkit.errors import ConfigError
from tritonkit.repository.pbtxt import (
    DynamicBatching,
    EnsemblePlan,
    EnsembleStep,
    ModelPlan,
    Tensor,
    parse_config,
    render_config,
)

ONNX = ModelPlan(
    name="m_onnx",
    kind="onnx",
    description="test",
    max_batch_size=16,
    inputs=(
        Tensor("input_ids", "TYPE_INT64", (-1,)),
        Tensor("attention_mask", "TYPE_INT64", (-1,)),
    ),
    outputs=(Tensor("probabilities", "TYPE_FP32", (2,), "labels.txt"),),
    instance_count=2,
    instance_kind="KIND_GPU",
    dynamic_batching=DynamicBatching(250, (4, 8)),
    parameters={"intra_op_thread_count": "1"},
)


def as_dict(text: str) -> dict:
    return json_format.MessageToDict(parse_config(text, "t"), preserving_proto_field_name=True)


def test_onnx_config_round_trip() -> None:
    config = as_dict(render_config(ONNX))
    assert config["name"] == "m_onnx"
    assert config["platform"] == "onnxruntime_onnx"
    assert config["max_batch_size"] == 16
    assert config["default_model_filename"] == "model.onnx"
    assert config["input"] == [
        {"name": "input_ids", "data_type": "TYPE_INT64", "dims": ["-1"]},
        {"name": "attention_mask", "data_type": "TYPE_INT64", "dims": ["-1"]},
    ]
    assert config["output"] == [
        {
            "name": "probabilities",
            "data_type": "TYPE_FP32",
            "dims": ["2"],
            "label_filename": "labels.txt",
        }
    ]
    assert config["instance_group"] == [{"count": 2, "kind": "KIND_GPU"}]
    assert config["dynamic_batching"] == {
        "preferred_batch_size": [4, 8],
        "max_queue_delay_microseconds": "250",
    }
    assert config["parameters"] == {"intra_op_thread_count": {"string_value": "1"}}


def test_python_config_without_batching() -> None:
    plan = ModelPlan(
        name="tok",
        kind="python",
        description="t",
        max_batch_size=8,
        inputs=(Tensor("TEXT", "TYPE_STRING", (1,)),),
        outputs=(Tensor("offsets", "TYPE_INT64", (-1, 2)),),
    )
    config = as_dict(render_config(plan))
    assert config["backend"] == "python"
    assert "dynamic_batching" not in config
    assert config["output"][0]["dims"] == ["-1", "2"]
    assert config["instance_group"] == [{"count": 1, "kind": "KIND_CPU"}]


def test_ensemble_config() -> None:
    plan = EnsemblePlan(
        name="e",
        description="d",
        max_batch_size=8,
        inputs=(Tensor("TEXT", "TYPE_STRING", (1,)),),
        outputs=(Tensor("EMBEDDINGS", "TYPE_FP32", (384,)),),
        steps=(
            EnsembleStep("tok", {"TEXT": "TEXT"}, {"input_ids": "ids"}),
            EnsembleStep("m", {"input_ids": "ids"}, {"embeddings": "EMBEDDINGS"}),
        ),
    )
    config = as_dict(render_config(plan))
    assert config["platform"] == "ensemble"
    steps = config["ensemble_scheduling"]["step"]
    assert steps[0] == {
        "model_name": "tok",
        "model_version": "-1",
        "input_map": {"TEXT": "TEXT"},
        "output_map": {"input_ids": "ids"},
    }
    assert steps[1]["output_map"] == {"embeddings": "EMBEDDINGS"}


def test_bad_enum_fails_at_render_time() -> None:
    plan = ModelPlan(
        name="bad",
        kind="onnx",
        description="d",
        max_batch_size=1,
        inputs=(Tensor("x", "TYPE_FLOAT32", (1,)),),
        outputs=(Tensor("y", "TYPE_FP32", (1,)),),
    )
    with pytest.raises(ConfigError, match=r"^bad/config.pbtxt: .*TYPE_FLOAT32"):
        render_config(plan)


def test_unknown_field_fails_parse() -> None:
    with pytest.raises(ConfigError, match=r"^x/config.pbtxt: .*no_such_field"):
        parse_config('name: "x"\nno_such_field: 1\n', "x/config.pbtxt")
