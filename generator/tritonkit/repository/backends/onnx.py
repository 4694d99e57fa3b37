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
) -> ModelPlan:
    """The `onnxruntime_onnx` config of the deployment's model."""
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
        gpu_accelerators=_accelerators(spec, [t.name for t in inputs], max_length),
    )


def _accelerators(
    spec: DeploymentSpec, inputs: list[str], max_length: int
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
