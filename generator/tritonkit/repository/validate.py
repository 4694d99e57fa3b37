"""`tritonkit validate`: every config parses, and the ensemble's wiring holds together.

All problems are collected and reported at once, each naming the file and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tritonclient.grpc import model_config_pb2

from tritonkit.errors import ConfigError, TritonkitError
from tritonkit.model.onnx_io import onnx_io
from tritonkit.repository.backends.tensorrt import deferred_note, plan_problems, server_args
from tritonkit.repository.contract import RECORD_FILE, Deployment
from tritonkit.repository.pbtxt import data_type_name, read_config
from tritonkit.runtime.tokenizer import TokenizerParams

_ONNX_PLATFORMS = {"onnxruntime_onnx"}
_ONNX_BACKENDS = {"onnxruntime"}


@dataclass(frozen=True)
class TensorInfo:
    data_type: str
    dims: tuple[int, ...]


def _tensors(items: object) -> dict[str, TensorInfo]:
    return {
        t.name: TensorInfo(data_type_name(t.data_type), tuple(t.dims))
        for t in items  # type: ignore[attr-defined]
    }


def dims_compatible(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Same rank, and every dimension equal or a wildcard (-1)."""
    return len(a) == len(b) and all(x == y or -1 in (x, y) for x, y in zip(a, b, strict=True))


def _is_onnx(config: model_config_pb2.ModelConfig) -> bool:
    return config.platform in _ONNX_PLATFORMS or config.backend in _ONNX_BACKENDS


