"""The sections of a deployment spec. Each is the options of one pipeline stage: the library
takes the section as it is, and the CLI derives its flags from it (`spec.fields.option`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import PlainValidator, field_validator

from tritonkit.spec.fields import Section, option
from tritonkit.tasks import Precision

Device = Literal["cpu", "gpu"]
Variant = Literal["fp32", "fp32-fused", "fp16", "int8-dynamic", "int8-static", "int8-qdq"]
TrtVariant = Literal["trt-fp16", "trt-int8"]  # TensorRT plans, built where TensorRT is
DeployVariant = Literal[
    "auto", "fp32", "fp32-fused", "fp16", "int8-dynamic", "int8-static", "int8-qdq",
    "trt-fp16", "trt-int8",
]  # fmt: skip
VARIANTS: tuple[str, ...] = get_args(Variant)
TRT_VARIANTS: tuple[str, ...] = get_args(TrtVariant)
DEPLOY_VARIANTS: tuple[str, ...] = get_args(DeployVariant)
# int8-qdq: TensorRT's int8 model (symmetric int8 Q/DQ on the unfused export), the source of
# trt-int8; not among `auto`'s candidates.
TENSORRT_INT8_VARIANT = "int8-qdq"
# The ONNX variants each device can run, slowest to fastest (`auto`'s tie-break order).
DEVICE_VARIANTS: dict[str, tuple[str, ...]] = {
    "cpu": ("fp32", "fp32-fused", "int8-dynamic", "int8-static"),
    "gpu": ("fp32", "fp32-fused", "fp16"),
}
# The precision a deployed variant serves at (`check` picks its tolerances by it).
VARIANT_PRECISION: dict[str, Precision] = {
    "fp16": "fp16",
    "trt-fp16": "fp16",
    "int8-dynamic": "int8",
    "int8-static": "int8",
    "int8-qdq": "int8",
    "trt-int8": "int8",
}
CalibrationMethod = Literal["minmax", "entropy", "percentile"]
StaticScope = Literal["layernorm-inputs", "all"]
QuantPreset = Literal["auto", "avx2", "avx512", "avx512-vnni", "arm64"]


def _positive_sorted(value: tuple[int, ...], what: str) -> tuple[int, ...]:
    if any(size <= 0 for size in value):
        raise ValueError(f"{what} must be positive integers")
    return tuple(sorted(set(value)))


class DynamicBatchingSpec(Section):
    """Triton's dynamic batcher for the model (and the tokenizer)."""

    enabled: Literal["auto"] | bool = option(
        "auto", "Dynamic batching; auto: the tokenizer always, the model on GPU or with length "
        "buckets (CPU pads each request to its own length: shapes rarely match).",
        flag="--dynamic-batching",
    )  # fmt: skip
    max_queue_delay_us: int = option(
        500, "The model's dynamic batcher delay (microseconds).", flag="--max-queue-delay-us",
        ge=0, le=10_000_000,
    )  # fmt: skip
    preferred_batch_sizes: tuple[int, ...] = option(
        (), "Preferred batch size (repeatable).", flag="--preferred-batch-size"
    )
    tokenizer_max_queue_delay_us: int = option(
        0, "The tokenizer's batcher delay (microseconds); it batches whatever is queued anyway.",
        flag="--tokenizer-max-queue-delay-us", ge=0, le=10_000_000,
    )  # fmt: skip

    @field_validator("preferred_batch_sizes")
    @classmethod
    def _positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return _positive_sorted(value, "batch sizes")


def _auto_or(low: int, high: int) -> Callable[[Any], Literal["auto"] | int]:
    """A validator for `auto` or an integer in low..high, with one message for both."""

    def check(value: Any) -> Literal["auto"] | int:
        if value == "auto":
            return "auto"
        number = value if isinstance(value, int) and not isinstance(value, bool) else None
        if isinstance(value, str) and value.strip().isdigit():
            number = int(value)
        if number is None or not low <= number <= high:
            raise ValueError(
                f"'{value}' is not valid: give auto or an integer from {low} to {high}"
            )
        return number

    return check


