"""`tritonkit optimize` and `tritonkit bench` as library calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tritonkit.bench.report import model_label, write
from tritonkit.bench.run import BenchConfig, BenchProgress, BenchResult, run_bench, speed_score
from tritonkit.model.default import default_model_dir
from tritonkit.model.inspect import inspect_model_dir
from tritonkit.spec import DeploymentSpec
from tritonkit.util.cpu import CpuInfo, cpu_info
from tritonkit.variants.accuracy import read_eval_set
from tritonkit.variants.build import Variant, build_variants, built_for, choose, variant_names

Progress = Callable[[str], None]


def optimize(
    spec: DeploymentSpec, output: Path, progress: Progress = lambda _: None
) -> list[Variant]:
    """Build and gate the variants the spec's optimize section names into output/VARIANT/."""
    return build_variants(spec.model, spec.task, output, spec.optimize, spec.device, progress)


@dataclass
class BenchRun:
    variants: list[Variant]  # every variant used (built or reused)
    measured: list[Variant]  # the CPU variants benchmarked
    result: BenchResult
    cpu: CpuInfo
    chosen: str  # what `generate --variant auto` would deploy
    reports: dict[str, Path]


def bench(
    spec: DeploymentSpec,
    output: Path,
    config: BenchConfig,
    *,
    variants_dir: Path | None = None,
    rebuild: bool = False,
    progress: Progress = lambda _: None,
    bar: BenchProgress | None = None,
) -> BenchRun:
    """PyTorch eager and every variant side by side; reports in output/bench.{md,json,png}."""
    where = variants_dir or output / "variants"
    info = inspect_model_dir(spec.model, spec.task)
    kept = [built_for(where / n, info) for n in variant_names(spec.optimize, spec.device)]
    if rebuild or None in kept:
        variants = optimize(spec, where, progress)
    else:
        variants = [v for v in kept if v is not None]
    cpu = cpu_info()
    texts = read_eval_set(spec.optimize.eval_file, info.task, info.labels).texts
    measured = [v for v in variants if v.device == "cpu"]
    result = run_bench(info, measured, texts, config, bar)
    chosen = choose(measured, "cpu", speed_score(result), "auto").name
    title = f"{model_label(info.model_dir)} ({info.task}) on {cpu.model}, {config.threads} threads"
    reports = write(result, measured, cpu, output, title, chosen)
    return BenchRun(variants, measured, result, cpu, chosen, reports)


def model_or_default(model_dir: Path | None) -> Path:
    return model_dir or default_model_dir()
