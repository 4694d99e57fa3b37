"""Triton model configs as data, rendered with Jinja2 and parsed back through Triton's protobuf.

Nothing is written that `model_config_pb2.ModelConfig` does not accept: an unknown field or a
bad enum fails at generation time, never at server start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jinja2
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from tritonkit import __version__
from tritonkit.errors import ConfigError
from tritonkit.resources import data_dir

ModelConfig = model_config_pb2.ModelConfig


@dataclass(frozen=True)
class Tensor:
    name: str
    data_type: str  # a Triton DataType enum name, e.g. "TYPE_INT64"
    dims: tuple[int, ...]
    label_filename: str | None = None


@dataclass(frozen=True)
class DynamicBatching:
    max_queue_delay_us: int = 500
    preferred_batch_sizes: tuple[int, ...] = ()


@dataclass(frozen=True)
class ExecutionAccelerator:
    """An ONNX Runtime GPU execution accelerator (e.g. "tensorrt") and its string parameters."""

    name: str
    parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CudaGraph:
    """One CUDA graph Triton's TensorRT backend captures: a batch size and each input's dims."""

    batch_size: int
    input_dims: dict[str, tuple[int, ...]]


@dataclass(frozen=True)
class ModelPlan:
    """One composing model (ONNX Runtime, TensorRT plan or Python backend) of the deployment."""

    name: str
    kind: str  # "onnx" | "python" | "tensorrt"
    description: str
    max_batch_size: int
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    instance_count: int = 1
    instance_kind: str = "KIND_CPU"
    dynamic_batching: DynamicBatching | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    default_model_filename: str = "model.onnx"
    # TensorRT plans: the optimization profiles the instance group may use (Triton picks one
    # per request by input shape), one plan per compute capability, CUDA graphs.
    profiles: tuple[str, ...] = ()
    cc_model_filenames: dict[str, str] = field(default_factory=dict)
    cuda_graphs: bool = False
    cuda_graph_specs: tuple[CudaGraph, ...] = ()
    # ONNX Runtime: GPU execution accelerators (the TensorRT execution provider).
    gpu_accelerators: tuple[ExecutionAccelerator, ...] = ()


@dataclass(frozen=True)
class EnsembleStep:
    model_name: str
    input_map: dict[str, str]  # step model's input name -> ensemble tensor
    output_map: dict[str, str]  # step model's output name -> ensemble tensor


@dataclass(frozen=True)
class EnsemblePlan:
    name: str
    description: str
    max_batch_size: int
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    steps: tuple[EnsembleStep, ...]


_TEMPLATES = {
    "onnx": "onnx_model.pbtxt.j2",
    "python": "python_model.pbtxt.j2",
    "tensorrt": "tensorrt_plan.pbtxt.j2",
}


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The one Jinja environment: strict about undefined names, keeps trailing newlines."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=False,
    )


def parse_config(text: str, source: str) -> model_config_pb2.ModelConfig:
    """Parse config.pbtxt text with Triton's own protobuf; `source` names it in errors."""
    config = model_config_pb2.ModelConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as e:
        raise ConfigError(f"{source}: {e}") from e
    return config


def render_config(plan: ModelPlan | EnsemblePlan) -> str:
    """Render a plan's config.pbtxt and prove it parses as a Triton ModelConfig."""
    template = "ensemble.pbtxt.j2" if isinstance(plan, EnsemblePlan) else _TEMPLATES[plan.kind]
    text = environment().get_template(template).render(model=plan, version=__version__)
    text = text.rstrip() + "\n"
    config = parse_config(text, f"{plan.name}/config.pbtxt")
    if config.name != plan.name:
        raise ConfigError(f"{plan.name}/config.pbtxt: rendered name '{config.name}' differs")
    return text


def read_config(path: Path) -> model_config_pb2.ModelConfig:
    """Read and parse a config.pbtxt from disk."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    return parse_config(text, str(path))


def data_type_name(value: int) -> str:
    return str(model_config_pb2.DataType.Name(value))  # type: ignore[attr-defined]
