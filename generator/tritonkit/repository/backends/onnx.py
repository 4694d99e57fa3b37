"""The ONNX model of a deployment on Triton's ONNX Runtime backend (`onnxruntime_onnx`), and
ONNX Runtime's TensorRT execution accelerator (the GPU path that needs no prebuilt plan)."""

from __future__ import annotations

from collections.abc import Sequence

from tritonkit.errors import RepositoryError
from tritonkit.model.onnx_io import TOKEN_INPUTS, GraphTensor
from tritonkit.repository.layout import ServingLayout
from tritonkit.repository.pbtxt import DynamicBatching, ExecutionAccelerator, ModelPlan, Tensor
from tritonkit.spec import DeploymentSpec
from tritonkit.tasks import Precision, get_task
from tritonkit.tensorrt.profiles import Profile, shapes_spec
from tritonkit.tensorrt.versions import release_of

_ORT_PRECISION = {"fp32": "FP32", "fp16": "FP16", "int8": "INT8"}
LABELS_FILE = "labels.txt"
THREADS = "intra_op_thread_count"  # the ONNX Runtime backend's parameter (0 or absent: ORT's)


def check_graph(where: str, inputs: Sequence[GraphTensor], outputs: Sequence[GraphTensor]) -> None:
    """The graph tritonkit serves: every tensor has a dynamic batch axis, every input is one
    the tokenizer produces."""
    for tensor in (*inputs, *outputs):
        if not tensor.dims or tensor.dims[0] != -1:
            raise RepositoryError(
                f"{where}: tensor '{tensor.name}' has no dynamic batch axis: "
                "re-export with `tritonkit export` (dynamic batch and sequence axes)"
            )
    unknown = [t.name for t in inputs if t.name not in TOKEN_INPUTS]
    if unknown:
        raise RepositoryError(
            f"{where}: inputs {unknown} are not tokenizer outputs {list(TOKEN_INPUTS)}"
        )


def unbatched(tensor: GraphTensor, label_output: str | None) -> Tensor:
    label = LABELS_FILE if tensor.name == label_output else None
    return Tensor(tensor.name, tensor.data_type, tensor.dims[1:], label)


def dynamic_batching(spec: DeploymentSpec, layout: ServingLayout) -> DynamicBatching | None:
    if not layout.model_batching:
        return None
    section = spec.dynamic_batching
    return DynamicBatching(section.max_queue_delay_us, section.preferred_batch_sizes)


def thread_parameters(threads: int) -> dict[str, str]:
    """The backend parameter for `threads` intra-op threads; none for ONNX Runtime's default."""
    return {THREADS: str(threads)} if threads > 0 else {}


def onnx_model_plan(
    spec: DeploymentSpec,
    name: str,
    inputs: Sequence[GraphTensor],
    outputs: Sequence[GraphTensor],
    max_length: int,
    layout: ServingLayout,
    whole_graph: bool = True,
) -> ModelPlan:
    """The `onnxruntime_onnx` config of the deployment's model; `whole_graph`: every operator is
    ai.onnx, so TensorRT can take the graph as one subgraph (see `onnx_trt_accelerator`)."""
    label_output = get_task(spec.task).label_output
    return ModelPlan(
        name=name,
        kind="onnx",
        description=f"{spec.task} model exported from {spec.model.name} (ONNX Runtime)",
        max_batch_size=spec.max_batch_size,
        inputs=tuple(unbatched(t, None) for t in inputs),
        outputs=tuple(unbatched(t, label_output) for t in outputs),
        instance_count=layout.model_instances,
        instance_kind="KIND_GPU" if spec.device == "gpu" else "KIND_CPU",
        dynamic_batching=dynamic_batching(spec, layout),
        parameters=thread_parameters(layout.threads),
        gpu_accelerators=_accelerators(spec, [t.name for t in inputs], max_length, whole_graph),
    )


