"""The documents every repository carries: README.md (what it is, how to serve and check it),
a Dockerfile for GPU nodes, and tritonkit.json (the spec and the figures that produced it;
its presence marks a folder tritonkit wrote)."""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from typing import Any

from tritonkit import __version__
from tritonkit.repository.contract import RECORD_FILE
from tritonkit.repository.pbtxt import environment
from tritonkit.repository.plan import FileEntry, RepositoryPlan
from tritonkit.spec import DeploymentSpec
from tritonkit.tasks import PRECISION_TOLERANCES
from tritonkit.util.resources import package_versions

_PLATFORMS = {"onnx": "onnxruntime_onnx", "tensorrt": "tensorrt_plan", "python": "python"}
_VERSIONED = ("torch", "transformers", "optimum-onnx", "onnx", "onnxruntime", "tokenizers")


def versions() -> dict[str, str]:
    return {
        "tritonkit": __version__,
        "python": platform.python_version(),
        **package_versions(_VERSIONED),
    }


def documents(
    plan: RepositoryPlan,
    spec: DeploymentSpec,
    labels: tuple[str, ...],
    record: dict[str, Any],
) -> tuple[FileEntry, ...]:
    """README.md, Dockerfile and tritonkit.json for `plan`; `record` holds the figures that
    go into tritonkit.json beside the spec (max_length, buckets, variant, export parity...)."""
    env = environment()
    found = versions()
    common = {"spec": spec, "version": __version__, "deployment": plan.deployment}
    readme = env.get_template("repository_README.md.j2").render(
        **common,
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        repo_hint=str(spec.output),
        ensemble=plan.ensemble,
        models=plan.models,
        platforms=_PLATFORMS,
        labels=labels,
        max_length=plan.deployment.tokenizer.max_length,
        versions=found,
        variant=record.get("variant"),
        notes=plan.notes,
        tolerances=PRECISION_TOLERANCES,
        layout=record.get("layout"),
        buckets=plan.deployment.tokenizer.buckets,
    )
    dockerfile = env.get_template("Dockerfile.j2").render(
        **common, triton_version_hint="2.51.0 = NGC 24.10", tokenizers_version=found["tokenizers"]
    )
    metadata = {"spec": spec.model_dump(mode="json"), "versions": found, **record}
    return (
        FileEntry("README.md", content=readme),
        FileEntry("Dockerfile", content=dockerfile),
        FileEntry(RECORD_FILE, content=json.dumps(metadata, indent=2, sort_keys=False)),
    )
