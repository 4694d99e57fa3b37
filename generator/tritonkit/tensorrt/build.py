"""Build TensorRT plans where TensorRT exists, through the one builder the serving pods run.

Every build goes through a recipe (`tensorrt.recipe`) and `tritonkit.runtime.plan_builder`,
in-process here and as ``NAME_trt/build_plan.py`` in the pod, so that `build-plan`, `generate
--variant trt-*` on a GPU machine and the Helm chart's init container build alike. Where neither
the TensorRT Python API nor trtexec exists (these development machines: TensorRT's libraries
cannot be installed here) building fails with ``TensorRTUnavailableError``.

A plan is bound to the TensorRT release and GPU that built it, so every build records
``<version>/tensorrt.json`` beside the plan: TensorRT version (with its build number where the
image says it), GPU and compute capability, precision, profiles, the plan's I/O dtypes and what
was checked on the built plan. ``tritonkit validate`` reads it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from tritonkit.errors import PlanBuildError, TensorRTUnavailableError
from tritonkit.runtime import plan_builder
from tritonkit.runtime.plan_builder import METADATA_FILE, RECIPE_FILE, BuildError
from tritonkit.tensorrt.profiles import Profile
from tritonkit.tensorrt.recipe import (
    DEFAULT_PLAN,
    Builder,
    BuildOptions,
    HardwareCompatibility,
    Precision,
    Recipe,
    make_recipe,
)
from tritonkit.tensorrt.versions import TensorRTRelease

__all__ = [
    "DEFAULT_PLAN",
    "METADATA_FILE",
    "RECIPE_FILE",
    "BuildOptions",
    "Builder",
    "PlanRecord",
    "Precision",
    "build_from_recipe",
    "build_plan",
    "choose_builder",
    "read_metadata",
    "write_metadata",
]


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
    tensorrt_version_source: str = ""
    checked: tuple[str, ...] = ()  # what the builder verified on the plan: "io", "profiles"
    strongly_typed: bool = False
    built_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # the builder's other fields, kept

    def as_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "extra"}
        data.update(self.extra)
        data["inputs"] = list(self.inputs)
        data["checked"] = list(self.checked)
        data["profiles"] = [p.as_dict() for p in self.profiles]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlanRecord:
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        values["inputs"] = tuple(values["inputs"])
        values["checked"] = tuple(values.get("checked", ()))
        values["profiles"] = tuple(Profile.from_dict(p) for p in values["profiles"])
        return cls(**values, extra={k: v for k, v in data.items() if k not in known})


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
    plan_builder.record_plan(version_dir, record.as_json())
    return version_dir / METADATA_FILE


def choose_builder(onnx_path: Path, prefer: Builder | None = None) -> Builder:
    """The Python API if it imports, else trtexec (PATH or NVIDIA's image locations); `prefer`
    insists on one."""
    if prefer in (None, "api") and plan_builder.import_tensorrt() is not None:
        return "api"
    if prefer in (None, "trtexec") and plan_builder.find_trtexec(dict(os.environ)) is not None:
        return "trtexec"
    places = "PATH or " + ", ".join(plan_builder.TRTEXEC_DIRS)
    wanted = {
        None: f"the TensorRT Python API (import tensorrt) and trtexec ({places}) are missing",
        "api": "the TensorRT Python API (import tensorrt) is missing",
        "trtexec": f"trtexec is not on {places}",
    }[prefer]
    raise TensorRTUnavailableError(
        f"{onnx_path}: cannot build a TensorRT plan on this machine: {wanted}; let the plan "
        "be built on the serving GPU (tritonkit generate --defer-plan, as the Helm chart does), "
        "or serve the ONNX model with ONNX Runtime's TensorRT accelerator instead"
    )


def build_from_recipe(
    model_dir: Path, recipe: dict[str, Any], prefer: Builder | None = None, *,
    cache_dir: Path | None = None, where: str | None = None,
) -> PlanRecord:  # fmt: skip
    """Run `plan_builder.build` in-process; its one-line errors become PlanBuildError."""
    try:
        record = plan_builder.build(model_dir, recipe, prefer=prefer, cache_dir=cache_dir)
    except BuildError as e:
        raise PlanBuildError(f"{where or model_dir.name}: {e}") from None
    return PlanRecord.from_json(record)


def build_plan(
    onnx_path: Path,
    version_dir: Path,
    options: BuildOptions,
    prefer: Builder | None = None,
    serving: TensorRTRelease | None = None,
) -> PlanRecord:
    """Build a plan into `version_dir` from `onnx_path` and record it (``tensorrt.json``).

    `serving`: the TensorRT of the image that will serve it (checked before the plan lands);
    nothing is left behind on failure."""
    choose_builder(onnx_path, prefer)
    recipe: Recipe = make_recipe(onnx_path, options, serving, str(onnx_path.resolve()))
    data = recipe.as_json() | {"version_dir": version_dir.name}
    return build_from_recipe(
        version_dir.parent, data, prefer, cache_dir=options.timing_cache, where=str(onnx_path)
    )
