"""`tritonkit check` as a library call: the spec's check section -> one report."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tritonkit.check import BUILTIN_TEXTS, CheckReport, run_check, tolerance_for
from tritonkit.model.default import default_model_dir
from tritonkit.spec import CheckSpec, build_section, read_spec_file
from tritonkit.util.texts import read_texts


def check_deployment(
    spec_file: Path | None,
    flags: Mapping[str, Any],
    model_dir: Path | None = None,
    repository: Path | None = None,
) -> CheckReport:
    """Check the deployment the spec's `check:` section (with flags over it) points at."""
    section = build_section(CheckSpec, "check", spec_file, flags)
    if model_dir is None and spec_file is not None:
        model = read_spec_file(spec_file).get("model")
        model_dir = Path(model) if isinstance(model, str) else None
    model_dir = model_dir or default_model_dir()
    host, _, port = section.url.rpartition(":")
    grpc_url = section.grpc_url or f"{host}:{int(port) + 1}"
    texts = [*BUILTIN_TEXTS, *section.texts, *(read_texts(section.file) if section.file else [])]
    tolerance = tolerance_for(
        section.precision, section.min_cosine, section.max_prob_diff, repository
    )
    return run_check(
        model_dir, section.name, section.url, grpc_url, texts, tolerance, repository=repository
    )
