"""The build recipe: everything that decides one plan, decided on the CPU side.

`tritonkit generate --defer-plan` writes it as ``NAME_trt/build_recipe.json``; the plan is built
from it by `tritonkit.runtime.plan_builder` (``NAME_trt/build_plan.py`` in the serving pod, or
in-process where TensorRT is installed). Every version-dependent choice that the final
config.pbtxt depends on is made here from the serving image's TensorRT: the I/O dtypes (int32
on 8.x), which builder can make several profiles (not trtexec 8.6), and what TensorRT 11 cannot
build (fp16 without an fp16 model).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tritonkit import __version__
from tritonkit.errors import PlanBuildError
from tritonkit.model.onnx_io import TOKEN_INPUTS, onnx_io
from tritonkit.runtime.plan_builder import RECIPE_FORMAT, BuildError, precision_flags
from tritonkit.spec import TensorRTSpec
from tritonkit.tensorrt.profiles import Profile
from tritonkit.tensorrt.qdq import check_for_tensorrt
from tritonkit.tensorrt.versions import TensorRTRelease, io_type_for, version_tuple

Precision = Literal["fp32", "fp16", "int8"]
HardwareCompatibility = Literal["none", "ampere+"]
Builder = Literal["api", "trtexec"]
DEFAULT_PLAN = "model.plan"
PER_CC_PLAN = "model_sm{sm}.plan"  # plan_builder fills in the GPU's compute capability


@dataclass(frozen=True)
class BuildOptions:
    """Everything that decides a plan; the same for the Python API and trtexec."""

    profiles: tuple[Profile, ...]
    precision: Precision = "fp16"
    workspace_mib: int = 4096  # memory-pool (workspace) limit for tactics
    timing_cache: Path | None = None  # a folder: one cache file per GPU and TensorRT version
    optimization_level: int = 3  # builder optimization level 0..5 (TensorRT's default is 3)
    hardware_compatibility: HardwareCompatibility = "none"
    version_compatible: bool = False
    per_compute_capability: bool = False  # name the plan model_sm<cc>.plan (cc_model_filenames)
    triton_image: str | None = None  # the Triton image that serves the plan

    def __post_init__(self) -> None:
        if not self.profiles:
            raise PlanBuildError("build options: at least one optimization profile is needed")
        if not 0 <= self.optimization_level <= 5:
            raise PlanBuildError(
                f"builder optimization level {self.optimization_level}: use 0..5 (default 3)"
            )
        if self.workspace_mib < 1:
            raise PlanBuildError(f"workspace {self.workspace_mib} MiB: use a positive size")

    @classmethod
    def from_section(
        cls,
        section: TensorRTSpec,
        profiles: tuple[Profile, ...],
        precision: Precision,
        triton_image: str | None,
    ) -> BuildOptions:
        """The build options the spec's `tensorrt:` section sets."""
        return cls(
            profiles=profiles,
            precision=precision,
            workspace_mib=section.workspace_mib,
            timing_cache=section.timing_cache,
            optimization_level=section.optimization_level,
            hardware_compatibility=section.hardware_compatibility,
            version_compatible=section.version_compatible,
            per_compute_capability=section.per_cc,
            triton_image=triton_image,
        )


@dataclass(frozen=True)
class Recipe:
    """What `plan_builder.build` reads (``build_recipe.json``)."""

    onnx: str  # relative to the model folder (absolute for build-plan's own ONNX file)
    options: BuildOptions
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    io_types: dict[str, str]  # the dtypes config.pbtxt declares (empty: take the plan's)
    serving: TensorRTRelease | None
    builders: tuple[Builder, ...] = ("api", "trtexec")
    version_dir: str = "1"

    @property
    def plan_file(self) -> str:
        return PER_CC_PLAN if self.options.per_compute_capability else DEFAULT_PLAN

    def as_json(self) -> dict[str, Any]:
        o = self.options
        return {
            "format": RECIPE_FORMAT,
            "tritonkit": __version__,
            "onnx": self.onnx,
            "version_dir": self.version_dir,
            "plan_file": self.plan_file,
            "precision": o.precision,
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "io_types": dict(self.io_types),
            "profiles": [p.as_dict() for p in o.profiles],
            "workspace_mib": o.workspace_mib,
            "optimization_level": o.optimization_level,
            "hardware_compatibility": o.hardware_compatibility,
            "version_compatible": o.version_compatible,
            "builders": list(self.builders),
            "serving": None
            if self.serving is None
            else {
                "triton_image": o.triton_image,
                "tensorrt_version": self.serving.version,
                "source": self.serving.source,
            },
        }


def token_io(onnx_path: Path) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, str]]:
    """The model's token inputs ([batch, seq] each), its outputs, and every tensor's dtype."""
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
    types = {t.name: t.data_type for t in (*inputs, *outputs)}
    return tuple(t.name for t in inputs), tuple(t.name for t in outputs), types


def make_recipe(
    onnx_path: Path, options: BuildOptions, serving: TensorRTRelease | None, onnx: str
) -> Recipe:
    """The recipe for building `onnx_path` with `options` for a server running `serving`.

    Refuses here, on the CPU side, what the serving TensorRT cannot build or load."""
    inputs, outputs, onnx_types = token_io(onnx_path)
    check_for_tensorrt(onnx_path, options.precision)
    io_types: dict[str, str] = {}
    builders: tuple[Builder, ...] = ("api", "trtexec")
    if serving is not None:
        version = version_tuple(serving.version)
        try:
            precision_flags(options.precision, version)
        except BuildError as e:
            raise PlanBuildError(f"{options.triton_image}: {e}") from None
        if options.version_compatible and version[:2] < (8, 6):
            raise PlanBuildError(f"version-compatible plans need TensorRT >= 8.6, not {version}")
        io_types = {n: io_type_for(t, serving.version) for n, t in onnx_types.items()}
        if version < (9,) and len(options.profiles) > 1:
            builders = ("api",)  # trtexec 8.6 has no --profile (plan_builder.trtexec_argv)
    return Recipe(onnx, options, inputs, outputs, io_types, serving, builders)
