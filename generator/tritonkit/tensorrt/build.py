"""Build TensorRT plans from the exported ONNX model, where TensorRT exists.

The TensorRT Python API is used when it imports, else ``trtexec`` when it is on PATH (as in
NVIDIA's Triton and TensorRT images); both get the same options. Anywhere else (these
development machines: TensorRT's libraries cannot be installed here) building fails with
``TensorRTUnavailableError`` naming what is missing and where to build instead.

A plan is bound to the TensorRT release and GPU architecture that built it, so every build
records a metadata file, ``<version>/tensorrt.json``, beside the plan: TensorRT version, GPU
name and compute capability, precision, optimization profiles and the plan's I/O dtypes.
``tritonkit validate`` reads it (``trt_triton.plan_problems``).

Precision: ``fp16`` sets the FP16 builder flag. ``int8`` is explicit quantization only: the ONNX
model must be the QDQ model of the int8-static variant (symmetric int8 Q/DQ nodes), built with
INT8 and FP16 allowed so the layers the QDQ model leaves unquantized run in fp16. Implicit
calibration (a calibrator plus a data set at build time) is deliberately not offered: the
scales travel with the QDQ model, so the build is reproducible on any GPU node.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import onnx
from onnx import numpy_helper

from tritonkit import __version__
from tritonkit.errors import PlanBuildError, TensorRTUnavailableError
from tritonkit.model.onnx_io import TOKEN_INPUTS, onnx_io
from tritonkit.tensorrt.profiles import Profile, shapes_spec
from tritonkit.tensorrt.versions import io_type_for, plan_loads, tensorrt_for_image
from tritonkit.util.gpu import gpu_info

Precision = Literal["fp32", "fp16", "int8"]
HardwareCompatibility = Literal["none", "ampere+"]
Builder = Literal["api", "trtexec"]
METADATA_FILE = "tensorrt.json"
DEFAULT_PLAN = "model.plan"

# Builder flags per precision (trtexec --<flag>, Python API trt.BuilderFlag.<FLAG>).
_PRECISION_FLAGS: dict[str, tuple[str, ...]] = {
    "fp32": (),
    "fp16": ("fp16",),
    "int8": ("int8", "fp16"),
}
_TRT_TO_TRITON = {
    "FLOAT": "TYPE_FP32",
    "HALF": "TYPE_FP16",
    "BF16": "TYPE_BF16",
    "INT8": "TYPE_INT8",
    "UINT8": "TYPE_UINT8",
    "INT32": "TYPE_INT32",
    "INT64": "TYPE_INT64",
    "BOOL": "TYPE_BOOL",
}


@dataclass(frozen=True)
class BuildOptions:
    """Everything that decides a plan; the same for the Python API and trtexec."""

    profiles: tuple[Profile, ...]
    precision: Precision = "fp16"
    workspace_mib: int = 4096  # memory-pool (workspace) limit for tactics
    timing_cache: Path | None = None  # read before and written after each build
    optimization_level: int = 3  # builder optimization level 0..5 (TensorRT's default is 3)
    hardware_compatibility: HardwareCompatibility = "none"
    version_compatible: bool = False
    per_compute_capability: bool = False  # name the plan model_sm<cc>.plan (cc_model_filenames)
    triton_image: str | None = None  # the Triton image the plan is built in and for

    def __post_init__(self) -> None:
        if not self.profiles:
            raise PlanBuildError("build options: at least one optimization profile is needed")
        if not 0 <= self.optimization_level <= 5:
            raise PlanBuildError(
                f"builder optimization level {self.optimization_level}: use 0..5 (default 3)"
            )
        if self.workspace_mib < 1:
            raise PlanBuildError(f"workspace {self.workspace_mib} MiB: use a positive size")


@dataclass(frozen=True)
class PlanRecord:
    """What built one plan file; one entry of ``tensorrt.json``."""

    file: str
    tensorrt_version: str
    builder: Builder
    gpu_name: str
    compute_capability: str
    precision: Precision
    hardware_compatibility: HardwareCompatibility
    version_compatible: bool
    inputs: tuple[str, ...]
    profiles: tuple[Profile, ...]
    io_types: dict[str, str]
    triton_image: str | None = None
    built_at: str = field(
        default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    )

    def as_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["inputs"] = list(self.inputs)
        data["profiles"] = [p.as_dict() for p in self.profiles]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlanRecord:
        values = dict(data)
        values["inputs"] = tuple(values["inputs"])
        values["profiles"] = tuple(Profile.from_dict(p) for p in values["profiles"])
        return cls(**values)


def read_metadata(version_dir: Path) -> dict[str, PlanRecord]:
    """The plans recorded in ``<version_dir>/tensorrt.json``, by file name."""
    path = version_dir / METADATA_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {r["file"]: PlanRecord.from_json(r) for r in data["plans"]}
    except FileNotFoundError:
        raise PlanBuildError(
            f"{path}: plan metadata missing: build the plan with tritonkit build-plan"
        ) from None
    except (ValueError, KeyError, TypeError) as e:
        raise PlanBuildError(f"{path}: unreadable plan metadata ({e}): rebuild the plan") from None


def write_metadata(version_dir: Path, record: PlanRecord) -> Path:
    """Add or replace `record` in ``tensorrt.json`` (other compute capabilities' plans stay)."""
    path = version_dir / METADATA_FILE
    plans = read_metadata(version_dir) if path.exists() else {}
    plans[record.file] = record
    text = json.dumps(
        {"tritonkit": __version__, "plans": [p.as_json() for p in plans.values()]}, indent=2
    )
    _replace(path, text.encode())
    return path


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def trtexec_command(
    onnx_path: Path, plan: Path, inputs: Sequence[str], options: BuildOptions
) -> list[str]:
    """The trtexec command line for `options` (one min/opt/max triple per profile)."""
    command = ["trtexec", f"--onnx={onnx_path}", f"--saveEngine={plan}"]
    for profile in options.profiles:
        command += [
            f"--minShapes={shapes_spec(inputs, profile.min)}",
            f"--optShapes={shapes_spec(inputs, profile.opt)}",
            f"--maxShapes={shapes_spec(inputs, profile.max)}",
        ]
    command += [f"--{flag}" for flag in _PRECISION_FLAGS[options.precision]]
    command += [
        f"--memPoolSize=workspace:{options.workspace_mib}",
        f"--builderOptimizationLevel={options.optimization_level}",
    ]
    if options.timing_cache is not None:
        command.append(f"--timingCacheFile={options.timing_cache}")
    if options.hardware_compatibility != "none":
        command.append(f"--hardwareCompatibilityLevel={options.hardware_compatibility}")
    if options.version_compatible:
        command.append("--versionCompatible")
    command.append("--skipInference")
    return command


def tensorrt_module() -> ModuleType | None:
    """The TensorRT Python API, or None when it does not import (any reason)."""
    try:
        return importlib.import_module("tensorrt")
    except Exception:  # the bindings wheel without libraries raises OSError, not ImportError
        return None


def choose_builder(onnx_path: Path, prefer: Builder | None = None) -> Builder:
    """The Python API if it imports, else trtexec if on PATH; `prefer` insists on one."""
    api = prefer in (None, "api") and tensorrt_module() is not None
    if api:
        return "api"
    if prefer in (None, "trtexec") and shutil.which("trtexec") is not None:
        return "trtexec"
    wanted = {
        None: "the TensorRT Python API (import tensorrt) and trtexec on PATH are both missing",
        "api": "the TensorRT Python API (import tensorrt) is missing",
        "trtexec": "trtexec is not on PATH",
    }[prefer]
    raise TensorRTUnavailableError(
        f"{onnx_path}: cannot build a TensorRT plan on this machine: {wanted}; build it on a "
        "GPU node inside the target Triton image (the Helm chart's init container runs "
        "tritonkit build-plan), or serve the ONNX model with ONNX Runtime's TensorRT "
        "accelerator instead"
    )


def token_inputs(onnx_path: Path) -> tuple[tuple[str, ...], dict[str, str]]:
    """The model's token inputs ([batch, seq] each) and the ONNX dtype of every I/O tensor."""
    try:
        inputs, outputs = onnx_io(onnx_path)
    except FileNotFoundError:
        raise PlanBuildError(f"{onnx_path}: ONNX model not found") from None
    bad = [t.name for t in inputs if t.name not in TOKEN_INPUTS or len(t.dims) != 2]
    if bad:
        raise PlanBuildError(
            f"{onnx_path}: inputs {bad} are not [batch, seq] token inputs "
            f"{list(TOKEN_INPUTS)}: export the model with tritonkit export"
        )
    return tuple(t.name for t in inputs), {t.name: t.data_type for t in (*inputs, *outputs)}


def check_qdq(onnx_path: Path) -> None:
    """int8 needs explicit quantization: symmetric int8 QuantizeLinear nodes in the model."""
    model = onnx.load(str(onnx_path), load_external_data=False)
    quantize = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    if not quantize:
        raise PlanBuildError(
            f"{onnx_path}: int8 needs the QDQ model of the int8-static variant (no "
            "QuantizeLinear nodes here); implicit calibration is not supported"
        )
    zero_points = {i.name: i for i in model.graph.initializer}
    for node in quantize:
        zero = zero_points.get(node.input[2]) if len(node.input) > 2 else None
        if zero is None:
            continue
        values = numpy_helper.to_array(zero)
        if zero.data_type != onnx.TensorProto.INT8 or values.any():
            raise PlanBuildError(
                f"{onnx_path}: node '{node.name}' quantizes asymmetrically or to uint8; "
                "TensorRT takes only symmetric int8 Q/DQ: quantize with activation_type and "
                "weight_type QInt8 and ActivationSymmetric/WeightSymmetric set"
            )


@dataclass(frozen=True)
class _Built:
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    io_types: dict[str, str]


def _version_from_banner(output: str) -> str | None:
    """TensorRT's version from trtexec's output: `TensorRT version: 10.5.0`, else the
    `[TensorRT v100500]` banner (major*10000 + minor*100 + patch; 8.x: major*1000 + ...)."""
    found = re.search(r"TensorRT version: (\d+(?:\.\d+)+)", output)
    if found:
        return found.group(1)
    banner = re.search(r"\[TensorRT v(\d+)\]", output)
    if not banner:
        return None
    n = int(banner.group(1))
    major, rest = (n // 10000, n % 10000) if n >= 100000 else (n // 1000, n % 1000)
    return f"{major}.{rest // 100}.{rest % 100}"


def _build_with_trtexec(
    onnx_path: Path,
    plan: Path,
    inputs: tuple[str, ...],
    onnx_types: dict[str, str],
    options: BuildOptions,
) -> _Built:
    command = trtexec_command(onnx_path, plan, inputs, options)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    if done.returncode != 0 or not plan.is_file():
        errors = [line for line in output.splitlines() if "error" in line.lower()]
        last = (errors or output.strip().splitlines() or ["no output"])[-1].strip()
        raise PlanBuildError(f"{onnx_path}: trtexec failed (exit {done.returncode}): {last}")
    version = _version_from_banner(output)
    if version is None:
        raise PlanBuildError(f"{onnx_path}: trtexec did not report its TensorRT version")
    name = re.search(r"Selected Device: (.+)", output)
    cc = re.search(r"Compute Capability: (\d+\.\d+)", output)
    smi = gpu_info()
    return _Built(
        version,
        name.group(1).strip() if name else smi.name,
        cc.group(1) if cc else smi.compute_capability,
        {n: io_type_for(t, version) for n, t in onnx_types.items()},
    )


def _build_with_api(
    trt: Any, onnx_path: Path, plan: Path, inputs: tuple[str, ...], options: BuildOptions
) -> _Built:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = int(str(trt.__version__).split(".")[0])
    explicit = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(explicit)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise PlanBuildError(f"{onnx_path}: TensorRT's ONNX parser refused the model: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    config.builder_optimization_level = options.optimization_level
    for flag in _PRECISION_FLAGS[options.precision]:
        config.set_flag(getattr(trt.BuilderFlag, flag.upper()))
    if options.hardware_compatibility == "ampere+":
        config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.AMPERE_PLUS
    if options.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    cache_file = options.timing_cache
    cached = cache_file.read_bytes() if cache_file is not None and cache_file.is_file() else b""
    config.set_timing_cache(config.create_timing_cache(cached), False)
    for profile in options.profiles:
        shapes = builder.create_optimization_profile()
        for name in inputs:
            shapes.set_shape(name, profile.min, profile.opt, profile.max)
        config.add_optimization_profile(shapes)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise PlanBuildError(f"{onnx_path}: TensorRT could not build the plan (see its log)")
    plan.write_bytes(bytes(serialized))
    if cache_file is not None:
        _replace(cache_file, bytes(config.get_timing_cache().serialize()))
    engine = trt.Runtime(logger).deserialize_cuda_engine(serialized)
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    io_types = {n: _TRT_TO_TRITON[engine.get_tensor_dtype(n).name] for n in names}
    gpu = gpu_info()
    return _Built(str(trt.__version__), gpu.name, gpu.compute_capability, io_types)


def build_plan(
    onnx_path: Path, version_dir: Path, options: BuildOptions, prefer: Builder | None = None
) -> PlanRecord:
    """Build a plan into `version_dir` and record it in its ``tensorrt.json``.

    Nothing is left behind on failure: the plan is built under a temporary name and moved
    into place only after the TensorRT version is checked against ``options.triton_image``.
    """
    builder = choose_builder(onnx_path, prefer)
    inputs, onnx_types = token_inputs(onnx_path)
    if options.precision == "int8":
        check_qdq(onnx_path)
    version_dir.mkdir(parents=True, exist_ok=True)
    tmp = version_dir / f".build-{os.getpid()}.plan"
    try:
        if builder == "api":
            built = _build_with_api(tensorrt_module(), onnx_path, tmp, inputs, options)
        else:
            built = _build_with_trtexec(onnx_path, tmp, inputs, onnx_types, options)
        release = tensorrt_for_image(options.triton_image) if options.triton_image else None
        if release is not None and not plan_loads(
            built.tensorrt_version, release.version, options.version_compatible
        ):
            raise PlanBuildError(
                f"{onnx_path}: built with TensorRT {built.tensorrt_version} but "
                f"{options.triton_image} runs TensorRT {release.version}: build inside "
                "that image"
            )
        file = DEFAULT_PLAN
        if options.per_compute_capability:
            if not re.fullmatch(r"\d+\.\d+", built.compute_capability):
                raise PlanBuildError(
                    f"{onnx_path}: the GPU's compute capability is unknown (nvidia-smi): "
                    "build without --per-cc"
                )
            file = f"model_sm{built.compute_capability.replace('.', '')}.plan"
        tmp.replace(version_dir / file)
    finally:
        tmp.unlink(missing_ok=True)
    record = PlanRecord(
        file=file,
        tensorrt_version=built.tensorrt_version,
        builder=builder,
        gpu_name=built.gpu_name,
        compute_capability=built.compute_capability,
        precision=options.precision,
        hardware_compatibility=options.hardware_compatibility,
        version_compatible=options.version_compatible,
        inputs=inputs,
        profiles=options.profiles,
        io_types=built.io_types,
        triton_image=options.triton_image,
    )
    write_metadata(version_dir, record)
    return record
