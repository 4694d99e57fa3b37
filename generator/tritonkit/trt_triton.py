"""TensorRT on the Triton side: the ``tensorrt_plan`` model config, ONNX Runtime's TensorRT
accelerator (the alternative that needs no prebuilt plan), tolerances for ``check``, and the
plan checks ``validate`` runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from tritonclient.grpc import model_config_pb2

from tritonkit.check import Tolerance
from tritonkit.errors import ConfigError, PlanBuildError
from tritonkit.pbtxt import (
    CudaGraph,
    DynamicBatching,
    ExecutionAccelerator,
    ModelPlan,
    Tensor,
    data_type_name,
    read_config,
)
from tritonkit.repository import onnx_io
from tritonkit.tensorrt import DEFAULT_PLAN, METADATA_FILE, PlanRecord, Precision, read_metadata
from tritonkit.trt_profiles import Profile, padded_lengths, shapes_spec, uncovered
from tritonkit.trt_versions import io_type_for, plan_loads, tensorrt_for_image

# How close a precision's outputs must stay to the PyTorch reference (`tritonkit check`).
# fp32 keeps check's defaults; fp16 rounds activations to 11 significant bits; int8 QDQ
# quantizes activations and weights, so classification may also flip borderline labels.
_TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(min_cosine=0.999, max_prob_diff=1e-3),
    "fp16": Tolerance(min_cosine=0.995, max_prob_diff=1e-2),
    "int8": Tolerance(min_cosine=0.98, max_prob_diff=5e-2),
}
_ORT_PRECISION = {"fp32": "FP32", "fp16": "FP16", "int8": "INT8"}


def precision_tolerance(precision: Precision) -> Tolerance:
    """The tolerance `tritonkit check` should apply to a model served at `precision`."""
    return _TOLERANCES[precision]


def predicted_io_types(model: ModelPlan, tensorrt_version: str) -> dict[str, str]:
    """The dtypes a plan built with `tensorrt_version` will expose for the ONNX model's tensors
    (before it is built; afterwards take them from its metadata)."""
    return {
        t.name: io_type_for(t.data_type, tensorrt_version) for t in model.inputs + model.outputs
    }


def cuda_graph_shapes(
    buckets: Sequence[int], max_length: int, batch_sizes: Sequence[int]
) -> tuple[tuple[int, int], ...]:
    """[batch, seq] shapes worth a CUDA graph: each padded length at each batch size."""
    return tuple(
        (b, s) for s in padded_lengths(buckets, max_length) for b in sorted(set(batch_sizes))
    )


def plan_tensorrt_model(
    onnx_model: ModelPlan,
    *,
    name: str,
    io_types: Mapping[str, str],
    profile_count: int,
    cc_model_filenames: Mapping[str, str] | None = None,
    cuda_graphs: bool = False,
    graph_shapes: Sequence[tuple[int, int]] = (),
) -> ModelPlan:
    """The ``tensorrt_plan`` twin of the ONNX model: same tensors (dtypes as the plan exposes
    them), batching and instances; one instance group that may use every profile, so Triton
    picks the profile matching each request's shape."""

    def retyped(tensor: Tensor) -> Tensor:
        data_type = io_types.get(tensor.name, tensor.data_type)
        return Tensor(tensor.name, data_type, tensor.dims, tensor.label_filename)

    inputs = tuple(retyped(t) for t in onnx_model.inputs)
    return ModelPlan(
        name=name,
        kind="tensorrt",
        description=onnx_model.description.replace("(ONNX Runtime)", "(TensorRT plan)"),
        max_batch_size=onnx_model.max_batch_size,
        inputs=inputs,
        outputs=tuple(retyped(t) for t in onnx_model.outputs),
        instance_count=onnx_model.instance_count,
        instance_kind="KIND_GPU",
        dynamic_batching=onnx_model.dynamic_batching,
        default_model_filename=DEFAULT_PLAN,
        profiles=tuple(str(i) for i in range(profile_count)) if profile_count > 1 else (),
        cc_model_filenames=dict(cc_model_filenames or {}),
        cuda_graphs=cuda_graphs,
        cuda_graph_specs=tuple(
            CudaGraph(batch, {t.name: (seq,) for t in inputs}) for batch, seq in graph_shapes
        ),
    )


