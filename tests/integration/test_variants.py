"""`generate --variant` repositories served by the real local tritonserver and checked.

int8 outputs are close to PyTorch's, not equal: the checks use the int8 tolerances the README
gives (min cosine 0.98; max probability difference 0.2 with the same top label).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import start_server
from tritonkit.check import BUILTIN_TEXTS, Tolerance, run_check
from tritonkit.pipeline.generate import generate
from tritonkit.server.install import ServerInstall
from tritonkit.server.process import TritonServer
from tritonkit.spec import build_spec

pytestmark = pytest.mark.integration
INT8 = Tolerance(min_cosine=0.98, max_prob_diff=0.2)


def _generate(root: Path, combined: Path, **keys: object) -> dict[str, object]:
    name = str(keys["name"])
    spec = build_spec(None, {**keys, "output": root / name})
    result = generate(spec)
    for folder in result.output.iterdir():
        if folder.is_dir():
            shutil.move(str(folder), combined / folder.name)
    assert result.variant is not None
    readme = (result.output / "README.md").read_text(encoding="utf-8")
    assert f"## Model variant: `{result.variant['name']}`" in readme
    recorded = json.loads((result.output / "tritonkit.json").read_text(encoding="utf-8"))
    assert recorded["variant"]["name"] == result.variant["name"]
    return result.variant


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
    triton_install: ServerInstall,
    tiny_model_dirs: dict[str, Path],
) -> Iterator[tuple[TritonServer, dict[str, dict[str, object]]]]:
    root = tmp_path_factory.mktemp("variant_repos")
    combined = root / "repo"
    combined.mkdir()
    chosen = {
        "tinyauto": _generate(
            root,
            combined,
            model=tiny_model_dirs["feature-extraction"],
            task="feature-extraction",
            name="tinyauto",
            variant="auto",
        ),
        "tinycls": _generate(
            root,
            combined,
            model=tiny_model_dirs["text-classification"],
            task="text-classification",
            name="tinycls",
            variant="int8-dynamic",
        ),
    }
    server = start_server(combined, triton_install)
    yield server, chosen
    server.stop()


def test_auto_records_a_passing_choice(
    served: tuple[TritonServer, dict[str, dict[str, object]]],
) -> None:
    _, chosen = served
    auto = chosen["tinyauto"]
    candidates = {c["name"]: c for c in auto["candidates"]}  # type: ignore[attr-defined]
    assert set(candidates) == {"fp32", "fp32-fused", "int8-dynamic", "int8-static"}
    assert candidates[auto["name"]]["passed"]
    measured = {n: c["speedup"] for n, c in candidates.items() if c["passed"]}
    assert auto["name"] == max(measured, key=lambda n: measured[n] or 0.0)
    assert chosen["tinycls"]["requested"] == "int8-dynamic"


@pytest.mark.parametrize(
    ("name", "task"), [("tinyauto", "feature-extraction"), ("tinycls", "text-classification")]
)
def test_served_variant_passes_check(
    served: tuple[TritonServer, dict[str, dict[str, object]]],
    tiny_model_dirs: dict[str, Path],
    name: str,
    task: str,
) -> None:
    server, _ = served
    model = tiny_model_dirs[task]
    report = run_check(model, name, server.http_url, server.grpc_url, BUILTIN_TEXTS, INT8)
    assert report.passed, report.failures()
    assert len(report.results) == 4 * len(BUILTIN_TEXTS)


@pytest.mark.slow
def test_minilm_auto_deploys_a_fast_variant_that_checks(
    tmp_path: Path, triton_install: ServerInstall, minilm_dir: Path
) -> None:
    """The default model: auto picks by measurement, and the served result holds up."""
    combined = tmp_path / "repo"
    combined.mkdir()
    variant = _generate(
        tmp_path,
        combined,
        model=minilm_dir,
        task="feature-extraction",
        name="minilm",
        variant="auto",
        max_sequence_length=128,
    )
    speedups = {c["name"]: c["speedup"] for c in variant["candidates"]}  # type: ignore[attr-defined]
    assert speedups[variant["name"]] == max(s for s in speedups.values() if s is not None)
    assert speedups[variant["name"]] > 1.0
    server = start_server(combined, triton_install)
    try:
        report = run_check(
            minilm_dir, "minilm", server.http_url, server.grpc_url, BUILTIN_TEXTS, INT8
        )
    finally:
        server.stop()
    assert report.passed, report.failures()
