"""Service-level objectives of a load test: `NAME=NUMBER` expressions judged against a run.

Latency objectives (`p50_ms`, `p95_ms`, `p99_ms`) and `error_rate` are upper bounds, `min_rps`
a lower bound on successful requests per second. A latency that cannot be measured (no request
succeeded) misses its objective.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import Field

from tritonkit.errors import LoadtestInputError
from tritonkit.spec.fields import Section

SLO_NAMES = ("p50_ms", "p95_ms", "p99_ms", "error_rate", "min_rps")
_EXPRESSION = re.compile(r"^\s*(\w+)\s*=\s*(\S+)\s*$")


class Measured(Protocol):
    """What an SLO is judged on (a LoadtestResult has these fields)."""

    @property
    def p50_ms(self) -> float | None: ...
    @property
    def p95_ms(self) -> float | None: ...
    @property
    def p99_ms(self) -> float | None: ...
    @property
    def error_rate(self) -> float | None: ...
    @property
    def rps(self) -> float: ...


@dataclass(frozen=True)
class Slo:
    name: str  # one of SLO_NAMES
    threshold: float

    @property
    def expression(self) -> str:
        return f"{self.name}={self.threshold:g}"


@dataclass(frozen=True)
class SloVerdict:
    slo: Slo
    value: float | None  # None: not measurable (no successful request)
    passed: bool

    @property
    def message(self) -> str:
        """e.g. `p95_ms = 73.2 > 50`, `min_rps = 180.5 < 200`, `p95_ms = 4.1 <= 50`."""
        name, limit = self.slo.name, f"{self.slo.threshold:g}"
        if self.value is None:
            return f"{name}: no successful request to measure (limit {limit})"
        value = format_value(name, self.value)
        if name == "min_rps":
            return f"{name} = {value} {'>=' if self.passed else '<'} {limit}"
        return f"{name} = {value} {'<=' if self.passed else '>'} {limit}"


def format_value(name: str, value: float) -> str:
    """Milliseconds and requests/s to 2 decimals, error rates to 6; trailing zeros dropped."""
    text = f"{value:.6f}" if name == "error_rate" else f"{value:.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_slo(expression: str, source: str = "--slo") -> Slo:
    """`p95_ms=50` -> Slo("p95_ms", 50.0); LoadtestInputError naming the fix otherwise."""
    match = _EXPRESSION.match(expression)
    number = _number(match.group(2)) if match else None
    if match is None or match.group(1) not in SLO_NAMES or number is None:
        raise LoadtestInputError(
            f"{source} {expression}: expected NAME=NUMBER with NAME one of {', '.join(SLO_NAMES)}"
        )
    return make_slo(match.group(1), number, f"{source} {expression}")


def make_slo(name: str, threshold: float, source: str) -> Slo:
    if threshold < 0:
        raise LoadtestInputError(f"{source}: {name} must not be negative: give a number >= 0")
    if name == "error_rate" and threshold > 1:
        raise LoadtestInputError(
            f"{source}: error_rate is a fraction of requests: give a number from 0 to 1"
        )
    return Slo(name, threshold)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def merge_slos(base: Iterable[Slo], overrides: Sequence[Slo]) -> tuple[Slo, ...]:
    """`base` (from a spec file) with `overrides` (flags) replacing objectives of the same name."""
    seen: set[str] = set()
    for slo in overrides:
        if slo.name in seen:
            raise LoadtestInputError(f"--slo {slo.name} is given twice: keep one")
        seen.add(slo.name)
    merged = {slo.name: slo for slo in base}
    merged.update((slo.name, slo) for slo in overrides)
    return tuple(sorted(merged.values(), key=lambda slo: SLO_NAMES.index(slo.name)))


def evaluate_slos(result: Measured, slos: Iterable[Slo]) -> list[SloVerdict]:
    """One verdict per objective, in the order given."""
    verdicts = []
    for slo in slos:
        value: float | None = result.rps if slo.name == "min_rps" else getattr(result, slo.name)
        if value is None:
            passed = False
        elif slo.name == "min_rps":
            passed = value >= slo.threshold
        else:
            passed = value <= slo.threshold
        verdicts.append(SloVerdict(slo, value, passed))
    return verdicts


class SloSpec(Section):
    """The `slo:` block of a load test spec: the same names as `--slo`."""

    p50_ms: float | None = Field(default=None, ge=0, description="Median latency bound (ms).")
    p95_ms: float | None = Field(default=None, ge=0, description="p95 latency bound (ms).")
    p99_ms: float | None = Field(default=None, ge=0, description="p99 latency bound (ms).")
    error_rate: float | None = Field(
        default=None, ge=0, le=1, description="Largest share of failed requests."
    )
    min_rps: float | None = Field(
        default=None, ge=0, description="Smallest rate of successful requests per second."
    )

    def slos(self) -> tuple[Slo, ...]:
        return tuple(
            Slo(name, float(value))
            for name in SLO_NAMES
            if (value := getattr(self, name)) is not None
        )
