"""The reference spec: every key with its default, its flag and its help, as commented YAML
(printed by `tritonkit spec`, and the README's spec block is checked against it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from tritonkit.spec.deployment import DeploymentSpec

_WIDTH = 34  # the column where comments start


def _scalar(value: Any) -> str:
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, tuple):
        value = list(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _comment(field: Any) -> str:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    help_text = (field.description or "").split(" [default")[0]
    flag = extra.get("flag")
    return f"{help_text} ({flag})" if flag else help_text


def reference_lines(model: type[BaseModel] = DeploymentSpec, indent: int = 0) -> list[str]:
    lines: list[str] = []
    pad = "  " * indent
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            doc = (annotation.__doc__ or "").strip().splitlines()[0]
            lines.append(_with_comment(f"{pad}{name}:", doc))
            lines += reference_lines(annotation, indent + 1)
            continue
        value = "<required>" if field.is_required() else _scalar(field.default)
        comment = _comment(field)
        lines.append(_with_comment(f"{pad}{name}: {value}", comment))
    return lines


def _with_comment(line: str, comment: str) -> str:
    return f"{line.ljust(_WIDTH - 1)} # {comment}" if comment else line


def reference_yaml() -> str:
    return "\n".join(reference_lines()) + "\n"
