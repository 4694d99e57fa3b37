"""The deployment spec: one YAML file (or the same keys as CLI flags) describing a deployment.

Pydantic validates it with ``extra="forbid"`` and every problem is reported at once as
``field: message`` lines. A flag given on the command line overrides the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tritonkit.errors import SpecError

TASKS = ("text-classification", "feature-extraction", "token-classification")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
# Triton 2.51.0 is the NGC release 24.10; the Dockerfile and the Helm chart default to it.
DEFAULT_TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:24.10-py3"
DEFAULT_NAME = "minilm"
Task = Literal["text-classification", "feature-extraction", "token-classification"]
DEFAULT_TASK: Task = "feature-extraction"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DynamicBatchingSpec(_Strict):
    """Triton's dynamic batcher for the ONNX model (and the tokenizer)."""

    enabled: bool = True
    max_queue_delay_us: int = Field(default=500, ge=0, le=10_000_000)
    preferred_batch_sizes: tuple[int, ...] = ()

    @field_validator("preferred_batch_sizes")
    @classmethod
    def _positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(size <= 0 for size in value):
            raise ValueError("batch sizes must be positive integers")
        return tuple(sorted(set(value)))


class InstancesSpec(_Strict):
    """How many copies of each model Triton runs (instance_group count)."""

    model: int = Field(default=1, ge=1, le=64)
    tokenizer: int = Field(default=1, ge=1, le=64)


class CheckSpec(_Strict):
    """What `tritonkit check` sends and how close it must be to the PyTorch reference."""

    texts: tuple[str, ...] = ()
    file: Path | None = None
    max_prob_diff: float = Field(default=1e-3, gt=0)
    min_cosine: float = Field(default=0.999, gt=0, le=1)


class ExportSpec(_Strict):
    """ONNX export options."""

    opset: int | None = Field(default=None, ge=11, le=23)
    atol: float = Field(default=1e-4, gt=0)
    onnx: Path | None = None


Variant = Literal["fp32", "fp32-fused", "fp16", "int8-dynamic", "int8-static"]
TRT_VARIANTS = ("trt-fp16", "trt-int8")  # TensorRT plans, built where TensorRT is (GPU nodes)


class OptimizeSpec(_Strict):
    """How the optimization variants are built and gated (`tritonkit optimize`, `--variant`)."""

    variants: tuple[Variant, ...] = ()  # empty: every variant for the device
    calibration_file: Path | None = None  # default: the packaged sentiment training texts
    calibration_method: Literal["minmax", "entropy", "percentile"] = "percentile"
    calibration_op_types: tuple[str, ...] = ("MatMul",)
    static_scope: Literal["layernorm-inputs", "all"] = "layernorm-inputs"
    quantization_preset: Literal["auto", "avx2", "avx512", "avx512-vnni", "arm64"] = "auto"
    reduce_range: bool | None = None  # default: the preset's
    smooth_alpha: float = Field(default=0.5, ge=0, le=1)
    eval_file: Path | None = None  # default: the packaged evaluation texts
    max_accuracy_drop: float | None = Field(default=None, ge=0)  # points; default per task
    threads: int | None = Field(default=None, ge=1, le=1024)
    variants_dir: Path | None = None  # reuse (or keep) the variants here


class TokenizerSpec(_Strict):
    """Sequence-length buckets, so that Triton's dynamic batcher can merge requests.

    `buckets` lists them outright; otherwise `bucket_count` > 0 derives that many from the
    token lengths of `bucket_corpus` (default: the corpus shipped with tritonkit), choosing
    the set with the least padding. 0 and no buckets pads each request to its own length.
    """

    buckets: tuple[int, ...] = ()
    bucket_count: int = Field(default=0, ge=0, le=32)
    bucket_corpus: Path | None = None

    @field_validator("buckets")
    @classmethod
    def _sorted_positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(size <= 0 for size in value):
            raise ValueError("buckets must be positive token counts")
        return tuple(sorted(set(value)))


class TensorRTSpec(_Strict):
    """TensorRT on GPU targets: plans (variants trt-fp16, trt-int8) or ORT's TensorRT EP."""

    precision: Literal["fp16", "int8"] = "fp16"
    workspace_mib: int = Field(default=4096, ge=1)
    timing_cache: Path | None = None
    optimization_level: int = Field(default=3, ge=0, le=5)
    hardware_compatibility: Literal["none", "ampere+"] = "none"
    version_compatible: bool = False
    per_cc: bool = False
    opt_batch_size: int | None = Field(default=None, ge=1)
    cuda_graphs: bool = False
    accelerator: bool = False  # ONNX model + ONNX Runtime's TensorRT execution accelerator
    engine_cache_path: str = "/trt-cache"