AutoCount = Annotated[Literal["auto"] | int, PlainValidator(_auto_or(1, 64))]
AutoThreads = Annotated[Literal["auto"] | int, PlainValidator(_auto_or(0, 1024))]
AutoBuckets = Annotated[Literal["auto"] | int, PlainValidator(_auto_or(0, 32))]


class TargetSpec(Section):
    """The machine the deployment will run on: `auto` instances and threads follow it."""

    cpus: int | None = option(
        None, "CPU cores of the target (a pod: its CPU request) [default: this machine's usable "
        "CPUs].", flag="--target-cpus", ge=1, le=1024,
    )  # fmt: skip


class InstancesSpec(Section):
    """Copies of each model Triton runs and ONNX Runtime threads; auto: from the target.

    `repository.layout` resolves `auto` (README "Fast by default")."""

    model: AutoCount = option(
        "auto", "Model instances; auto: one per target core (CPU), one per GPU (GPU).",
        flag="--instances",
    )  # fmt: skip
    tokenizer: AutoCount = option(
        "auto", "Tokenizer instances; auto: from the target's cores.",
        flag="--tokenizer-instances",
    )  # fmt: skip
    threads: AutoThreads = option(
        "auto", "ONNX Runtime intra-op threads per model instance (0: ONNX Runtime's own "
        "default); auto: target cores / model instances (CPU), 1 (GPU).",
        flag="--intra-op-threads",
    )  # fmt: skip


class ExportSpec(Section):
    """ONNX export options."""

    opset: int | None = option(None, "ONNX opset [default: the exporter's].", flag="--opset",
                               ge=11, le=23)  # fmt: skip
    atol: float = option(1e-4, "Export parity tolerance vs PyTorch.", flag="--atol", gt=0)
    onnx: Path | None = option(
        None, "Use this exported ONNX file instead of exporting.", flag="--onnx"
    )


class OptimizeSpec(Section):
    """How the optimization variants are built and gated (`tritonkit optimize`, `--variant`)."""

    variants: tuple[Variant, ...] = option(
        (), "Variants to build/choose from (repeatable) [default: every one for the device].",
        flag="--variants",
    )  # fmt: skip
    calibration_file: Path | None = option(
        None, "int8 calibration texts (.txt, .jsonl, .csv) [default: packaged sentiment texts].",
        flag="--calibration-file",
    )  # fmt: skip
    calibration_method: CalibrationMethod = option(
        "percentile", "int8-static calibration method.", flag="--calibration-method"
    )
    calibration_op_types: tuple[str, ...] = option(
        ("MatMul",), "int8-static operator types (repeatable).", flag="--calibration-op-type"
    )
    static_scope: StaticScope = option(
        "layernorm-inputs", "int8-static: only the MatMuls that read a LayerNorm output, or all.",
        flag="--static-scope",
    )  # fmt: skip
    quantization_preset: QuantPreset = option(
        "auto", "int8 weight layout; auto: from this CPU's flags.", flag="--quantization-preset"
    )
    reduce_range: bool | None = option(
        None, "7-bit int8 weights [default: the preset's].", flag="--reduce-range"
    )
    smooth_alpha: float = option(0.5, "SmoothQuant alpha (0: off).", flag="--smooth-alpha",
                                 ge=0, le=1)  # fmt: skip
    eval_file: Path | None = option(
        None, "Accuracy gate texts (.jsonl/.csv may hold labels) [default: packaged].",
        flag="--eval-file",
    )  # fmt: skip
    max_accuracy_drop: float | None = option(
        None, "Accuracy gate, points [default: per task].", flag="--max-accuracy-drop", ge=0
    )
    max_length: int | None = option(
        None, "Evaluation/calibration truncation [default: min(model's, 128)].",
        flag="--max-length", ge=8, le=8192,
    )  # fmt: skip
    threads: int | None = option(
        None, "Threads for the gate and the benchmark [default: every CPU].", flag="--threads",
        ge=1, le=1024,
    )  # fmt: skip
    variants_dir: Path | None = option(
        None, "Reuse (or keep) the variants in this folder.", flag="--variants-dir"
    )


