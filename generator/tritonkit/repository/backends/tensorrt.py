"""TensorRT plans on the Triton side: the ``tensorrt_plan`` model config, CUDA graph specs, the
deferred plan (recipe + build script, built in the serving pod), and the checks ``validate``
runs on plans and recipes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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
from tritonkit.tensorrt.build import (
    DEFAULT_PLAN,
    METADATA_FILE,
    RECIPE_FILE,
    PlanRecord,
    read_metadata,
)
from tritonkit.tensorrt.profiles import Profile, uncovered
from tritonkit.tensorrt.versions import plan_loads, serving_tensorrt, version_tuple

BUILD_SCRIPT = "build_plan.py"
VERSION_COMPATIBLE_ARG = "--backend-config=tensorrt,version-compatible=true"


def graph_batch_sizes(profiles: Sequence[Profile], batch_sizes: Sequence[int]) -> tuple[int, ...]:
    """Batch sizes for CUDA graph specs without `input`: tensorrt_backend tries every spec on
    every profile's context (InitializeCudaGraph, TBE r25.10 instance_state.cc L3250-3263),
    and a spec without `input` is captured at each context's own opt shape with d[0] = batch
    (SetCudaGraphShape L3643-3663). So a batch size inside every profile's batch range gives
    one graph per profile, at its bucket length, and no failed capture (an explicit-shape spec
    would fail, with an error line, on every profile that does not hold it)."""
    return tuple(
        b for b in sorted(set(batch_sizes)) if all(p.min[0] <= b <= p.max[0] for p in profiles)
    )


def plan_tensorrt_model(
    onnx_model: ModelPlan,
    *,
    name: str,
    io_types: Mapping[str, str],
    profile_count: int,
    cc_model_filenames: Mapping[str, str] | None = None,
    cuda_graphs: bool = False,
    graph_batches: Sequence[int] = (),
) -> ModelPlan:
    """The ``tensorrt_plan`` twin of the ONNX model: same tensors (dtypes as the plan exposes
    them), batching and instances; one instance group that may use every profile, so Triton
    picks the profile matching each request's shape (TBE GetMostOptimizedProfile)."""

    def retyped(tensor: Tensor) -> Tensor:
        data_type = io_types.get(tensor.name, tensor.data_type)
        return Tensor(tensor.name, data_type, tensor.dims, tensor.label_filename)

    return ModelPlan(
        name=name,
        kind="tensorrt",
        description=onnx_model.description.replace("(ONNX Runtime)", "(TensorRT plan)"),
        max_batch_size=onnx_model.max_batch_size,
        inputs=tuple(retyped(t) for t in onnx_model.inputs),
        outputs=tuple(retyped(t) for t in onnx_model.outputs),
        instance_count=onnx_model.instance_count,
        instance_kind="KIND_GPU",
        dynamic_batching=onnx_model.dynamic_batching,
        default_model_filename=DEFAULT_PLAN,
        profiles=tuple(str(i) for i in range(profile_count)) if profile_count > 1 else (),
        cc_model_filenames=dict(cc_model_filenames or {}),
        cuda_graphs=cuda_graphs,
        cuda_graph_specs=tuple(CudaGraph(batch, {}) for batch in graph_batches),
    )


def model_plan_from_build(
    onnx_path: Path,
    model_dir: Path,
    plans: Mapping[str, PlanRecord],
    *,
    max_batch_size: int,
    instance_count: int = 1,
    dynamic_batching: DynamicBatching | None,
    graph_batches: Sequence[int] | None = None,
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
        cuda_graphs=graph_batches is not None,
        graph_batches=graph_batch_sizes(first.profiles, graph_batches or ()),
    )


