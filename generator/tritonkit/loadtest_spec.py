"""The `loadtest:` section of a deployment spec: defaults and SLOs of `tritonkit loadtest`.

Read from the same YAML file as the deployment; `name` and `model_dir` default to the file's
top-level `name` and `model`. Relative paths are relative to the file. Flags override keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tritonkit.errors import SpecError
from tritonkit.loadtest import DURATION_HINT, LoadtestConfig, duration_seconds
from tritonkit.slo import Slo, SloSpec, merge_slos
from tritonkit.spec import DEFAULT_NAME, read_spec_file

_PATH_KEYS = ("texts", "model_dir", "output")


class LoadtestSpec(BaseModel):
    """Every `tritonkit loadtest` flag as a key (`--slo` as the `slo:` mapping)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = "127.0.0.1:8000"
    grpc_url: str | None = None  # default: the url's port + 1
    metrics_url: str | None = None  # default: the url's host, port 8002
    name: str = DEFAULT_NAME
    protocol: Literal["http", "grpc"] = "http"
    texts: Path | None = None  # default: the corpus shipped with tritonkit
    batch_size: int = Field(default=1, ge=1, le=4096)
    shape: Literal["users", "step", "rate"] = "users"
    users: int = Field(default=4, ge=1, le=10_000)
    spawn_rate: float | None = Field(default=None, gt=0)
    duration: str = "20s"
    rate: float | None = Field(default=None, gt=0)
    step_users: int | None = Field(default=None, ge=1)
    step_time: str = "10s"
    check_fraction: float = Field(default=0.0, ge=0, le=1)
    model_dir: Path | None = None
    output: Path = Path("loadtest-report")
    slo: SloSpec = SloSpec()

    @field_validator("duration", "step_time", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> str:
        text = str(value)
        if isinstance(value, bool) or duration_seconds(text) is None:
            raise ValueError(DURATION_HINT)
        return text

    def to_config(self, slos: Sequence[Slo] = ()) -> LoadtestConfig:
        """The run's config; `slos` (from flags) replace the spec's objectives of the same name."""
        return LoadtestConfig(
            url=self.url,
            name=self.name,
            output=self.output,
            protocol=self.protocol,
            grpc_url=self.grpc_url,
            metrics_url=self.metrics_url,
            texts_file=self.texts,
            batch_size=self.batch_size,
            shape=self.shape,
            users=self.users,
            spawn_rate=self.spawn_rate,
            duration_s=duration_seconds(self.duration) or 0.0,
            rate=self.rate,
            step_users=self.step_users,
            step_time_s=duration_seconds(self.step_time) or 0.0,
            check_fraction=self.check_fraction,
            model_dir=self.model_dir,
            slos=merge_slos(self.slo.slos(), slos),
        )


def read_loadtest_section(path: Path) -> dict[str, Any]:
    """The file's `loadtest:` mapping with paths resolved and the top-level defaults filled."""
    data = read_spec_file(path)  # resolves the top-level model/output paths
    section = data.get("loadtest") or {}
    if not isinstance(section, dict):
        raise SpecError(f"{path}: loadtest: expected a mapping of keys to values")
    section = dict(section)
    base = path.resolve().parent
    for key in _PATH_KEYS:
        if isinstance(section.get(key), str):
            section[key] = str((base / section[key]).resolve())
    if isinstance(data.get("name"), str):
        section.setdefault("name", data["name"])
    if isinstance(data.get("model"), str):
        section.setdefault("model_dir", data["model"])
    return section


def build_loadtest_spec(
    path: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> LoadtestSpec:
    """The spec file's `loadtest:` section (optional) + flag overrides (None: not given)."""
    data = read_loadtest_section(path) if path is not None else {}
    data.update({key: value for key, value in (overrides or {}).items() if value is not None})
    try:
        return LoadtestSpec.model_validate(data)
    except ValidationError as e:
        raise SpecError(_format_errors(e, path)) from None


def _format_errors(error: ValidationError, path: Path | None) -> str:
    """`file: loadtest.key: message` lines, or `--flag: message` when no file was given."""
    lines = []
    for item in error.errors():
        loc = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key: remove it or check its spelling"
        where = f"{path}: loadtest.{loc}" if path is not None else f"--{loc.replace('_', '-')}"
        lines.append(f"{where}: {message}")
    return "\n".join(lines)
