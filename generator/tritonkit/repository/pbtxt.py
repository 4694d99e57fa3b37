"""Triton model configs as data, rendered with Jinja2 and parsed back through Triton's protobuf.

Nothing is written that `model_config_pb2.ModelConfig` does not accept: an unknown field or a
bad enum fails at generation time, never at server start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jinja2
from google.protobuf import text_encoding, text_format
from tritonclient.grpc import model_config_pb2

from tritonkit import __version__
from tritonkit.errors import ConfigError
from tritonkit.util.resources import data_dir

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


def pbtxt_string(value: object) -> str:
    """A protobuf text-format string literal, quotes included: every quote, backslash and
    control character escaped, so no value can end the string or start a new field."""
    escaped: str = text_encoding.CEscape(str(value), as_utf8=True)
    return f'"{escaped}"'


def one_line(value: object) -> str:
    """Text for a `#` comment or a Markdown cell: control characters (newlines) become spaces,
    so a name can never end the comment and become live config."""
    return "".join(" " if not ch.isprintable() else ch for ch in str(value))


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The one Jinja environment: strict about undefined names, keeps trailing newlines; every
    value that reaches a config goes through `pbtxt_string` or `one_line`."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=False,
    )
    env.filters["pbtxt"] = pbtxt_string
    env.filters["one_line"] = one_line
    return env


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


_KINDS = {"onnxruntime_onnx": "onnx", "tensorrt_plan": "tensorrt"}
_BACKEND_KINDS = {"onnxruntime": "onnx", "python": "python", "tensorrt": "tensorrt"}


def _tensor(t: model_config_pb2.ModelInput | model_config_pb2.ModelOutput) -> Tensor:
    label = getattr(t, "label_filename", "") or None
    return Tensor(t.name, data_type_name(t.data_type), tuple(t.dims), label)


def _description(text: str, name: str) -> str:
    first = text.splitlines()[0] if text else ""
    return first[2:].strip() if first.startswith("# ") else name


def plan_from_config(
    config: model_config_pb2.ModelConfig, text: str = ""
) -> ModelPlan | EnsemblePlan:
    """The plan a config was rendered from (the inverse of `render_config`), so that a
    repository can be changed as data and rendered again through the templates."""
    description = _description(text, config.name)
    inputs = tuple(_tensor(t) for t in config.input)
    outputs = tuple(_tensor(t) for t in config.output)
    if config.platform == "ensemble":
        steps = tuple(
            EnsembleStep(s.model_name, dict(s.input_map), dict(s.output_map))
            for s in config.ensemble_scheduling.step
        )
        return EnsemblePlan(config.name, description, config.max_batch_size, inputs, outputs, steps)
    kind = _KINDS.get(config.platform) or _BACKEND_KINDS.get(config.backend)
    if kind is None:
        raise ConfigError(
            f"{config.name}/config.pbtxt: platform '{config.platform}' / backend "
            f"'{config.backend}' is not one tritonkit renders"
        )
    groups = list(config.instance_group)
    batching = None
    if config.HasField("dynamic_batching"):
        db = config.dynamic_batching
        batching = DynamicBatching(db.max_queue_delay_microseconds, tuple(db.preferred_batch_size))
    cuda = config.optimization.cuda
    accelerators = config.optimization.execution_accelerators.gpu_execution_accelerator
    return ModelPlan(
        name=config.name,
        kind=kind,
        description=description,
        max_batch_size=config.max_batch_size,
        inputs=inputs,
        outputs=outputs,
        instance_count=sum(g.count or 1 for g in groups) or 1,
        instance_kind=model_config_pb2.ModelInstanceGroup.Kind.Name(groups[0].kind)
        if groups
        else "KIND_CPU",
        dynamic_batching=batching,
        parameters={k: v.string_value for k, v in config.parameters.items()},
        default_model_filename=config.default_model_filename or "model.onnx",
        profiles=tuple(groups[0].profile) if groups else (),
        cc_model_filenames=dict(config.cc_model_filenames),
        cuda_graphs=cuda.graphs,
        cuda_graph_specs=tuple(
            CudaGraph(g.batch_size, {k: tuple(v.dim) for k, v in g.input.items()})
            for g in cuda.graph_spec
        ),
        gpu_accelerators=tuple(
            ExecutionAccelerator(a.name, dict(a.parameters)) for a in accelerators
        ),
    )


def read_plan(path: Path) -> ModelPlan | EnsemblePlan:
    """A config.pbtxt on disk as the plan that renders it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    return plan_from_config(parse_config(text, str(path)), text)
