"""`generate --variant`: build (or reuse) the variants, gate them, pick one, deploy its model.

`auto` deploys the fastest variant that passed the accuracy gate for the target device. On CPU
"fastest" is measured here and now: a short interleaved benchmark (fixed-length sequences of
min(128, max length) tokens, batch 1 and min(32, max_batch_size)) against PyTorch eager. A GPU
target cannot be measured on a machine without one, so there the rule is fp16 > fp32-fused > fp32,
first that passes; the README says which rule chose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tritonkit.model.inspect import ModelInfo
from tritonkit.spec import DEVICE_VARIANTS, DeploymentSpec, OptimizeSpec
from tritonkit.variants.accuracy import read_eval_set
from tritonkit.variants.build import Variant, build_variants, built_for, choose, variant_names

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DeployedVariant:
    onnx: Path  # the chosen variant's model
    record: dict[str, Any]  # what README.md and tritonkit.json say about the choice


def options_for(spec: DeploymentSpec, max_length: int) -> OptimizeSpec:
    """The spec's optimize section for what `spec.variant` needs."""
    names = (
        spec.optimize.variants or DEVICE_VARIANTS[spec.device]
        if spec.variant == "auto"
        else (spec.variant,)
    )
    return spec.optimize.model_copy(update={"variants": tuple(names), "max_length": max_length})


def _variants(
    spec: DeploymentSpec, info: ModelInfo, options: OptimizeSpec, work: Path, progress: Progress
) -> list[Variant]:
    where = spec.optimize.variants_dir or work
    names = variant_names(options, spec.device)
    kept = {n: built_for(where / n, info) for n in names}
    missing = tuple(n for n, v in kept.items() if v is None)
    built = {}
    if missing:
        fresh = options.model_copy(update={"variants": missing})
        built = {
            v.name: v
            for v in build_variants(info.model_dir, info.task, where, fresh, spec.device, progress)
        }
    else:
        progress(f"reusing the variants in {where}")
    return [kept[n] or built[n] for n in names]


def _speed(
    info: ModelInfo,
    spec: DeploymentSpec,
    variants: list[Variant],
    max_length: int,
    threads: int,
    progress: Progress,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    from tritonkit.bench.report import rows
    from tritonkit.bench.run import BenchConfig, run_bench, speed_score

    passing = [v for v in variants if v.passed and v.device == "cpu"]
    if len(passing) < 2:
        return {}, []
    progress(f"benchmarking {', '.join(v.name for v in passing)} against PyTorch")
    texts = read_eval_set(spec.optimize.eval_file, info.task, info.labels).texts
    config = BenchConfig(
        sequence_lengths=(min(128, max_length),),
        batch_sizes=tuple(sorted({1, min(32, spec.max_batch_size)})),
        modes=("fixed",),
        threads=threads,
        rounds=3,
        round_seconds=0.3,
        warmup=2,
        measure_rss=False,
    )
    result = run_bench(info, passing, texts, config)
    figures = [
        {k: row[k] for k in ("batch_size", "variant", "p50_ms", "throughput_seq_s")}
        | {"sequence_length": row["sequence_length"], "speedup": row["speedup_vs_pytorch"]}
        for row in rows(result, passing)
    ]
    return speed_score(result), figures


def deploy_variant(
    spec: DeploymentSpec,
    info: ModelInfo,
    max_length: int,
    work: Path,
    progress: Progress = lambda _: None,
) -> DeployedVariant:
    """The chosen variant's model (built under `work` unless optimize.variants_dir holds it);
    raises AccuracyGateError if none may be deployed."""
    from tritonkit.util.cpu import cpu_info

    options = options_for(spec, max_length)
    threads = options.threads or cpu_info().cores
    variants = _variants(spec, info, options, work / "variants", progress)
    speed: dict[str, float] = {}
    figures: list[dict[str, Any]] = []
    if spec.variant == "auto" and spec.device == "cpu":
        speed, figures = _speed(info, spec, variants, max_length, threads, progress)
    chosen = choose(variants, spec.device, speed, spec.variant)
    return DeployedVariant(
        chosen.onnx_path, _record(spec, chosen, variants, speed, figures, threads)
    )


def _record(
    spec: DeploymentSpec,
    chosen: Variant,
    variants: list[Variant],
    speed: dict[str, float],
    figures: list[dict[str, Any]],
    threads: int,
) -> dict[str, Any]:
    if spec.variant != "auto":
        why = f"asked for with --variant {spec.variant}; it passed the accuracy gate"
    elif spec.device == "gpu":
        why = "auto for gpu: no GPU here to measure on, so fp16 > fp32-fused > fp32, first to pass"
    elif speed:
        why = (
            f"auto: the fastest variant that passed the accuracy gate (mean speed-up over "
            f"PyTorch {speed[chosen.name]:.2f}x in a benchmark on this machine)"
        )
    else:
        why = "auto: the only variant that passed the accuracy gate"
    return {
        "name": chosen.name,
        "requested": spec.variant,
        "why": why,
        "accuracy": chosen.accuracy.as_dict(),
        "eval_set": chosen.record.get("eval_set"),
        "steps": chosen.record["steps"],
        "warnings": chosen.record["warnings"],
        "preset": chosen.record.get("preset"),
        "cpu": chosen.record["cpu"],
        "threads": threads,
        "benchmark": figures,
        "candidates": [
            {
                "name": v.name,
                "passed": v.passed,
                "reason": v.accuracy.reason,
                "speedup": speed.get(v.name),
            }
            for v in variants
        ],
    }