# onnxruntime_backend src/onnxruntime.cc ModelState::LoadModel (r25.10 L460-742): one branch per
# key, and an unknown key fails the model load ("unknown parameter ... is provided for TensorRT
# Execution Accelerator", L701-708). These six are accepted by every branch from r23.12 on;
# the rest only from r24.04 (commit 72189f9, "[TensorRT EP] Enable more trt options (#237)").
ORT_TRT_KEYS_R2312 = frozenset({
    "precision_mode", "max_workspace_size_bytes", "int8_calibration_table_name",
    "int8_use_native_calibration_table", "trt_engine_cache_enable", "trt_engine_cache_path",
})  # fmt: skip
ORT_TRT_KEYS_R2404 = ORT_TRT_KEYS_R2312 | {
    "trt_max_partition_iterations", "trt_min_subgraph_size", "trt_dla_enable", "trt_dla_core",
    "trt_engine_cache_prefix", "trt_dump_subgraphs", "trt_force_sequential_engine_build",
    "trt_context_memory_sharing_enable", "trt_layer_norm_fp32_fallback",
    "trt_timing_cache_enable", "trt_timing_cache_path", "trt_force_timing_cache",
    "trt_detailed_build_log", "trt_build_heuristics_enable", "trt_sparsity_enable",
    "trt_builder_optimization_level", "trt_auxiliary_streams", "trt_tactic_sources",
    "trt_extra_plugin_lib_paths", "trt_profile_min_shapes", "trt_profile_opt_shapes",
    "trt_profile_max_shapes", "trt_cuda_graph_enable", "trt_dump_ep_context_model",
    "trt_ep_context_file_path", "trt_ep_context_embed_mode",
}  # fmt: skip


def accelerator_keys(image: str) -> frozenset[str]:
    """The parameter keys the image's onnxruntime_backend accepts. A tag that names no YY.MM
    release gets the six every checked branch accepts (the conservative set, never a guess);
    a release before 23.12 was not checked and is refused."""
    release = release_of(image)
    if release is None:
        return ORT_TRT_KEYS_R2312
    if release < (23, 12):
        raise RepositoryError(
            f"tensorrt.accelerator: {image}: onnxruntime_backend before r23.12 was not checked "
            "for its TensorRT parameters: use a Triton image from 23.12 on"
        )
    return ORT_TRT_KEYS_R2404 if release >= (24, 4) else ORT_TRT_KEYS_R2312


def _accelerators(
    spec: DeploymentSpec, inputs: list[str], max_length: int, whole_graph: bool
) -> tuple[ExecutionAccelerator, ...]:
    if not spec.tensorrt.accelerator:
        return ()
    return (
        onnx_trt_accelerator(
            spec.tensorrt.precision,
            inputs,
            spec.max_batch_size,
            max_length,
            workspace_bytes=spec.tensorrt.workspace_mib << 20,
            engine_cache_path=f"{spec.tensorrt.engine_cache_path.rstrip('/')}/{spec.name}",
            optimization_level=spec.tensorrt.optimization_level,
            keys=accelerator_keys(spec.triton_image),
            explicit_profiles=whole_graph,
        ),
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
    keys: frozenset[str] = ORT_TRT_KEYS_R2404,
    explicit_profiles: bool = True,
) -> ExecutionAccelerator:
    """ONNX Runtime's TensorRT execution provider for an ``onnxruntime_onnx`` model, with only
    the parameters `keys` allows (the image's onnxruntime_backend).

    ONNX Runtime builds the engines itself when the model loads; with an engine cache on a
    persistent volume only the first start of each GPU type pays that. The explicit profile
    spans every shape the tokenizer can send, so no request triggers a rebuild. It is given
    only for a graph TensorRT takes whole (`explicit_profiles`): ORT applies the profile
    strings by tensor name to every TensorRT subgraph, and a partitioned graph's subgraphs have
    internal dynamic inputs the strings do not name, which fails session creation ("User needs
    to provide all the dynamic shape inputs with associated profiles", microsoft/onnxruntime
    #17007). int8 needs the QDQ model (int8-qdq); no calibration table is used.
    """
    full = Profile((1, 1), (max_batch_size, max_length), (max_batch_size, max_length))
    parameters = {
        "precision_mode": _ORT_PRECISION[precision],
        "max_workspace_size_bytes": str(workspace_bytes),
    }
    if explicit_profiles:
        parameters.update(
            trt_profile_min_shapes=shapes_spec(inputs, full.min),
            trt_profile_opt_shapes=shapes_spec(inputs, full.opt),
            trt_profile_max_shapes=shapes_spec(inputs, full.max),
        )
    if engine_cache_path is not None:
        parameters.update(
            trt_engine_cache_enable="1",
            trt_engine_cache_path=engine_cache_path,
            trt_timing_cache_enable="1",
            trt_timing_cache_path=engine_cache_path,
        )
    if optimization_level is not None:
        parameters["trt_builder_optimization_level"] = str(optimization_level)
    return ExecutionAccelerator("tensorrt", {k: v for k, v in parameters.items() if k in keys})
