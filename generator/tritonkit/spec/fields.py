"""How a spec field becomes a command-line flag: its name and help travel with the field.

`option(default, "help", flag="--name")` is a pydantic Field whose description is the flag's
help and whose json_schema_extra names the flag; `tritonkit.cli.options` builds the Click
options from these, so a key, its flag, its default and its choices are written once.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel as _BaseModel
from pydantic import ConfigDict, Field


def option(
    default: Any = ...,
    help: str = "",
    *,
    flag: str | None = None,
    short: str | None = None,
    switch: bool = False,
    **kwargs: Any,
) -> Any:
    """A spec field; `flag` (e.g. "--max-batch-size", with an optional `short` "-b") exposes
    it on the command line. A bool is `--flag/--no-flag`, or only `--flag` with `switch`."""
    extra: dict[str, Any] | None = None
    if flag:
        extra = {"flag": flag, **({"short": short} if short else {})}
        if switch:
            extra["switch"] = True
    return Field(default, description=help or None, json_schema_extra=extra, **kwargs)


class Section(_BaseModel):
    """A spec section: unknown keys are errors, values are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)