def read_recipe(model_dir: Path) -> dict[str, Any] | None:
    """The model folder's build_recipe.json (None: none there or unreadable)."""
    try:
        data = json.loads((model_dir / RECIPE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _plan_present(model_dir: Path, config: model_config_pb2.ModelConfig) -> bool:
    names = {config.default_model_filename or DEFAULT_PLAN, *config.cc_model_filenames.values()}
    return any((v / n).is_file() for v in model_dir.iterdir() if v.is_dir() for n in names)


def deferred_note(model_dir: Path, config: model_config_pb2.ModelConfig) -> str | None:
    """One line for a model whose plan is still to be built in the serving pod."""
    if config.platform != "tensorrt_plan" or read_recipe(model_dir) is None:
        return None
    if _plan_present(model_dir, config):
        return None
    return (
        f"{model_dir.name}: deferred: run {model_dir.name}/{BUILD_SCRIPT} on the serving GPU "
        "in nvcr.io/nvidia/tensorrt of the Triton image's release (the Helm chart does)"
    )


def server_args(model_dir: Path) -> list[str]:
    """tritonserver flags this model folder needs: version-compatible plans load only with
    --backend-config=tensorrt,version-compatible=true (TBE r25.10 src/tensorrt.cc L168-175,
    src/loader.cc L56-63: only then setEngineHostCodeAllowed(true))."""
    recipe = read_recipe(model_dir) or {}
    records: list[PlanRecord] = []
    for version in (v for v in model_dir.iterdir() if v.is_dir() and v.name.isdigit()):
        try:
            records += read_metadata(version).values()
        except PlanBuildError:
            continue
    if recipe.get("version_compatible") or any(r.version_compatible for r in records):
        return [VERSION_COMPATIBLE_ARG]
    return []


def _version_problem(
    where: str, version: str, compatible: bool, image: str, stated: str | None
) -> str | None:
    try:
        release = serving_tensorrt(image, stated)
    except PlanBuildError as e:
        return f"{where}: {e}"
    if not plan_loads(version, release.version, compatible):
        return (
            f"{where}: built with TensorRT {version} but {image} runs TensorRT "
            f"{release.version}: rebuild the plan in nvcr.io/nvidia/tensorrt of that release"
        )
    if not compatible and len(version_tuple(version)) < len(version_tuple(release.version)):
        # 8.6.1.2 and 8.6.1.6 are different runtimes (server#5975: the plan did not load)
        return (
            f"{where}: TensorRT {version} was recorded without its build number and {image} "
            f"runs {release.version}: rebuild with {BUILD_SCRIPT} (it reads NvInferVersion.h "
            "or dpkg), or build version-compatible"
        )
    return None


def _coverage_problems(
    where: str,
    profiles: Sequence[Profile],
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
                f"profile indexes 0..{len(profiles) - 1}"
            )
            continue
        chosen = [int(p) for p in group.profile] or [0]
        missing = [p for p in chosen if p >= len(profiles)]
        if missing:
            problems.append(
                f"{where}: instance_group {index} uses profiles {missing} but the plan has "
                f"{len(profiles)}: list profiles 0..{len(profiles) - 1}"
            )
            continue
        gap = uncovered([profiles[p] for p in chosen], config.max_batch_size, tokenizer)
        if gap is not None:
            lengths = f"buckets {','.join(map(str, buckets))}" if buckets else "no buckets"
            problems.append(
                f"{where}: the profiles of instance_group {index} do not cover batch {gap[0]} "
                f"at sequence length {gap[1]} (max_batch_size {config.max_batch_size}, "
                f"tokenizer max_length {max_length}, {lengths}): rebuild with tritonkit "
                "build-plan for these buckets and batch size"
            )
    return problems


def _dtype_problems(
    rel: str, file: str, io_types: Mapping[str, str], config: model_config_pb2.ModelConfig
) -> list[str]:
    problems = []
    for kind, tensors in (("input", config.input), ("output", config.output)):
        for tensor in tensors:
            exposed = io_types.get(tensor.name)
            declared = data_type_name(tensor.data_type)
            if exposed is not None and exposed != declared:
                problems.append(
                    f"{rel}/config.pbtxt: {kind} '{tensor.name}' is {declared} but {file} "
                    f"exposes {exposed}: take the dtypes from the plan's {METADATA_FILE}"
                )
    return problems


def recipe_problems(
    model_dir: Path, config: model_config_pb2.ModelConfig, recipe: dict[str, Any],
    tokenizer: TokenizerParams | None, serving: Mapping[str, Any],
) -> list[str]:  # fmt: skip
    """A deferred model: what the pod's build needs is there and agrees with the config."""
    rel = model_dir.name
    where = f"{rel}/{RECIPE_FILE}"
    try:
        profiles = [Profile.from_dict(p) for p in recipe["profiles"]]
        onnx, io_types = str(recipe["onnx"]), dict(recipe["io_types"])
        built_for = (recipe.get("serving") or {}).get("tensorrt_version")
    except (KeyError, TypeError, ValueError) as e:
        return [f"{where}: not a tritonkit build recipe ({e}): regenerate the repository"]
    problems = [
        f"{rel}/{name}: missing (the pod builds the plan from it)"
        for name in (onnx, BUILD_SCRIPT)
        if not (model_dir / name).is_file()
    ]
    if Path(onnx).is_absolute() or ".." in Path(onnx).parts:
        problems.append(f"{where}: onnx '{onnx}' must lie inside {rel}/")
    problems += _dtype_problems(rel, RECIPE_FILE, io_types, config)
    if tokenizer is not None:
        problems += _coverage_problems(where, profiles, config, tokenizer)
    image = serving.get("image")
    if image is not None and built_for is not None:
        found = _version_problem(where, built_for, bool(recipe.get("version_compatible")),
                                 image, serving.get("tensorrt_version"))  # fmt: skip
        problems += [found] if found else []
    return problems


def plan_problems(
    model_dir: Path,
    config: model_config_pb2.ModelConfig,
    tokenizer: TokenizerParams | None,
    serving: Mapping[str, Any],
) -> list[str]:
    """Plan files, their TensorRT version against the deployment's Triton image, their profiles
    against the tokenizer's shapes, and their I/O dtypes against the config. `serving` is what
    tritonkit.json says: image, tensorrt_version (the spec's override), version_compatible."""
    rel = model_dir.name
    image = serving.get("image")
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
    recipe = read_recipe(model_dir)
    if recipe is not None and not _plan_present(model_dir, config):
        return problems + recipe_problems(model_dir, config, recipe, tokenizer, serving)
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
            if image is not None:
                found = _version_problem(where, record.tensorrt_version,
                                         record.version_compatible, image,
                                         serving.get("tensorrt_version"))  # fmt: skip
                problems += [found] if found else []
            if record.version_compatible and serving.get("version_compatible") is False:
                problems.append(
                    f"{where}: version-compatible, but tritonkit.json's spec has "
                    "tensorrt.version_compatible false, so the server is not started with "
                    f"{VERSION_COMPATIBLE_ARG} (the plan would not load): set it true"
                )
            if tokenizer is not None:
                problems += _coverage_problems(where, record.profiles, config, tokenizer)
            problems += _dtype_problems(rel, f"the plan {file}", record.io_types, config)
    return problems
