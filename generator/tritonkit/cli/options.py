"""Command-line flags derived from the spec: a flag's name, type, choices, default and help
come from its pydantic field (`tritonkit.spec.fields.option`), so nothing is mapped by hand.

    GENERATE = spec_flags(DeploymentSpec, sections=("export", "optimize", ...))

    @add_flags(GENERATE)
    def generate(**values): spec = build_spec(file, overrides(GENERATE, values))

A flag not given is None and leaves the spec file's key alone.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import click
from pydantic import BaseModel
from pydantic.fields import FieldInfo

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Flag:
    """One command-line flag and the spec key it sets."""

    path: tuple[str, ...]  # key path in the spec, e.g. ("dynamic_batching", "enabled")
    names: tuple[str, ...]  # e.g. ("-o", "--output")
    param: str  # the Click parameter name
    field: FieldInfo
    switch: bool = False  # a bool given as --flag only (no --no-flag)

    def click_option(self) -> Callable[[F], F]:
        annotation = _strip_optional(self.field.annotation)
        multiple = get_origin(annotation) is tuple
        item = get_args(annotation)[0] if multiple else annotation
        if get_origin(item) in (Union, types.UnionType) and bool in get_args(item):
            item = bool  # `auto | bool`: the flag gives true or false, absent leaves auto
        help_text = (self.field.description or "") + _default_note(self.field)
        if item is bool:
            flag = self.names[-1]
            names = (f"{flag}/--no-{flag[2:]}",) if self.field.default is not False else (flag,)
            extra: dict[str, Any] = (
                {"is_flag": True} if len(names) == 1 and "/" not in names[0] else {}
            )
            return click.option(*names, self.param, default=None, help=help_text, **extra)
        return click.option(
            *self.names,
            self.param,
            type=_click_type(item),
            multiple=multiple,
            default=None,
            help=help_text,
        )


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


class WordOrInt(click.ParamType[Any, Any]):
    """A value that is one of a few words (e.g. `auto`) or an integer."""

    name = "integer"

    def __init__(self, words: tuple[str, ...]) -> None:
        self.words = words
        self.name = f"{'|'.join(words)}|N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int) or value in self.words:
            return value
        try:
            return int(value)
        except (TypeError, ValueError):
            self.fail(f"'{value}' is not {', '.join(self.words)} or an integer", param, ctx)


def _plain(item: Any) -> Any:
    """`Annotated[int, ...]` as `int`."""
    return get_args(item)[0] if get_origin(item) is Annotated else item


def _click_type(item: Any) -> Any:
    if get_origin(item) in (Union, types.UnionType):
        members = [_plain(a) for a in get_args(item)]
        words = tuple(str(w) for m in members if get_origin(m) is Literal for w in get_args(m))
        if words and set(members) - {m for m in members if get_origin(m) is Literal} == {int}:
            return WordOrInt(words)
    if get_origin(item) is Literal:
        return click.Choice([str(a) for a in get_args(item)])
    if item is Path:
        return click.Path(path_type=Path)
    if item in (int, float, str):
        return item
    raise TypeError(f"no command-line type for {item!r}")


def _default_note(field: FieldInfo) -> str:
    default = field.default
    if default in (None, (), "") or default is ...:
        return ""
    if isinstance(default, bool):
        return f" [default: {'on' if default else 'off'}]"
    if isinstance(default, tuple):
        return f" [default: {', '.join(map(str, default))}]"
    return f" [default: {default}]"


def spec_flags(
    model: type[BaseModel],
    *,
    sections: Collection[str] = (),
    exclude: Collection[str] = (),
    prefix: tuple[str, ...] = (),
) -> tuple[Flag, ...]:
    """The flags of `model`'s fields, and of the sub-sections named in `sections` (dotted key
    paths in `exclude` are left out)."""
    flags: list[Flag] = []
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        dotted = ".".join(path)
        if dotted in exclude:
            continue
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            if name in sections or dotted in sections:
                flags += spec_flags(section, sections=sections, exclude=exclude, prefix=path)
            continue
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        flag = extra.get("flag")
        if isinstance(flag, str):
            short = extra.get("short")
            names = (short, flag) if isinstance(short, str) else (flag,)
            switch = bool(extra.get("switch"))
            flags.append(Flag(path, names, "_".join(path), field, switch))
    return tuple(flags)


def select(flags: tuple[Flag, ...], *keys: str) -> tuple[Flag, ...]:
    """The flags whose key path starts with one of `keys` (dotted), in that order."""
    return tuple(
        flag for key in keys for flag in flags
        if ".".join(flag.path) == key or ".".join(flag.path).startswith(f"{key}.")
    )  # fmt: skip


def section_flags(model: type[BaseModel], key: str, **kwargs: Any) -> tuple[Flag, ...]:
    """The flags of one section, keyed under `key` (e.g. the `check:` section's)."""
    return spec_flags(model, prefix=(key,), **kwargs)


def add_flags(flags: tuple[Flag, ...]) -> Callable[[F], F]:
    """Decorate a command with `flags` (in their declaration order in --help)."""

    def decorate(function: F) -> F:
        for flag in reversed(flags):
            function = flag.click_option()(function)
        return function

    return decorate


def overrides(flags: tuple[Flag, ...], values: Mapping[str, Any]) -> dict[str, Any]:
    """The flags given (not None, not an empty repeatable) as a nested spec mapping."""
    found: dict[str, Any] = {}
    for flag in flags:
        value = values.get(flag.param)
        if value is None or value == ():
            continue
        block = found
        for key in flag.path[:-1]:
            block = block.setdefault(key, {})
        block[flag.path[-1]] = value
    return found


def section_values(flags: tuple[Flag, ...], values: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The given flags of section `key`, as that section's own mapping."""
    nested = overrides(flags, values)
    section = nested.get(key, {})
    return section if isinstance(section, dict) else {}


def load_section(
    model: type[M], key: str, spec_file: Path | None, flags: tuple[Flag, ...], values: Any
) -> M:
    """Section `key` of the spec file (if any) with the given flags over it."""
    from tritonkit.spec import build_section

    return build_section(model, key, spec_file, section_values(flags, values, key))