def model_plan_from_build(
    onnx_path: Path,
    model_dir: Path,
    plans: Mapping[str, PlanRecord],
    *,
    max_batch_size: int,
    instance_count: int = 1,
    dynamic_batching: DynamicBatching | None,
    graph_shapes: Sequence[tuple[int, int]] | None = None,
) -> ModelPlan:
    """The config of a model folder whose plans `build-plan` recorded (all must agree on
    profiles and I/O dtypes: Triton applies one config to every compute capability)."""
    records = list(plans.values())
    first = records[0]
    for record in records[1:]:
        if record.profiles != first.profiles or record.io_types != first.io_types:
            raise PlanBuildError(
                f"{model_dir}: plans {first.file} and {record.file} differ in profiles or I/O "
                "dtypes: rebuild them with the same options in the same Triton image"
            )
    inputs, outputs = onnx_io(onnx_path)
    labels = "labels.txt" if (model_dir / "labels.txt").is_file() else None
    onnx_model = ModelPlan(
        name=model_dir.name,
        kind="onnx",
        description=f"{onnx_path.name} (TensorRT plan)",
        max_batch_size=max_batch_size,
        inputs=tuple(Tensor(t.name, t.data_type, t.dims[1:]) for t in inputs),
        outputs=tuple(
            Tensor(t.name, t.data_type, t.dims[1:], labels if t.name == "probabilities" else None)
            for t in outputs
        ),
        instance_count=instance_count,
        dynamic_batching=dynamic_batching,
    )
    return plan_tensorrt_model(
        onnx_model,
        name=model_dir.name,
        io_types=first.io_types,
        profile_count=len(first.profiles),
        cc_model_filenames={
            r.compute_capability: r.file for r in records if r.file != DEFAULT_PLAN
        },
        cuda_graphs=graph_shapes is not None,
        graph_shapes=graph_shapes or (),
    )


def onnx_trt_accelerator(
    precision: Precision,
    inputs: Sequence[str],
    max_batch_size: int,
    max_length: int,
    *,
    workspace_bytes: int = 4 << 30,
    engine_cache_path: str | None = None,
    optimization_level: int | None = None,
) -> ExecutionAccelerator:
    """ONNX Runtime's TensorRT execution provider for an ``onnxruntime_onnx`` model.

    ONNX Runtime builds the engines itself when the model loads (minutes for a BERT); with an
    engine cache on a persistent volume only the first start of each GPU type pays that. The
    explicit profile spans every shape the tokenizer can send, so no request triggers a rebuild
    (without it ONNX Runtime rebuilds whenever a shape leaves the range seen so far). int8 needs
    the QDQ model (explicit quantization); no calibration table is used.
    """
    full = Profile((1, 1), (max_batch_size, max_length), (max_batch_size, max_length))
    parameters = {
        "precision_mode": _ORT_PRECISION[precision],
        "max_workspace_size_bytes": str(workspace_bytes),
        "trt_profile_min_shapes": shapes_spec(inputs, full.min),
        "trt_profile_opt_shapes": shapes_spec(inputs, full.opt),
        "trt_profile_max_shapes": shapes_spec(inputs, full.max),
    }
    if engine_cache_path is not None:
        parameters.update(
            trt_engine_cache_enable="1",
            trt_engine_cache_path=engine_cache_path,
            trt_timing_cache_enable="1",
            trt_timing_cache_path=engine_cache_path,
        )
    if optimization_level is not None:
        parameters["trt_builder_optimization_level"] = str(optimization_level)
    return ExecutionAccelerator("tensorrt", parameters)


def _deployment_image(repo: Path) -> str | None:
    try:
        image = json.loads((repo / "tritonkit.json").read_text(encoding="utf-8"))["spec"][
            "triton_image"
        ]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return image if isinstance(image, str) else None


def _tokenizer_shapes(repo: Path, model: str) -> tuple[tuple[int, ...], int] | None:
    """(buckets, max_length) of the tokenizer that feeds `model` through an ensemble."""
    configs: dict[str, model_config_pb2.ModelConfig] = {}
    for folder in repo.iterdir():
        if (folder / "config.pbtxt").is_file():
            try:
                configs[folder.name] = read_config(folder / "config.pbtxt")
            except ConfigError:
                continue
    for config in configs.values():
        steps = [step.model_name for step in config.ensemble_scheduling.step]
        if config.platform != "ensemble" or model not in steps:
            continue
        for step in steps:
            if step not in configs or "max_length" not in configs[step].parameters:
                continue
            params = configs[step].parameters
            buckets = params["buckets"].string_value if "buckets" in params else ""
            try:
                return (
                    tuple(int(b) for b in buckets.split(",") if b.strip()),
                    int(params["max_length"].string_value),
                )
            except ValueError:
                continue  # not integers: not a tokenizer tritonkit wrote
    return None