class TokenizerSpec(Section):
    """Sequence-length buckets, so that Triton's dynamic batcher can merge requests.

    `buckets` lists them outright; otherwise `bucket_count` > 0 derives that many from the
    token lengths of `bucket_corpus` (default: the corpus shipped with tritonkit), choosing
    the set with the least padding. 0 and no buckets pads each request to its own length.
    `auto` is 0 on CPU and `GPU_BUCKET_COUNT` on GPU (the measurements and the reasoning are in
    the README, "Buckets where they pay").
    """

    buckets: tuple[int, ...] = option((), "Tokenizer length bucket (repeatable).",
                                      flag="--buckets")  # fmt: skip
    bucket_count: AutoBuckets = option(
        "auto", "Derive this many buckets from --bucket-corpus (0: none); auto: 3 on GPU, "
        "none on CPU.", flag="--bucket-count",
    )  # fmt: skip
    bucket_corpus: Path | None = option(
        None, "Texts for --bucket-count [default: the shipped corpus].", flag="--bucket-corpus"
    )

    @field_validator("buckets")
    @classmethod
    def _sorted_positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return _positive_sorted(value, "buckets")


# GPU deployments pad to corpus-derived buckets by default, CPU ones to each request's longest
# text: README "Buckets where they pay".
GPU_BUCKET_COUNT = 3


def bucket_count(section: TokenizerSpec, device: str) -> int:
    """The number of buckets to derive: `auto` resolved for the device."""
    if section.bucket_count == "auto":
        return GPU_BUCKET_COUNT if device == "gpu" else 0
    return section.bucket_count


class TensorRTSpec(Section):
    """TensorRT on GPU targets: plans (variants trt-fp16, trt-int8) or ORT's TensorRT EP."""

    precision: Literal["fp16", "int8"] = option(
        "fp16", "TensorRT precision of the accelerator.", flag="--tensorrt-precision"
    )
    workspace_mib: int = option(4096, "Builder memory-pool limit (MiB).", flag="--workspace-mib",
                                ge=1)  # fmt: skip
    timing_cache: Path | None = option(
        None, "Timing cache folder (one file per GPU and TensorRT version), reused across builds.",
        flag="--timing-cache",
    )  # fmt: skip
    tensorrt_version: str | None = option(
        None, "TensorRT the Triton image runs (e.g. 10.5.0.18, from dpkg -l 'libnvinfer*' in "
        "it), for an image tritonkit has no verified row for.", flag="--tensorrt-version",
    )  # fmt: skip
    optimization_level: int = option(3, "Builder optimization level (0-5).",
                                     flag="--optimization-level", ge=0, le=5)  # fmt: skip
    hardware_compatibility: Literal["none", "ampere+"] = option(
        "none", "ampere+: one plan for every GPU from Ampere on, somewhat slower.",
        flag="--hardware-compatibility",
    )  # fmt: skip
    version_compatible: bool = option(
        False, "Loadable by later TensorRT 1x.y (the server needs version-compatible=true).",
        flag="--version-compatible", switch=True,
    )  # fmt: skip
    per_cc: bool = option(False, "Name the plan model_sm<cc>.plan (cc_model_filenames).",
                          flag="--per-cc", switch=True)  # fmt: skip
    opt_batch_size: int | None = option(None, "Batch TensorRT tunes for [default: max].",
                                        flag="--opt-batch-size", ge=1)  # fmt: skip
    cuda_graphs: bool = option(False, "Capture CUDA graphs per bucket and batch.",
                               flag="--cuda-graphs", switch=True)  # fmt: skip
    accelerator: bool = option(
        False, "GPU: ONNX Runtime's TensorRT execution accelerator in the ONNX config.",
        flag="--tensorrt-accelerator",
    )  # fmt: skip
    engine_cache_path: str = option("/trt-cache", "Where ONNX Runtime caches TensorRT engines.")
