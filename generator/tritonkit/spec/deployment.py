"""The deployment spec: one YAML file (or the same keys as flags) describing a deployment."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import field_validator, model_validator

from tritonkit.spec.fields import Section, option
from tritonkit.spec.sections import (
    TENSORRT_INT8_VARIANT,
    TRT_VARIANTS,
    DeployVariant,
    Device,
    DynamicBatchingSpec,
    ExportSpec,
    InstancesSpec,
    OptimizeSpec,
    TargetSpec,
    TensorRTSpec,
    TokenizerSpec,
)
from tritonkit.spec.serving import (
    DEFAULT_NAME,
    CheckSpec,
    KServeSpec,
    LoadtestSpec,
    ServeSpec,
    TuneSpec,
)
from tritonkit.tasks import DEFAULT_TASK, TaskName

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
NAME_RULE = (
    "use letters, digits, '_', '-', '.' (no spaces or path separators), starting with a letter "
    "or digit"
)
# Triton 2.51.0 is the NGC release 24.10; the Dockerfile and the Helm chart default to it.
DEFAULT_TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:24.10-py3"


def valid_name(value: str) -> str:
    """A deployment or model name: it becomes folder names and config.pbtxt strings."""
    if not NAME_PATTERN.fullmatch(value):
        shown = value.encode("unicode_escape").decode("ascii")
        raise ValueError(f"'{shown}' is not a valid deployment name: {NAME_RULE}")
    return value


class DeploymentSpec(Section):
    """Everything `tritonkit generate` needs; every generate flag maps to one key here."""

    model: Path = option(..., "Hugging Face model folder.")
    task: TaskName = option(DEFAULT_TASK, "Task.", flag="--task")
    name: str = option(DEFAULT_NAME, "Deployment (ensemble) name.", flag="--name")
    output: Path = option(Path("model_repository"), "Repository folder.", flag="--output",
                          short="-o")  # fmt: skip
    max_sequence_length: int | None = option(
        None, "Truncate longer texts [default: the model's maximum].",
        flag="--max-sequence-length", ge=8, le=8192,
    )  # fmt: skip
    max_batch_size: int = option(32, "max_batch_size of every model.", flag="--max-batch-size",
                                 ge=1, le=4096)  # fmt: skip
    dynamic_batching: DynamicBatchingSpec = DynamicBatchingSpec()
    instances: InstancesSpec = InstancesSpec()
    device: Device = option("cpu", "Instance kind of the target.", flag="--device")
    target: TargetSpec = TargetSpec()
    triton_image: str = option(
        DEFAULT_TRITON_IMAGE, "Triton image for the generated Dockerfile.", flag="--triton-image"
    )
    export: ExportSpec = ExportSpec()
    variant: DeployVariant = option(
        "fp32", "Model variant; auto: the fastest that passes the accuracy gate; trt-*: a "
        "TensorRT plan, built where TensorRT is (GPU node).", flag="--variant",
    )  # fmt: skip
    optimize: OptimizeSpec = OptimizeSpec()
    tokenizer: TokenizerSpec = TokenizerSpec()
    tensorrt: TensorRTSpec = TensorRTSpec()
    serve: ServeSpec = ServeSpec()
    check: CheckSpec = CheckSpec()
    loadtest: LoadtestSpec = LoadtestSpec()
    tune: TuneSpec = TuneSpec()
    kserve: KServeSpec = KServeSpec()
    force: bool = option(False, "Replace an existing output folder that tritonkit wrote.",
                         flag="--force", switch=True)  # fmt: skip

    _name = field_validator("name")(valid_name)

    @field_validator("triton_image")
    @classmethod
    def _image(cls, value: str) -> str:
        from tritonkit.spec.images import check_image_reference

        return check_image_reference(value)

    @model_validator(mode="before")
    @classmethod
    def _aim_at_this_deployment(cls, data: Any) -> Any:
        return cls.section_defaults(data)

    @staticmethod
    def section_defaults(data: Any) -> Any:
        """The check, loadtest and tune sections aim at this deployment unless they say
        otherwise (a section written as a scalar is left for validation to report)."""
        if not isinstance(data, dict):
            return data
        defaults = {
            "check": {"name": data.get("name")},
            "loadtest": {"name": data.get("name"), "model_dir": data.get("model")},
            "tune": {"name": data.get("name")},
        }
        for key, values in defaults.items():
            section = data.get(key, {})
            if not isinstance(section, dict):
                continue
            given = {k: v for k, v in values.items() if isinstance(v, str | Path)}
            data = {**data, key: {**given, **section}}
        return data

    @model_validator(mode="after")
    def _cross_field(self) -> DeploymentSpec:
        problems = cross_field_problems(self)
        if problems:
            raise ValueError("\n".join(f"{loc}: {message}" for loc, message in problems))
        return self

    @property
    def tokenizer_name(self) -> str:
        from tritonkit.spec.names import tokenizer_model_name

        return tokenizer_model_name(self.name)

    @property
    def model_name(self) -> str:
        """The composing model the tokenizer feeds: NAME_onnx, or NAME_trt for a plan."""
        from tritonkit.spec.names import model_name

        return model_name(self.name, "tensorrt" if self.variant in TRT_VARIANTS else "onnx")


def cross_field_problems(spec: DeploymentSpec) -> list[tuple[str, str]]:
    """Rules between keys, all reported at once before any work starts."""
    problems: list[tuple[str, str]] = []
    too_big = [b for b in spec.dynamic_batching.preferred_batch_sizes if b > spec.max_batch_size]
    if too_big:
        problems.append((
            "dynamic_batching.preferred_batch_sizes",
            f"{too_big} exceed max_batch_size {spec.max_batch_size}: lower them or raise "
            "max_batch_size",
        ))  # fmt: skip
    if spec.export.onnx is not None and spec.variant != "fp32":
        problems.append((
            "export.onnx",
            f"a given ONNX file and variant {spec.variant} exclude each other: variants are built "
            "from the model folder; drop one of them",
        ))  # fmt: skip
    if spec.variant in TRT_VARIANTS and spec.device != "gpu":
        problems.append((
            "variant", f"{spec.variant}: TensorRT plans are for GPU targets: set device: gpu"
        ))  # fmt: skip
    version = spec.tensorrt.tensorrt_version
    if version is not None and not re.fullmatch(r"\d+\.\d+\.\d+(\.\d+)?", version):
        problems.append(("tensorrt.tensorrt_version", f"'{version}': use X.Y.Z.B, e.g. 10.5.0.18"))
    if spec.tensorrt.accelerator and spec.device != "gpu":
        problems.append((
            "tensorrt.accelerator", "ONNX Runtime's TensorRT accelerator needs device: gpu"
        ))  # fmt: skip
    if spec.device == "gpu":
        chosen = (spec.variant, *spec.optimize.variants)
        int8 = [v for v in chosen if v.startswith("int8") and v != TENSORRT_INT8_VARIANT]
        if int8:
            problems.append((
                "variant" if spec.variant in int8 else "optimize.variants",
                f"{', '.join(dict.fromkeys(int8))} run on CPU only (ONNX Runtime's integer "
                "kernels): choose another variant for device: gpu",
            ))  # fmt: skip
    return problems
