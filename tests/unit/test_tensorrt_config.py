"""The tensorrt_plan config and ONNX Runtime's TensorRT accelerator, rendered and parsed with
Triton's protobuf; the plan checks `validate` runs on a repository holding a (fake) plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from tests.unit.trt_fakes import token_onnx
from tritonkit.errors import PlanBuildError
from tritonkit.repository.backends.onnx import onnx_trt_accelerator
from tritonkit.repository.backends.tensorrt import (
    graph_batch_sizes,
    model_plan_from_build,
    plan_problems,
    plan_tensorrt_model,
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
from tritonkit.tensorrt.versions import io_type_for


def predicted_io_types(model: ModelPlan, tensorrt_version: str) -> dict[str, str]:
    return {
        t.name: io_type_for(t.data_type, tensorrt_version) for t in model.inputs + model.outputs
    }


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
    """Specs carry a batch size only: tensorrt_backend tries each spec on every profile's
    context (InitializeCudaGraph, TBE r25.10 instance_state.cc L3250-3263) and captures a spec
    without `input` at that context's own opt shape (SetCudaGraphShape L3643-3663): one graph
    per profile at its bucket length; an explicit [batch, seq] spec fails on the others."""
    batches = graph_batch_sizes(PROFILES, (8, 1, 8, 17))
    assert batches == (1, 8)  # 17 lies outside every profile's batch range 1..16
    model = trt_model(
        cc_model_filenames={"8.6": "model_sm86.plan", "9.0": "model_sm90.plan"},
        cuda_graphs=True,
        graph_batches=batches,
    )
    config = as_dict(render_config(model))
    assert config["cc_model_filenames"] == {"8.6": "model_sm86.plan", "9.0": "model_sm90.plan"}
    assert config["optimization"] == {
        "cuda": {"graphs": True, "graph_spec": [{"batch_size": 1}, {"batch_size": 8}]}
    }
    narrow = (PROFILES[0], type(PROFILES[0])((4, 17), (8, 64), (16, 64)))
    assert graph_batch_sizes(narrow, (1, 8)) == (8,)  # batch 1 is outside the second profile


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


IMAGE = "nvcr.io/nvidia/tritonserver:24.12-py3"  # a verified row: TensorRT 10.7.0.23


def record(**kwargs: Any) -> PlanRecord:
    values: dict[str, Any] = {
        "file": "model.plan",
        "tensorrt_version": "10.7.0.23",
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
    tensorrt_version: str | None = None,
    version_compatible: bool | None = None,
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
        tensorrt: dict[str, Any] = {"tensorrt_version": tensorrt_version}
        if version_compatible is not None:
            tensorrt["version_compatible"] = version_compatible
        spec = {"triton_image": image, "tensorrt": tensorrt}
        (root / "tritonkit.json").write_text(json.dumps({"spec": spec}))
    return root


def test_a_matching_plan_validates(tmp_path: Path) -> None:
    assert validate_repository(write_repository(tmp_path)) == []


def test_version_mismatch_with_the_image(tmp_path: Path) -> None:
    repo = write_repository(tmp_path, records=(record(tensorrt_version="10.6.0.26"),))
    assert validate_repository(repo) == [
        f"m_trt/1/model.plan: built with TensorRT 10.6.0.26 but {IMAGE} runs TensorRT "
        "10.7.0.23: rebuild the plan in nvcr.io/nvidia/tensorrt of that release"
    ]


def test_the_build_number_counts(tmp_path: Path) -> None:
    """8.6.1.2 and 8.6.1.6 are different runtimes (server#5975: the plan did not load), so a
    record without the build number cannot be confirmed."""
    repo = write_repository(tmp_path, records=(record(tensorrt_version="10.7.0"),))
    assert validate_repository(repo) == [
        f"m_trt/1/model.plan: TensorRT 10.7.0 was recorded without its build number and {IMAGE} "
        "runs 10.7.0.23: rebuild with build_plan.py (it reads NvInferVersion.h or dpkg), or "
        "build version-compatible"
    ]


def test_version_compatible_plan_loads_on_a_later_release(tmp_path: Path) -> None:
    older = record(tensorrt_version="10.4.0.26", version_compatible=True)
    assert validate_repository(write_repository(tmp_path, records=(older,))) == []


def test_unknown_and_unverified_images_need_the_stated_version(tmp_path: Path) -> None:
    """No guessing: an image without a verified row is an error unless the spec states its
    TensorRT (tensorrt.tensorrt_version); a plan claiming to be built in it does not count."""
    image = "nvcr.io/nvidia/tritonserver:99.01-py3"
    inside = record(triton_image=image)
    repo = write_repository(tmp_path / "a", image=image, records=(inside,))
    assert validate_repository(repo) == [
        f"m_trt/1/model.plan: {image}: tritonkit does not know which TensorRT this image runs "
        "(it is not in tritonkit.tensorrt.versions): read it in the image (dpkg -l "
        "'libnvinfer*') and set tensorrt.tensorrt_version (flag --tensorrt-version), or deploy "
        "an image with a verified row"
    ]
    unverified = "nvcr.io/nvidia/tritonserver:24.10-py3"
    repo = write_repository(tmp_path / "b", image=unverified, records=(record(),))
    assert "(its row (10.5.0.18) is unverified)" in validate_repository(repo)[0]
    stated = write_repository(tmp_path / "c", image=image, records=(record(),),
                              tensorrt_version="10.7.0.23")  # fmt: skip
    assert validate_repository(stated) == []


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
    assert plan_problems(repo / "m_trt", config, TOKENIZER, {"image": IMAGE}) == [
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
    assert plan_problems(repo / "m_trt", config, TOKENIZER, {"image": IMAGE}) == [
        "m_trt/1/model.plan: instance_group 0 profile ['fast'] must list profile indexes 0..2"
    ]


def test_plan_dtypes_must_match_the_config(tmp_path: Path) -> None:
    int32 = record(io_types=predicted_io_types(ONNX_MODEL, "8.6.3"))
    problems = validate_repository(write_repository(tmp_path, records=(int32,)))
    assert problems == [
        f"m_trt/config.pbtxt: input '{name}' is TYPE_INT64 but the plan model.plan exposes "
        "TYPE_INT32: take the dtypes from the plan's tensorrt.json"
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
        graph_batches=None,
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


def test_a_version_compatible_plan_needs_the_server_flag(tmp_path: Path) -> None:
    """tensorrt_backend deserializes it only with --backend-config=tensorrt,version-compatible=
    true (TBE r25.10 src/tensorrt.cc L168-175, src/loader.cc L56-63). The chart passes it when
    the spec's tensorrt.version_compatible is true, so a VC plan under a spec saying false is
    an error, and `serve` adds the flag from the plan's record."""
    from tritonkit.pipeline.serve import repository_server_args
    from tritonkit.repository.validate import repository_notes

    plan = record(version_compatible=True)
    repo = write_repository(tmp_path / "a", records=(plan,), version_compatible=False)
    assert validate_repository(repo) == [
        "m_trt/1/model.plan: version-compatible, but tritonkit.json's spec has "
        "tensorrt.version_compatible false, so the server is not started with "
        "--backend-config=tensorrt,version-compatible=true (the plan would not load): set it true"
    ]
    repo = write_repository(tmp_path / "b", records=(plan,), version_compatible=True)
    assert validate_repository(repo) == []
    assert repository_server_args(repo) == ["--backend-config=tensorrt,version-compatible=true"]
    assert repository_notes(repo) == [
        "tritonserver needs --backend-config=tensorrt,version-compatible=true (tritonkit serve "
        "and the chart add it)"
    ]
    assert repository_server_args(write_repository(tmp_path / "c")) == []


def test_serve_starts_tritonserver_with_the_flag(tmp_path: Path, monkeypatch: Any) -> None:
    from tritonkit.pipeline import serve
    from tritonkit.server.install import ServerInstall
    from tritonkit.spec import ServeSpec

    fake = ServerInstall(tmp_path, tmp_path / "tritonserver", tmp_path / "backends", None, ())
    monkeypatch.setattr(serve, "find_server", lambda *a, **k: fake)
    plan = record(version_compatible=True)
    repo = write_repository(tmp_path / "r", records=(plan,), version_compatible=True)
    command = serve.prepare_server(repo, ServeSpec(), None, lambda _: None).command()
    assert "--backend-config=tensorrt,version-compatible=true" in command
    plain = serve.prepare_server(write_repository(tmp_path / "p"), ServeSpec(), None, print)
    assert not [a for a in plain.command() if "version-compatible" in a]


def _deferred(root: Path, **changes: Any) -> Path:
    """A repository whose plan is still to be built: recipe, script, ONNX, no plan."""
    repo = write_repository(root, records=())
    folder = repo / "m_trt"
    token_onnx(folder / "onnx" / "model.onnx")
    (folder / "build_plan.py").write_text("")
    data = {
        "format": 1, "onnx": "onnx/model.onnx", "version_dir": "1", "plan_file": "model.plan",
        "precision": "fp16", "inputs": ["input_ids", "attention_mask"],
        "outputs": ["embeddings"], "io_types": predicted_io_types(ONNX_MODEL, "10.7.0.23"),
        "profiles": [p.as_dict() for p in PROFILES], "version_compatible": False,
        "serving": {"triton_image": IMAGE, "tensorrt_version": "10.7.0.23"},
    } | changes  # fmt: skip
    (folder / "build_recipe.json").write_text(json.dumps(data))
    return repo


def test_a_deferred_repository_is_valid_and_says_so(tmp_path: Path) -> None:
    from tritonkit.repository.validate import repository_notes

    repo = _deferred(tmp_path / "a")
    assert validate_repository(repo) == []
    assert repository_notes(repo) == [
        "m_trt: deferred: run m_trt/build_plan.py on the serving GPU in nvcr.io/nvidia/tensorrt "
        "of the Triton image's release (the Helm chart does)"
    ]
    (repo / "m_trt" / "build_plan.py").unlink()
    assert validate_repository(repo) == ["m_trt/build_plan.py: missing (the pod builds the plan "
                                         "from it)"]  # fmt: skip
    wrong = _deferred(tmp_path / "b", io_types=predicted_io_types(ONNX_MODEL, "8.6.3.1"),
                      profiles=[PROFILES[0].as_dict()],
                      serving={"triton_image": IMAGE, "tensorrt_version": "10.6.0.26"})  # fmt: skip
    assert validate_repository(wrong) == [
        "m_trt/config.pbtxt: input 'input_ids' is TYPE_INT64 but build_recipe.json exposes "
        "TYPE_INT32: take the dtypes from the plan's tensorrt.json",
        "m_trt/config.pbtxt: input 'attention_mask' is TYPE_INT64 but build_recipe.json exposes "
        "TYPE_INT32: take the dtypes from the plan's tensorrt.json",
        "m_trt/build_recipe.json: instance_group 0 uses profiles [1, 2] but the plan has 1: "
        "list profiles 0..0",
        f"m_trt/build_recipe.json: built with TensorRT 10.6.0.26 but {IMAGE} runs TensorRT "
        "10.7.0.23: rebuild the plan in nvcr.io/nvidia/tensorrt of that release",
    ]


@pytest.mark.parametrize(
    ("image", "timing_cache", "profiles"),
    [
        ("nvcr.io/nvidia/tritonserver:24.03-py3", False, False),  # r24.01-r24.03: six keys
        ("nvcr.io/nvidia/tritonserver:24.04-py3", True, True),  # r24.04: commit 72189f9
        ("nvcr.io/nvidia/tritonserver:25.10-py3", True, True),
        ("registry.example.com/triton:custom", False, False),  # no YY.MM: the six keys
    ],
)
def test_accelerator_parameters_follow_the_image(
    image: str, timing_cache: bool, profiles: bool
) -> None:
    """onnxruntime_backend fails the load on an unknown key (src/onnxruntime.cc r25.10
    L701-708); the trt_* keys beyond the cache pair exist only from r24.04."""
    from tritonkit.repository.backends.onnx import accelerator_keys

    accelerator = onnx_trt_accelerator(
        "fp16", ("input_ids",), 8, 64, engine_cache_path="/c", optimization_level=3,
        keys=accelerator_keys(image),
    )  # fmt: skip
    keys = set(accelerator.parameters)
    assert {"precision_mode", "max_workspace_size_bytes", "trt_engine_cache_path"} <= keys
    assert ("trt_timing_cache_path" in keys) is timing_cache
    assert ("trt_profile_min_shapes" in keys) is profiles
    assert ("trt_builder_optimization_level" in keys) is timing_cache


def test_explicit_profiles_only_for_a_graph_tensorrt_takes_whole() -> None:
    """ORT applies trt_profile_* by name to every TensorRT subgraph and fails the session when
    a partitioned subgraph's dynamic input has none (microsoft/onnxruntime#17007)."""
    whole = onnx_trt_accelerator("fp16", ("input_ids",), 8, 64)
    split = onnx_trt_accelerator("fp16", ("input_ids",), 8, 64, explicit_profiles=False)
    assert "trt_profile_opt_shapes" in whole.parameters
    assert not [k for k in split.parameters if k.startswith("trt_profile")]