def _version_dirs(model_dir: Path) -> list[Path]:
    return sorted(p for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def _check_model_files(
    model_dir: Path,
    config: model_config_pb2.ModelConfig,
    problems: list[str],
    tokenizer: TokenizerParams | None,
    serving: dict[str, Any],
) -> None:
    rel = model_dir.name
    versions = _version_dirs(model_dir)
    if not versions:
        problems.append(f"{rel}: no numeric version folder (e.g. {rel}/1/): add one")
        return
    for output in config.output:
        if output.label_filename and not (model_dir / output.label_filename).is_file():
            problems.append(
                f"{rel}/config.pbtxt: output '{output.name}' label_filename "
                f"'{output.label_filename}' not found in {rel}/"
            )
    if config.platform == "ensemble":
        return
    if _is_onnx(config):
        filename = config.default_model_filename or "model.onnx"
        for version in versions:
            path = version / filename
            if not path.is_file():
                problems.append(f"{rel}/{version.name}/{filename}: model file missing")
                continue
            _check_onnx_io(rel, path, config, problems)
    elif config.platform == "tensorrt_plan":
        problems.extend(plan_problems(model_dir, config, tokenizer, serving))
    elif config.backend == "python":
        for version in versions:
            if not (version / "model.py").is_file():
                problems.append(f"{rel}/{version.name}/model.py: Python backend file missing")


def _check_onnx_io(
    rel: str, path: Path, config: model_config_pb2.ModelConfig, problems: list[str]
) -> None:
    """The config's tensors must exist in the ONNX graph with the same dtype and dims."""
    try:
        graph_inputs, graph_outputs = onnx_io(path)
    except TritonkitError as e:
        problems.append(str(e))
        return
    except Exception as e:  # corrupt file: onnx raises DecodeError and friends
        problems.append(f"{rel}/{path.parent.name}/{path.name}: unreadable ONNX model ({e})")
        return
    batched = config.max_batch_size > 0
    for kind, declared, actual in (
        ("input", config.input, graph_inputs),
        ("output", config.output, graph_outputs),
    ):
        graph = {t.name: t for t in actual}
        for tensor in declared:
            found = graph.get(tensor.name)
            if found is None:
                problems.append(
                    f"{rel}/config.pbtxt: {kind} '{tensor.name}' is not in the ONNX graph "
                    f"(graph has {sorted(graph)})"
                )
                continue
            dtype = data_type_name(tensor.data_type)
            if dtype != found.data_type:
                problems.append(
                    f"{rel}/config.pbtxt: {kind} '{tensor.name}' is {dtype}, "
                    f"the ONNX graph says {found.data_type}"
                )
            graph_dims = found.dims[1:] if batched else found.dims
            if batched and (not found.dims or found.dims[0] != -1):
                problems.append(
                    f"{rel}/config.pbtxt: max_batch_size > 0 but ONNX {kind} '{tensor.name}' "
                    "has no dynamic batch axis"
                )
            elif not dims_compatible(tuple(tensor.dims), graph_dims):
                problems.append(
                    f"{rel}/config.pbtxt: {kind} '{tensor.name}' dims {list(tensor.dims)} "
                    f"do not match the ONNX graph {list(graph_dims)}"
                )


def _check_ensemble(
    name: str,
    config: model_config_pb2.ModelConfig,
    configs: dict[str, model_config_pb2.ModelConfig],
    problems: list[str],
) -> None:
    where = f"{name}/config.pbtxt"
    available = _tensors(config.input)
    steps = config.ensemble_scheduling.step
    if not steps:
        problems.append(f"{where}: ensemble_scheduling has no step")
    for index, step in enumerate(steps):
        label = f"{where}: step {index} ({step.model_name})"
        target = configs.get(step.model_name)
        if target is None:
            problems.append(f"{label}: model '{step.model_name}' is not in the repository")
            continue
        if config.max_batch_size > target.max_batch_size:
            problems.append(
                f"{label}: ensemble max_batch_size {config.max_batch_size} exceeds the step "
                f"model's {target.max_batch_size}"
            )
        inputs, outputs = _tensors(target.input), _tensors(target.output)
        for model_input, ensemble_tensor in step.input_map.items():
            if model_input not in inputs:
                problems.append(f"{label}: input_map key '{model_input}' is not a model input")
                continue
            source = available.get(ensemble_tensor)
            if source is None:
                problems.append(
                    f"{label}: input_map value '{ensemble_tensor}' is produced by no earlier "
                    "step and is not an ensemble input"
                )
                continue
            _compare(
                label,
                f"'{ensemble_tensor}' -> '{model_input}'",
                source,
                inputs[model_input],
                problems,
            )
        missing = sorted(set(inputs) - set(step.input_map))
        if missing:
            problems.append(f"{label}: model inputs {missing} are not mapped in input_map")
        for model_output, ensemble_tensor in step.output_map.items():
            if model_output not in outputs:
                problems.append(f"{label}: output_map key '{model_output}' is not a model output")
                continue
            available[ensemble_tensor] = outputs[model_output]
    for name_, declared in _tensors(config.output).items():
        produced = available.get(name_)
        if produced is None:
            problems.append(f"{where}: output '{name_}' is produced by no step's output_map")
        else:
            _compare(where, f"output '{name_}'", produced, declared, problems)


def _compare(
    label: str, what: str, produced: TensorInfo, consumed: TensorInfo, problems: list[str]
) -> None:
    if produced.data_type != consumed.data_type:
        problems.append(
            f"{label}: {what}: dtype {produced.data_type} does not match {consumed.data_type}"
        )
    elif not dims_compatible(produced.dims, consumed.dims):
        problems.append(
            f"{label}: {what}: dims {list(produced.dims)} incompatible with {list(consumed.dims)}"
        )


def validate_repository(repo: Path) -> list[str]:
    """Every problem found in the repository, as one-line messages (empty: valid)."""
    if not repo.is_dir():
        return [f"{repo}: model repository folder not found"]
    problems: list[str] = []
    configs: dict[str, model_config_pb2.ModelConfig] = {}
    model_dirs = sorted(p for p in repo.iterdir() if p.is_dir() and not p.name.startswith("."))
    for model_dir in model_dirs:
        config_path = model_dir / "config.pbtxt"
        if not config_path.is_file():
            problems.append(f"{model_dir.name}: no config.pbtxt: every model folder needs one")
            continue
        try:
            config = read_config(config_path)
        except ConfigError as e:
            problems.append(f"{model_dir.name}/config.pbtxt: {str(e).split(': ', 1)[-1]}")
            continue
        if config.name and config.name != model_dir.name:
            problems.append(
                f"{model_dir.name}/config.pbtxt: name '{config.name}' must equal the folder name"
            )
        configs[model_dir.name] = config
    if not configs and not problems:
        problems.append(f"{repo}: no models found (no folder with a config.pbtxt)")
    feeds = _deployments(repo, configs, problems)
    serving = deployment_serving(repo)
    for name, config in configs.items():
        _check_model_files(repo / name, config, problems, feeds.get(name), serving)
        if config.platform == "ensemble":
            _check_ensemble(name, config, configs, problems)
    return problems


def _deployments(
    repo: Path, configs: dict[str, model_config_pb2.ModelConfig], problems: list[str]
) -> dict[str, TokenizerParams]:
    """The tokenizer parameters that feed each deployment's model. In a repository tritonkit
    wrote (tritonkit.json), every ensemble must be a deployment by the repository contract."""
    written_by_tritonkit = (repo / RECORD_FILE).is_file()
    feeds: dict[str, TokenizerParams] = {}
    for name, config in configs.items():
        if config.platform != "ensemble":
            continue
        try:
            deployment = Deployment.from_configs(configs, name, str(repo))
        except TritonkitError as e:
            if written_by_tritonkit:
                problems.append(str(e).removeprefix(f"{repo}: "))
            continue
        feeds[deployment.model] = deployment.tokenizer
    return feeds


def deployment_serving(repo: Path) -> dict[str, Any]:
    """What tritonkit.json's spec says about the server: image, the stated TensorRT version
    (tensorrt.tensorrt_version) and tensorrt.version_compatible (what the Helm chart reads to
    pass --backend-config=tensorrt,version-compatible=true)."""
    try:
        spec = json.loads((repo / RECORD_FILE).read_text(encoding="utf-8"))["spec"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if not isinstance(spec, dict):
        return {}
    image = spec.get("triton_image")
    section = spec.get("tensorrt")
    tensorrt: dict[str, Any] = section if isinstance(section, dict) else {}
    found: dict[str, Any] = {"image": image if isinstance(image, str) else None}
    if isinstance(tensorrt.get("tensorrt_version"), str):
        found["tensorrt_version"] = tensorrt["tensorrt_version"]
    if isinstance(tensorrt.get("version_compatible"), bool):
        found["version_compatible"] = tensorrt["version_compatible"]
    return found


def repository_notes(repo: Path) -> list[str]:
    """Not problems: plans still to be built in the serving pod, and the tritonserver flags
    the repository needs."""
    notes: list[str] = []
    args: list[str] = []
    for model_dir in sorted(p for p in repo.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            config = read_config(model_dir / "config.pbtxt")
        except (ConfigError, OSError):
            continue
        if config.platform != "tensorrt_plan":
            continue
        note = deferred_note(model_dir, config)
        notes += [note] if note else []
        args += [a for a in server_args(model_dir) if a not in args]
    if args:
        notes.append(f"tritonserver needs {' '.join(args)} (tritonkit serve and the chart add it)")
    return notes
