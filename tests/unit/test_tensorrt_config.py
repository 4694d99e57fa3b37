"""The tensorrt_plan config and ONNX Runtime's TensorRT accelerator, rendered and parsed with
Triton's protobuf; the plan checks `validate` runs on a repository holding a (fake) plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from tests.unit.test_tensorrt_build import token_onnx
from tritonkit.errors import PlanBuildError
from tritonkit.repository.backends.onnx import onnx_trt_accelerator
from tritonkit.repository.backends.tensorrt import (
    cuda_graph_shapes,
    model_plan_from_build,
    plan_problems,
    plan_tensorrt_model,
    predicted_io_types,
)
from tritonkit.repository.pbtxt import (
    DynamicBatching,
    EnsemblePlan,
    EnsembleStep,
    ModelPlan,
    Tensor,
    environment,
    parse_config,
    read_config,
    render_config,
)
from tritonkit.repository.validate import validate_repository
from tritonkit.runtime.tokenizer import TokenizerParams
from tritonkit.tasks import PRECISION_TOLERANCES, Tolerance
from tritonkit.tensorrt.build import PlanRecord, read_metadata, write_metadata
from tritonkit.tensorrt.profiles import plan_profiles

ONNX_MODEL = ModelPlan(
    name="m_onnx",
    kind="onnx",
    description="feature-extraction model exported from m (ONNX Runtime)",
    max_batch_size=16,
    inputs=(
        Tensor("input_ids", "TYPE_INT64", (-1,)),
        Tensor("attention_mask", "TYPE_INT64", (-1,)),
    ),
    outputs=(Tensor("embeddings", "TYPE_FP32", (384,)),),
    instance_count=2,
    instance_kind="KIND_GPU",
    dynamic_batching=DynamicBatching(250, (4, 8)),
)
BUCKETS = (16, 64)
TOKENIZER = TokenizerParams(max_length=128, buckets=BUCKETS)
PROFILES = plan_profiles(TOKENIZER, max_batch_size=16, opt_batch_size=8)


def as_dict(text: str) -> dict[str, Any]:
    config = parse_config(text, "t")
    return json_format.MessageToDict(config, preserving_proto_field_name=True)


def trt_model(**kwargs: Any) -> ModelPlan:
    values: dict[str, Any] = {
        "name": "m_trt",
        "io_types": predicted_io_types(ONNX_MODEL, "10.5.0"),
        "profile_count": len(PROFILES),
        **kwargs,
    }
    return plan_tensorrt_model(ONNX_MODEL, **values)


def test_tensorrt_plan_config_round_trip() -> None:
    config = as_dict(render_config(trt_model()))
    assert config == {
        "name": "m_trt",
        "platform": "tensorrt_plan",
        "max_batch_size": 16,
        "default_model_filename": "model.plan",
        "input": [
            {"name": "input_ids", "data_type": "TYPE_INT64", "dims": ["-1"]},
            {"name": "attention_mask", "data_type": "TYPE_INT64", "dims": ["-1"]},
        ],
        "output": [{"name": "embeddings", "data_type": "TYPE_FP32", "dims": ["384"]}],
        "instance_group": [{"count": 2, "kind": "KIND_GPU", "profile": ["0", "1", "2"]}],
        "dynamic_batching": {
            "preferred_batch_size": [4, 8],
            "max_queue_delay_microseconds": "250",
        },
    }


def test_single_profile_plan_uses_triton_default_profile() -> None:
    config = as_dict(render_config(trt_model(profile_count=1)))
    assert config["instance_group"] == [{"count": 2, "kind": "KIND_GPU"}]


def test_tensorrt_8_plan_declares_int32_inputs() -> None:
    model = trt_model(io_types=predicted_io_types(ONNX_MODEL, "8.6.3"))
    assert [t.data_type for t in model.inputs] == ["TYPE_INT32", "TYPE_INT32"]
    assert model.outputs[0].data_type == "TYPE_FP32"


def test_cc_model_filenames_and_cuda_graphs() -> None:
    shapes = cuda_graph_shapes(TOKENIZER, (1, 8, 8))
    assert shapes == ((1, 16), (8, 16), (1, 64), (8, 64), (1, 128), (8, 128))
    model = trt_model(
        cc_model_filenames={"8.6": "model_sm86.plan", "9.0": "model_sm90.plan"},
        cuda_graphs=True,
        graph_shapes=shapes[:2],
    )
    config = as_dict(render_config(model))
    assert config["cc_model_filenames"] == {"8.6": "model_sm86.plan", "9.0": "model_sm90.plan"}
    assert config["optimization"] == {
        "cuda": {
            "graphs": True,
            "graph_spec": [
                {
                    "batch_size": 1,
                    "input": {"input_ids": {"dim": ["16"]}, "attention_mask": {"dim": ["16"]}},
                },
                {
                    "batch_size": 8,
                    "input": {"input_ids": {"dim": ["16"]}, "attention_mask": {"dim": ["16"]}},
                },
            ],
        }
    }


def test_onnx_runtime_tensorrt_accelerator() -> None:
    accelerator = onnx_trt_accelerator(
        "fp16",
        ("input_ids", "attention_mask"),
        max_batch_size=16,
        max_length=128,
        workspace_bytes=1 << 30,
        engine_cache_path="/cache/trt/m",
        optimization_level=3,
    )
    template = environment().from_string(
        '{%- import "_macros.j2" as m -%}\nname: "m_onnx"\nplatform: "onnxruntime_onnx"\n'
        "{{- m.execution_accelerators(accelerators) }}\n"
    )
    config = as_dict(template.render(accelerators=(accelerator,)))
    cache = "/cache/trt/m"
    assert config["optimization"] == {
        "execution_accelerators": {
            "gpu_execution_accelerator": [
                {
                    "name": "tensorrt",
                    "parameters": {
                        "precision_mode": "FP16",
                        "max_workspace_size_bytes": "1073741824",
                        "trt_profile_min_shapes": "input_ids:1x1,attention_mask:1x1",
                        "trt_profile_opt_shapes": "input_ids:16x128,attention_mask:16x128",
                        "trt_profile_max_shapes": "input_ids:16x128,attention_mask:16x128",
                        "trt_engine_cache_enable": "1",
                        "trt_engine_cache_path": cache,
                        "trt_timing_cache_enable": "1",
                        "trt_timing_cache_path": cache,
                        "trt_builder_optimization_level": "3",
                    },
                }
            ]
        }
    }
    int8 = onnx_trt_accelerator("int8", ("input_ids",), 4, 32)
    assert int8.parameters["precision_mode"] == "INT8"
    assert "trt_engine_cache_enable" not in int8.parameters


def test_existing_macros_render_nothing_new() -> None:
    """The macros other templates use are untouched: an ONNX config renders as before."""
    text = render_config(ONNX_MODEL)
    assert "optimization" not in text and "profile" not in text


def test_precision_tolerances_loosen_with_precision() -> None:
    assert PRECISION_TOLERANCES["fp32"] == Tolerance()
    fp16, int8 = PRECISION_TOLERANCES["fp16"], PRECISION_TOLERANCES["int8"]
    assert Tolerance().min_cosine > fp16.min_cosine > int8.min_cosine
    assert Tolerance().max_prob_diff < fp16.max_prob_diff < int8.max_prob_diff


IMAGE = "nvcr.io/nvidia/tritonserver:24.10-py3"


def record(**kwargs: Any) -> PlanRecord:
    values: dict[str, Any] = {
        "file": "model.plan",
        "tensorrt_version": "10.5.0.18",
        "builder": "api",
        "gpu_name": "NVIDIA L4",
        "compute_capability": "8.9",
        "precision": "fp16",
        "hardware_compatibility": "none",
        "version_compatible": False,
        "inputs": ("input_ids", "attention_mask"),
        "profiles": PROFILES,
        "io_types": predicted_io_types(ONNX_MODEL, "10.5.0"),
        **kwargs,
    }
    return PlanRecord(**values)


def write_repository(
    root: Path,
    *,
    image: str | None = IMAGE,
    model: ModelPlan | None = None,
    records: tuple[PlanRecord, ...] = (record(),),
    buckets: str = "16,64",
) -> Path:
    """A generated-style repository: ensemble -> tokenizer -> TensorRT model with fake plans."""
    trt = model or trt_model()
    tokenizer = ModelPlan(
        name="m_tokenizer",
        kind="python",
        description="tokenizer",
        max_batch_size=16,
        inputs=(Tensor("TEXT", "TYPE_STRING", (1,)),),
        outputs=tuple(Tensor(t.name, "TYPE_INT64", (-1,)) for t in ONNX_MODEL.inputs),
        parameters={"max_length": "128", "buckets": buckets},
    )
    ensemble = EnsemblePlan(
        name="m",
        description="e",
        max_batch_size=16,
        inputs=(Tensor("TEXT", "TYPE_STRING", (1,)),),
        outputs=(Tensor("EMBEDDINGS", "TYPE_FP32", (384,)),),
        steps=(
            EnsembleStep("m_tokenizer", {"TEXT": "TEXT"}, {t.name: t.name for t in trt.inputs}),
            EnsembleStep(
                trt.name, {t.name: t.name for t in trt.inputs}, {"embeddings": "EMBEDDINGS"}
            ),
        ),
    )
    for plan in (tokenizer, trt, ensemble):
        (root / plan.name / "1").mkdir(parents=True)
        (root / plan.name / "config.pbtxt").write_text(render_config(plan))
    (root / "m_tokenizer" / "1" / "model.py").write_text("")
    for entry in records:
        (root / trt.name / "1" / entry.file).write_bytes(b"FAKE-PLAN")
        write_metadata(root / trt.name / "1", entry)
    if image is not None:
        (root / "tritonkit.json").write_text(json.dumps({"spec": {"triton_image": image}}))
    return root


def test_a_matching_plan_validates(tmp_path: Path) -> None:
    assert validate_repository(write_repository(tmp_path)) == []


def test_version_mismatch_with_the_image(tmp_path: Path) -> None:
    repo = write_repository(tmp_path, records=(record(tensorrt_version="10.4.0.26"),))
    assert validate_repository(repo) == [
        "m_trt/1/model.plan: built with TensorRT 10.4.0.26 but "
        "nvcr.io/nvidia/tritonserver:24.10-py3 runs TensorRT 10.5.0: rebuild the plan in "
        "nvcr.io/nvidia/tritonserver:24.10-py3 (tritonkit build-plan)"
    ]


def test_version_compatible_plan_loads_on_a_later_release(tmp_path: Path) -> None:
    older = record(tensorrt_version="10.4.0.26", version_compatible=True)
    assert validate_repository(write_repository(tmp_path, records=(older,))) == []


def test_unknown_image_needs_a_plan_built_inside_it(tmp_path: Path) -> None:
    image = "nvcr.io/nvidia/tritonserver:99.01-py3"
    repo = write_repository(tmp_path / "a", image=image)
    assert validate_repository(repo) == [
        f"m_trt/1/model.plan: tritonkit does not know which TensorRT {image} runs: build the "
        f"plan in that image with tritonkit build-plan --triton-image {image}, or deploy an "
        "image listed in tritonkit.tensorrt.versions"
    ]
    inside = write_repository(tmp_path / "b", image=image, records=(record(triton_image=image),))
    assert validate_repository(inside) == []


def test_repository_without_tritonkit_json(tmp_path: Path) -> None:
    assert validate_repository(write_repository(tmp_path, image=None)) == [
        "m_trt: tritonkit.json beside the models has no spec.triton_image: the plan's TensorRT "
        "version cannot be checked against the Triton image; generate the repository with "
        "tritonkit generate"
    ]


def test_profiles_that_miss_a_bucket_or_the_batch(tmp_path: Path) -> None:
    repo = write_repository(tmp_path / "a", buckets="16,64,96")
    assert validate_repository(repo) == []  # 96 lies in the third profile's 65..128 range
    short = record(profiles=PROFILES[:2])
    repo = write_repository(tmp_path / "b", model=trt_model(profile_count=2), records=(short,))
    assert validate_repository(repo) == [
        "m_trt/1/model.plan: the profiles of instance_group 0 do not cover batch 1 at sequence "
        "length 128 (max_batch_size 16, tokenizer max_length 128, buckets 16,64): rebuild with "
        "tritonkit build-plan for these buckets and batch size"
    ]
    small = record(profiles=plan_profiles(TOKENIZER, 8))
    repo = write_repository(tmp_path / "c", records=(small,))
    assert validate_repository(repo)[0].startswith(
        "m_trt/1/model.plan: the profiles of instance_group 0 do not cover batch 9 at sequence "
        "length 16"
    )


def test_without_instance_group_triton_uses_profile_zero(tmp_path: Path) -> None:
    repo = write_repository(
        tmp_path, records=(record(profiles=plan_profiles(TokenizerParams(max_length=128), 8)),)
    )
    config = read_config(repo / "m_trt" / "config.pbtxt")
    del config.instance_group[:]
    assert plan_problems(repo / "m_trt", config, TOKENIZER, IMAGE) == [
        "m_trt/1/model.plan: the profiles of instance_group 0 do not cover batch 9 at sequence "
        "length 16 (max_batch_size 16, tokenizer max_length 128, buckets 16,64): rebuild with "
        "tritonkit build-plan for these buckets and batch size"
    ]


def test_instance_group_naming_a_profile_the_plan_lacks(tmp_path: Path) -> None:
    one = record(profiles=plan_profiles(TokenizerParams(max_length=128), 16))
    repo = write_repository(tmp_path, records=(one,))
    assert validate_repository(repo) == [
        "m_trt/1/model.plan: instance_group 0 uses profiles [1, 2] but the plan has 1: list "
        "profiles 0..0"
    ]


def test_instance_group_profile_that_is_not_an_index(tmp_path: Path) -> None:
    repo = write_repository(tmp_path)
    config = read_config(repo / "m_trt" / "config.pbtxt")
    config.instance_group[0].profile[:] = ["fast"]
    assert plan_problems(repo / "m_trt", config, TOKENIZER, IMAGE) == [
        "m_trt/1/model.plan: instance_group 0 profile ['fast'] must list profile indexes 0..2"
    ]


def test_plan_dtypes_must_match_the_config(tmp_path: Path) -> None:
    int32 = record(tensorrt_version="10.5.0", io_types=predicted_io_types(ONNX_MODEL, "8.6.3"))
    problems = validate_repository(write_repository(tmp_path, records=(int32,)))
    assert problems == [
        f"m_trt/config.pbtxt: input '{name}' is TYPE_INT64 but the plan model.plan exposes "
        "TYPE_INT32: take the dtypes from 1/tensorrt.json"
        for name in ("input_ids", "attention_mask")
    ]


def test_missing_plan_files_and_metadata(tmp_path: Path) -> None:
    per_cc = trt_model(cc_model_filenames={"8.9": "model_sm89.plan", "9.0": "model_sm90.plan"})
    repo = write_repository(tmp_path / "a", model=per_cc, records=(record(file="model_sm89.plan"),))
    assert validate_repository(repo) == ["m_trt/1/model_sm90.plan: plan file missing"]
    repo = write_repository(tmp_path / "b")
    (repo / "m_trt" / "1" / "tensorrt.json").unlink()
    assert validate_repository(repo) == [
        "m_trt/1/tensorrt.json: plan metadata missing: build the plan with tritonkit build-plan"
    ]
    repo = write_repository(tmp_path / "c", records=())
    assert validate_repository(repo) == ["m_trt/1/model.plan: plan file missing"]


def test_plan_not_fed_by_a_tokenizer(tmp_path: Path) -> None:
    repo = write_repository(tmp_path)
    (repo / "m" / "config.pbtxt").unlink()
    (repo / "m" / "1").rmdir()
    (repo / "m").rmdir()
    assert validate_repository(repo) == [
        "m_trt: no ensemble feeds it from a tokenizer with a max_length parameter: the plan's "
        "profiles cannot be checked against the shapes it will receive"
    ]


def test_config_from_recorded_plans(tmp_path: Path) -> None:
    onnx_path = token_onnx(tmp_path / "model.onnx")
    model_dir = tmp_path / "repo" / "m_trt"
    (model_dir / "1").mkdir(parents=True)
    (model_dir / "labels.txt").write_text("a\n")
    for cc in ("8.9", "9.0"):
        plan = f"model_sm{cc.replace('.', '')}.plan"
        write_metadata(model_dir / "1", record(file=plan, compute_capability=cc))
    model = model_plan_from_build(
        onnx_path,
        model_dir,
        read_metadata(model_dir / "1"),
        max_batch_size=16,
        dynamic_batching=None,
        graph_shapes=None,
    )
    config = as_dict(render_config(model))
    assert config["name"] == "m_trt"
    assert config["cc_model_filenames"] == {"8.9": "model_sm89.plan", "9.0": "model_sm90.plan"}
    assert config["input"][0] == {"name": "input_ids", "data_type": "TYPE_INT64", "dims": ["-1"]}
    assert config["output"] == [{"name": "embeddings", "data_type": "TYPE_FP32", "dims": ["1"]}]
    assert config["instance_group"] == [
        {"count": 1, "kind": "KIND_GPU", "profile": ["0", "1", "2"]}
    ]
    write_metadata(model_dir / "1", record(file="model.plan", profiles=PROFILES[:1]))
    with pytest.raises(PlanBuildError, match="differ in profiles or I/O dtypes"):
        model_plan_from_build(
            onnx_path,
            model_dir,
            read_metadata(model_dir / "1"),
            max_batch_size=16,
            dynamic_batching=None,
        )
