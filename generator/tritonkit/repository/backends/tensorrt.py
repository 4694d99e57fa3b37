"""TensorRT plans on the Triton side: the ``tensorrt_plan`` model config built from a plan's
record, CUDA graph shapes, and the plan checks ``validate`` runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from tritonclient.grpc import model_config_pb2

from tritonkit.errors import PlanBuildError
from tritonkit.model.onnx_io import onnx_io
from tritonkit.repository.backends.onnx import unbatched
from tritonkit.repository.pbtxt import (
    CudaGraph,
    DynamicBatching,
    ModelPlan,
    Tensor,
    data_type_name,
)
from tritonkit.runtime.tokenizer import TokenizerParams
from tritonkit.tensorrt.build import DEFAULT_PLAN, METADATA_FILE, PlanRecord, read_metadata
from tritonkit.tensorrt.profiles import uncovered
from tritonkit.tensorrt.versions import io_type_for, plan_loads, tensorrt_for_image


def predicted_io_types(model: ModelPlan, tensorrt_version: str) -> dict[str, str]:
    """The dtypes a plan built with `tensorrt_version` will expose for the ONNX model's tensors
    (before it is built; afterwards take them from its metadata)."""
    return {
        t.name: io_type_for(t.data_type, tensorrt_version) for t in model.inputs + model.outputs
    }


def cuda_graph_shapes(
    tokenizer: TokenizerParams, batch_sizes: Sequence[int]
) -> tuple[tuple[int, int], ...]:
    """[batch, seq] shapes worth a CUDA graph: each padded length at each batch size."""
    lengths = tokenizer.padded_lengths() if tokenizer.buckets else (tokenizer.max_length,)
    return tuple((b, s) for s in lengths for b in sorted(set(batch_sizes)))


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
    labels = "probabilities" if (model_dir / "labels.txt").is_file() else None
    onnx_model = ModelPlan(
        name=model_dir.name,
        kind="onnx",
        description=f"{onnx_path.name} (TensorRT plan)",
        max_batch_size=max_batch_size,
        inputs=tuple(unbatched(t, None) for t in inputs),
        outputs=tuple(unbatched(t, labels) for t in outputs),
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


def _version_problem(where: str, record: PlanRecord, image: str) -> str | None:
    release = tensorrt_for_image(image)
    if release is None:
        if record.triton_image == image:
            return None  # built inside the deployment's own image
        return (
            f"{where}: tritonkit does not know which TensorRT {image} runs: build the plan in "
            f"that image with tritonkit build-plan --triton-image {image}, or deploy an image "
            "listed in tritonkit.tensorrt.versions"
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
    tokenizer: TokenizerParams,
) -> list[str]:
    buckets, max_length = tokenizer.buckets, tokenizer.max_length
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
        gap = uncovered([record.profiles[p] for p in chosen], config.max_batch_size, tokenizer)
        if gap is not None:
            lengths = f"buckets {','.join(map(str, buckets))}" if buckets else "no buckets"
            problems.append(
                f"{where}: the profiles of instance_group {index} do not cover batch {gap[0]} "
                f"at sequence length {gap[1]} (max_batch_size {config.max_batch_size}, "
                f"tokenizer max_length {max_length}, {lengths}): rebuild with tritonkit "
                "build-plan for these buckets and batch size"
            )
    return problems


def plan_problems(
    model_dir: Path,
    config: model_config_pb2.ModelConfig,
    tokenizer: TokenizerParams | None,
    image: str | None,
) -> list[str]:
    """Plan files, their TensorRT version against the deployment's Triton image, their profiles
    against the tokenizer's shapes, and their I/O dtypes against the config."""
    rel = model_dir.name
    problems: list[str] = []
    if image is None:
        problems.append(
            f"{rel}: tritonkit.json beside the models has no spec.triton_image: the plan's "
            "TensorRT version cannot be checked against the Triton image; generate the "
            "repository with tritonkit generate"
        )
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
