"""Reading a spec: YAML file + flag overrides -> validated sections, every problem at once.

Problems are `file: key.path: message` lines. A flag given on the command line overrides the
file's key; a flag not given (None) leaves it alone. Paths in a file are relative to the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from tritonkit.errors import SpecError
from tritonkit.spec.deployment import DeploymentSpec

M = TypeVar("M", bound=BaseModel)
_UNKNOWN_KEY = "unknown key: remove it or check its spelling"
_SECTION = "is a section: write its keys on the lines below it, not"


def _path_fields(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key path whose value is a Path (or a Path | None), found from the models."""
    found: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += _path_fields(annotation, (*prefix, name))
        elif annotation is Path or "Path" in str(annotation):
            found.append((*prefix, name))
    return found


def _resolve_paths(data: dict[str, Any], base: Path, model: type[BaseModel]) -> None:
    """Paths in a spec file are relative to the file's folder, not to the working directory."""
    for path in _path_fields(model):
        block: Any = data
        for key in path[:-1]:
            block = block.get(key) if isinstance(block, dict) else None
        if isinstance(block, dict) and isinstance(block.get(path[-1]), str):
            block[path[-1]] = str((base / block[path[-1]]).resolve())


def read_spec_file(path: Path, model: type[BaseModel] = DeploymentSpec) -> dict[str, Any]:
    """Read a YAML spec into a plain dict (validated later, after flags are merged)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: spec file not found: check the --spec path") from None
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not UTF-8 text: save the spec as UTF-8") from None
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
    _resolve_paths(data, path.resolve().parent, model)
    return data


def merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with the given (non-None) overrides; a section the file wrote as a scalar stays a
    scalar, so that validation reports it instead of a flag silently replacing it."""
    merged = dict(base)
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            if not any(v is not None for v in value.values()):
                continue
            current = merged.get(key)
            if current is None:
                merged[key] = merge({}, value)
            elif isinstance(current, dict):
                merged[key] = merge(current, value)
            # else: a scalar where a section belongs; validation reports it
        else:
            merged[key] = value
    return merged


def format_errors(error: ValidationError, source: str, prefix: str = "") -> str:
    """`source: key.path: message` lines; model-level rules may hold several lines each."""
    lines = []
    for item in error.errors():
        loc = ".".join(str(part) for part in item["loc"])
        loc = f"{prefix}{loc}" if loc else prefix.rstrip(".")
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = _UNKNOWN_KEY
        elif item["type"] == "model_type":  # a section written as a scalar or a list
            message = f"{_SECTION} {json.dumps(item['input'], default=str)}"
        if not loc:  # a cross-field rule: its message is "key: problem" lines
            lines += [f"{source}: {line}" for line in message.splitlines()]
        else:
            lines.append(f"{source}: {loc}: {message}")
    return "\n".join(lines)


def validate(model: type[M], data: Mapping[str, Any], source: str, prefix: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise SpecError(format_errors(e, source, prefix)) from None


def build_spec(
    spec_file: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> DeploymentSpec:
    """Spec file (optional) + flag overrides (None means 'not given') -> validated spec."""
    data = read_spec_file(spec_file) if spec_file is not None else {}
    data = merge(data, overrides or {})
    return validate(DeploymentSpec, data, str(spec_file) if spec_file is not None else "spec")


def build_section(
    model: type[M],
    key: str,
    spec_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> M:
    """One section (`check`, `loadtest`, `tune`, `serve`, `optimize`...) of a spec file, with
    flag overrides. A file with a `model` is validated whole, so a typo anywhere is reported;
    otherwise the section alone (with the defaults it takes from the top level).

    Without a file, a bad flag is reported as `--flag: message`.
    """
    if spec_file is None:
        try:
            return model.model_validate(merge({}, overrides or {}))
        except ValidationError as e:
            raise SpecError(_flag_errors(e, model)) from None
    data = read_spec_file(spec_file)
    section = data.get(key)
    if section is not None and not isinstance(section, dict):
        raise SpecError(f"{spec_file}: {key}: expected a mapping of keys to values")
    data = merge(data, {key: dict(overrides or {})})
    if "model" in data:
        found = getattr(validate(DeploymentSpec, data, str(spec_file)), key)
        if not isinstance(found, model):
            raise TypeError(f"section {key} is not a {model.__name__}")
        return found
    with_defaults = DeploymentSpec.section_defaults(data)
    return validate(model, with_defaults.get(key) or {}, str(spec_file), prefix=f"{key}.")


def _flag_errors(error: ValidationError, model: type[BaseModel]) -> str:
    """`--flag: message` lines, the flag being the one the field declares."""
    lines = []
    for item in error.errors():
        key = str(item["loc"][0]) if item["loc"] else ""
        field = model.model_fields.get(key)
        extra = field.json_schema_extra if field is not None else None
        flag = extra.get("flag") if isinstance(extra, dict) else None
        name = flag if isinstance(flag, str) else f"--{key.replace('_', '-')}"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = _UNKNOWN_KEY
        lines.append(f"{name}: {message}")
    return "\n".join(lines)


def spec_to_yaml(spec: BaseModel) -> str:
    """The spec as YAML, e.g. to record in a generated repository."""
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
