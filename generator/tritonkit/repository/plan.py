"""Plan a deployment's repository: every model, tensor and file, decided before anything is
written. The writer (`repository.writer`) renders and writes exactly what the plan lists.

Layout (NAME is the deployment name; see `repository.contract`):
  NAME/             ensemble: TEXT in, task results out
  NAME_tokenizer/   Python backend: tokenizers + numpy (runtime/tokenizer.py)
  NAME_onnx/        ONNX Runtime (platform onnxruntime_onnx), or
  NAME_trt/         a TensorRT plan (platform tensorrt_plan)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import onnx

from tritonkit.errors import RepositoryError
from tritonkit.model.onnx_io import onnx_io
from tritonkit.repository.backends.onnx import LABELS_FILE, check_graph, onnx_model_plan
from tritonkit.repository.backends.tensorrt import (
    BUILD_SCRIPT,
    graph_batch_sizes,
    plan_tensorrt_model,
)
from tritonkit.repository.backends.tokenizer import TEXT, tokenizer_batching, tokenizer_model_plan
from tritonkit.repository.contract import Deployment, ModelKind
from tritonkit.repository.layout import ServingLayout
from tritonkit.repository.pbtxt import EnsemblePlan, EnsembleStep, ModelPlan, Tensor, read_plan
from tritonkit.runtime.tokenizer import TokenizerParams
from tritonkit.spec import DeploymentSpec
from tritonkit.tensorrt.build import RECIPE_FILE
from tritonkit.tensorrt.qdq import foreign_ops
from tritonkit.tensorrt.recipe import Recipe
from tritonkit.util.resources import triton_model_source

PLAN_ONNX = "onnx/model.onnx"  # inside NAME_trt/, in a folder Triton ignores (not numeric)


@dataclass(frozen=True)
class FileEntry:
    """A file of the repository: copied from `source` or written from `content`."""

    path: str  # relative to the repository root
    source: Path | None = None
    content: str | None = None


@dataclass(frozen=True)
class OnnxModel:
    """The model is served as ONNX: `onnx` is copied; `records` (e.g. export.json,
    variant.json) go into the model folder beside config.pbtxt."""

    onnx: Path
    records: Mapping[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class TensorRTModel:
    """The model is served as a TensorRT plan built from `onnx` by `recipe` (its `onnx` is
    PLAN_ONNX): the model folder holds the recipe, the build script and the ONNX model, and the
    plan is built into it, in the serving pod or by `generate` where TensorRT exists."""

    onnx: Path
    recipe: Recipe
    cuda_graphs: bool = False
    graph_batches: tuple[int, ...] = ()


ModelSource = OnnxModel | TensorRTModel


@dataclass(frozen=True)
class RepositoryPlan:
    """Everything the writer renders and copies: configs as data, files by path."""

    deployment: Deployment
    models: tuple[ModelPlan, ...]  # the tokenizer, then the model
    ensemble: EnsemblePlan
    files: tuple[FileEntry, ...] = ()
    notes: tuple[str, ...] = ()  # what README.md must say about choices made here

    def with_files(self, *entries: FileEntry) -> RepositoryPlan:
        """The plan with `entries` added (an entry replaces one with the same path)."""
        paths = {e.path for e in entries}
        kept = tuple(f for f in self.files if f.path not in paths)
        return replace(self, files=kept + tuple(entries))

    def model(self, name: str) -> ModelPlan:
        return next(m for m in self.models if m.name == name)

    def replace_models(self, *models: ModelPlan) -> RepositoryPlan:
        """The plan with these models in place of the ones of the same name."""
        new = {m.name: m for m in models}
        return replace(self, models=tuple(new.get(m.name, m) for m in self.models))


def plan_repository(
    spec: DeploymentSpec,
    source: ModelSource,
    tokenizer_file: Path,
    labels: tuple[str, ...],
    tokenizer: TokenizerParams,
    layout: ServingLayout,
) -> RepositoryPlan:
    """Decide every model, tensor and file of the repository (nothing is written here)."""
    inputs, outputs = onnx_io(source.onnx)
    check_graph(str(source.onnx), inputs, outputs)
    kind: ModelKind = "tensorrt" if isinstance(source, TensorRTModel) else "onnx"
    deployment = Deployment.planned(spec.name, kind, spec.task, tokenizer)
    foreign = foreign_ops(onnx.load(str(source.onnx), load_external_data=False))
    model = onnx_model_plan(
        spec, deployment.model, inputs, outputs, tokenizer.max_length, layout,
        whole_graph=not foreign,
    )  # fmt: skip
    notes = []
    if model.gpu_accelerators and foreign:
        notes.append(
            "ONNX Runtime's TensorRT accelerator gets no explicit shape profiles: the graph has "
            f"operators TensorRT cannot take ({', '.join(foreign[:3])}), so ONNX Runtime splits "
            "it and its TensorRT subgraphs have inputs the profiles could not name; engines are "
            "built for the shapes seen (rebuilt when a longer one arrives)"
        )
    files = [
        FileEntry(f"{deployment.tokenizer_model}/1/model.py", triton_model_source("tokenizer")),
        FileEntry(f"{deployment.tokenizer_model}/1/tokenizer.json", tokenizer_file),
        FileEntry(f"{deployment.name}/1/.keep", content=""),
    ]
    if isinstance(source, TensorRTModel):
        recipe, profiles = source.recipe, source.recipe.options.profiles
        model = plan_tensorrt_model(
            model,
            name=deployment.model,
            io_types=recipe.io_types,
            profile_count=len(profiles),
            cuda_graphs=source.cuda_graphs,
            graph_batches=graph_batch_sizes(profiles, source.graph_batches),
        )
        folder = deployment.model
        text = json.dumps(recipe.as_json(), indent=2) + "\n"
        files += [
            FileEntry(f"{folder}/{PLAN_ONNX}", source.onnx),
            FileEntry(f"{folder}/{RECIPE_FILE}", content=text),
            FileEntry(f"{folder}/{BUILD_SCRIPT}", triton_model_source("plan_builder")),
            FileEntry(f"{folder}/1/.keep", content=""),
        ]
        external = source.onnx.with_name(source.onnx.name + ".data")  # onnx_io.save_model
        if external.is_file():
            files.append(FileEntry(f"{folder}/{PLAN_ONNX}.data", external))
    else:
        files.append(FileEntry(f"{deployment.model}/1/model.onnx", source.onnx))
        for name, path in source.records.items():
            files.append(FileEntry(f"{deployment.model}/{name}", path))
    token_inputs = [t.name for t in model.inputs]
    tokenizer_model = tokenizer_model_plan(
        deployment.tokenizer_model,
        token_inputs,
        tokenizer,
        max_batch_size=spec.max_batch_size,
        instance_count=layout.tokenizer_instances,
        dynamic_batching=tokenizer_batching(spec, layout),
    )
    if labels:
        text = "".join(f"{label}\n" for label in labels)
        files.append(FileEntry(f"{deployment.model}/{LABELS_FILE}", content=text))
        files.append(FileEntry(f"{deployment.name}/{LABELS_FILE}", content=text))
    ensemble = plan_ensemble(deployment, spec, tokenizer_model, model)
    return RepositoryPlan(
        deployment, (tokenizer_model, model), ensemble, tuple(files), tuple(notes)
    )


def plan_ensemble(
    deployment: Deployment, spec: DeploymentSpec, tokenizer: ModelPlan, model: ModelPlan
) -> EnsemblePlan:
    """TEXT -> tokenizer -> model; the model's outputs upper-cased (and OFFSETS passed on)."""
    task = deployment.task
    outputs = [
        Tensor(task.served_name(t.name), t.data_type, t.dims, t.label_filename)
        for t in model.outputs
    ]
    output_map = {t.name: task.served_name(t.name) for t in model.outputs}
    tokenizer_map = {t.name: t.name for t in model.inputs}
    if deployment.tokenizer.emit_offsets:
        outputs.append(Tensor("OFFSETS", "TYPE_INT64", (-1, 2)))
        tokenizer_map["offsets"] = "OFFSETS"
    return EnsemblePlan(
        name=deployment.name,
        description=f"{spec.task}: raw text in (TEXT), results out",
        max_batch_size=spec.max_batch_size,
        inputs=(TEXT,),
        outputs=tuple(outputs),
        steps=(
            EnsembleStep(tokenizer.name, {"TEXT": "TEXT"}, tokenizer_map),
            EnsembleStep(model.name, {t.name: t.name for t in model.inputs}, output_map),
        ),
    )


def plan_from_repository(repo: Path, name: str | None = None) -> RepositoryPlan:
    """A deployment already on disk as a plan: its configs as data (`plan_from_config`), every
    other file listed by its path, so that a change (tune) is rendered again through the
    templates and written by the one writer."""
    deployment = Deployment.from_repository(repo, name)
    plans = {m: read_plan(repo / m / "config.pbtxt") for m in deployment.model_names()}
    tokenizer, model, ensemble = (plans[m] for m in deployment.model_names())
    if not (
        isinstance(tokenizer, ModelPlan)
        and isinstance(model, ModelPlan)
        and isinstance(ensemble, EnsemblePlan)
    ):
        raise RepositoryError(f"{repo}: deployment '{deployment.name}' is not made by tritonkit")
    configs = {f"{m}/config.pbtxt" for m in deployment.model_names()}
    files = tuple(
        FileEntry(path.relative_to(repo).as_posix(), source=path)
        for path in sorted(repo.rglob("*"))
        if path.is_file()
        and path.relative_to(repo).as_posix() not in configs
        and "__pycache__" not in path.parts
    )
    return RepositoryPlan(deployment, (tokenizer, model), ensemble, files)