class DeploymentSpec(_Strict):
    """Everything `tritonkit generate` needs; every generate flag maps to one key here."""

    model: Path
    task: Task = DEFAULT_TASK
    name: str = DEFAULT_NAME
    output: Path = Path("model_repository")
    max_sequence_length: int | None = Field(default=None, ge=8, le=8192)
    max_batch_size: int = Field(default=32, ge=1, le=4096)
    dynamic_batching: DynamicBatchingSpec = DynamicBatchingSpec()
    instances: InstancesSpec = InstancesSpec()
    device: Literal["cpu", "gpu"] = "cpu"
    triton_image: str = DEFAULT_TRITON_IMAGE
    export: ExportSpec = ExportSpec()
    variant: str = "fp32"  # a Variant, trt-fp16/trt-int8 (GPU), or "auto"
    optimize: OptimizeSpec = OptimizeSpec()
    tokenizer: TokenizerSpec = TokenizerSpec()
    tensorrt: TensorRTSpec = TensorRTSpec()
    check: CheckSpec = CheckSpec()
    loadtest: dict[str, Any] = Field(default_factory=dict)  # `tritonkit loadtest` defaults
    force: bool = False

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(
                f"'{value}' is not a valid deployment name: use letters, digits, '_', '-', '.'"
                " (no spaces or path separators), starting with a letter or digit"
            )
        return value

    @field_validator("variant")
    @classmethod
    def _known_variant(cls, value: str) -> str:
        choices = ("auto", *get_args(Variant), *TRT_VARIANTS)
        if value not in choices:
            raise ValueError(f"variant '{value}' does not exist: choose {', '.join(choices)}")
        return value

    @field_validator("loadtest")
    @classmethod
    def _valid_loadtest(cls, value: dict[str, Any]) -> dict[str, Any]:
        from tritonkit.loadtest_spec import LoadtestSpec

        try:
            LoadtestSpec.model_validate(value)
        except ValidationError as e:
            item = e.errors()[0]
            loc = ".".join(str(part) for part in item["loc"])
            message = item["msg"]
            if item["type"] == "extra_forbidden":
                message = "unknown key: remove it or check its spelling"
            raise ValueError(f"{loc}: {message}") from None
        return value

    @property
    def tokenizer_name(self) -> str:
        return f"{self.name}_tokenizer"

    @property
    def onnx_name(self) -> str:
        return f"{self.name}_onnx"


def _format_errors(error: ValidationError, source: str) -> str:
    lines = []
    for item in error.errors():
        loc = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key: remove it or check its spelling"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        lines.append(f"{source}: {loc}: {message}")
    return "\n".join(lines)


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Paths in a spec file are relative to the file's folder, not to the working directory."""
    for key in ("model", "output"):
        if isinstance(data.get(key), str):
            data[key] = str((base / data[key]).resolve())
    for section, key in (
        ("check", "file"),
        ("export", "onnx"),
        ("optimize", "calibration_file"),
        ("optimize", "eval_file"),
        ("optimize", "variants_dir"),
        ("tokenizer", "bucket_corpus"),
        ("tensorrt", "timing_cache"),
    ):
        block = data.get(section)
        if isinstance(block, dict) and isinstance(block.get(key), str):
            block[key] = str((base / block[key]).resolve())


def read_spec_file(path: Path) -> dict[str, Any]:
    """Read a YAML spec into a plain dict (validated later, after flags are merged)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: spec file not found: check the --spec path") from None
    except OSError as e:
        raise SpecError(f"{path}: cannot read spec file: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SpecError(f"{path}: not valid YAML{where}: fix the syntax") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(f"{path}: the spec must be a YAML mapping of keys to values")
    _resolve_paths(data, path.resolve().parent)
    return data


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        elif isinstance(value, Mapping):
            merged[key] = _merge({}, value)
        else:
            merged[key] = value
    return merged


def build_spec(
    spec_file: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> DeploymentSpec:
    """Spec file (optional) + flag overrides (None means 'not given') -> validated spec."""
    data = read_spec_file(spec_file) if spec_file is not None else {}
    data = _merge(data, overrides or {})
    source = str(spec_file) if spec_file is not None else "spec"
    try:
        return DeploymentSpec.model_validate(data)
    except ValidationError as e:
        raise SpecError(_format_errors(e, source)) from None


def spec_to_yaml(spec: DeploymentSpec) -> str:
    """The spec as YAML, e.g. to record in a generated repository."""
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