def _version_problem(where: str, record: PlanRecord, image: str) -> str | None:
    release = tensorrt_for_image(image)
    if release is None:
        if record.triton_image == image:
            return None  # built inside the deployment's own image
        return (
            f"{where}: tritonkit does not know which TensorRT {image} runs: build the plan in "
            f"that image with tritonkit build-plan --triton-image {image}, or deploy an image "
            "listed in tritonkit.trt_versions"
        )
    if plan_loads(record.tensorrt_version, release.version, record.version_compatible):
        return None
    return (
        f"{where}: built with TensorRT {record.tensorrt_version} but {image} runs TensorRT "
        f"{release.version}: rebuild the plan in {image} (tritonkit build-plan)"
    )


def _coverage_problems(
    where: str,
    record: PlanRecord,
    config: model_config_pb2.ModelConfig,
    tokenizer: tuple[tuple[int, ...], int],
) -> list[str]:
    buckets, max_length = tokenizer
    problems = []
    groups = list(config.instance_group) or [model_config_pb2.ModelInstanceGroup()]
    for index, group in enumerate(groups):  # no group: Triton's default uses profile 0
        if not all(p.isdigit() for p in group.profile):
            problems.append(
                f"{where}: instance_group {index} profile {list(group.profile)} must list "
                f"profile indexes 0..{len(record.profiles) - 1}"
            )
            continue
        chosen = [int(p) for p in group.profile] or [0]
        missing = [p for p in chosen if p >= len(record.profiles)]
        if missing:
            problems.append(
                f"{where}: instance_group {index} uses profiles {missing} but the plan has "
                f"{len(record.profiles)}: list profiles 0..{len(record.profiles) - 1}"
            )
            continue
        gap = uncovered(
            [record.profiles[p] for p in chosen], config.max_batch_size, buckets, max_length
        )
        if gap is not None:
            lengths = f"buckets {','.join(map(str, buckets))}" if buckets else "no buckets"
            problems.append(
                f"{where}: the profiles of instance_group {index} do not cover batch {gap[0]} "
                f"at sequence length {gap[1]} (max_batch_size {config.max_batch_size}, "
                f"tokenizer max_length {max_length}, {lengths}): rebuild with tritonkit "
                "build-plan for these buckets and batch size"
            )
    return problems


def plan_problems(model_dir: Path, config: model_config_pb2.ModelConfig) -> list[str]:
    """Plan files, their TensorRT version against the deployment's Triton image, their profiles
    against the tokenizer's shapes, and their I/O dtypes against the config."""
    rel = model_dir.name
    problems: list[str] = []
    image = _deployment_image(model_dir.parent)
    if image is None:
        problems.append(
            f"{rel}: tritonkit.json beside the models has no spec.triton_image: the plan's "
            "TensorRT version cannot be checked against the Triton image; generate the "
            "repository with tritonkit generate"
        )
    tokenizer = _tokenizer_shapes(model_dir.parent, rel)
    if tokenizer is None:
        problems.append(
            f"{rel}: no ensemble feeds it from a tokenizer with a max_length parameter: the "
            "plan's profiles cannot be checked against the shapes it will receive"
        )
    files = list(dict.fromkeys(config.cc_model_filenames.values()))
    default = config.default_model_filename or DEFAULT_PLAN
    for version in sorted(p for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()):
        present = [f for f in (default, *files) if (version / f).is_file()]
        required = files or [default]
        for missing in sorted(set(required) - set(present)):
            problems.append(f"{rel}/{version.name}/{missing}: plan file missing")
        if not present:
            continue
        try:
            records = read_metadata(version)
        except PlanBuildError as e:
            problems.append(f"{rel}/{version.name}/{METADATA_FILE}: {str(e).split(': ', 1)[1]}")
            continue
        for file in present:
            where = f"{rel}/{version.name}/{file}"
            record = records.get(file)
            if record is None:
                problems.append(f"{where}: not recorded in {METADATA_FILE}: rebuild the plan")
                continue
            if image is not None and (found := _version_problem(where, record, image)):
                problems.append(found)
            if tokenizer is not None:
                problems += _coverage_problems(where, record, config, tokenizer)
            for kind, tensors in (("input", config.input), ("output", config.output)):
                for tensor in tensors:
                    exposed = record.io_types.get(tensor.name)
                    declared = data_type_name(tensor.data_type)
                    if exposed is not None and exposed != declared:
                        problems.append(
                            f"{rel}/config.pbtxt: {kind} '{tensor.name}' is {declared} but the "
                            f"plan {file} exposes {exposed}: take the dtypes from "
                            f"{version.name}/{METADATA_FILE}"
                        )
    return problems
