"""Optimization variants of one model, each gated on accuracy against fp32 PyTorch.

    fp32          the plain export (export_model: post-processing in the graph, parity-checked)
    fp32-fused    + ONNX Runtime's transformer optimizer (Attention, SkipLayerNormalization,
                  BiasGelu, EmbedLayerNormalization); on CPU also split_skip_layernorm
    fp16          fused for GPU, float16 weights and compute, float32 inputs/outputs (GPU target)
    int8-dynamic  fused + SmoothQuant + per-channel int8 weights, activations quantized at run time
    int8-static   fused + SmoothQuant + QDQ int8 with calibrated activation ranges
    int8-qdq      the unfused export + symmetric int8 QDQ (TensorRT's int8 model, trt-int8's
                  source; gated here on ONNX Runtime CPU like every variant)

Each variant is a folder VARIANT/ with model.onnx and variant.json (how it was made: steps,
options, fused operator counts, tool versions, CPU; and its accuracy figures). A folder is built
beside its final place and renamed into it only when complete.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from tritonkit.errors import AccuracyGateError, OptimizeError
from tritonkit.model.export import export_model
from tritonkit.model.inspect import ModelInfo, inspect_model_dir
from tritonkit.model.runners import encode, load_tokenizer
from tritonkit.spec import DEVICE_VARIANTS, TENSORRT_INT8_VARIANT, OptimizeSpec
from tritonkit.util.cpu import CpuInfo, cpu_info, quant_preset
from tritonkit.util.resources import package_versions
from tritonkit.util.texts import read_texts
from tritonkit.variants.accuracy import (
    EVAL_BATCH_SIZE,
    SENTIMENT_TRAIN,
    Accuracy,
    prepare_reference,
    read_eval_set,
    score,
)
from tritonkit.variants.fusion import Build, fuse, to_fp16
from tritonkit.variants.quantize import (
    Feeds,
    after_activation,
    layernorm_fed,
    quantize_dynamic_int8,
    quantize_qdq_int8,
    quantize_static_int8,
    smooth,
)

_VERSIONED = ("torch", "transformers", "optimum-onnx", "onnx", "onnxruntime")
TENSORRT_INT8 = TENSORRT_INT8_VARIANT
_UNFUSED = ("fp32", "fp16", TENSORRT_INT8)  # variants that need no fused graph

Progress = Callable[[str], None]


def variant_names(options: OptimizeSpec, device: str) -> tuple[str, ...]:
    """The variants to build: those asked for, or every one for the device."""
    names = options.variants or DEVICE_VARIANTS[device]
    if device == "gpu" and any(n.startswith("int8") and n != TENSORRT_INT8 for n in names):
        raise OptimizeError(
            "variants int8-dynamic/int8-static run on CPU only (ONNX Runtime's integer "
            "kernels): leave them out for --device gpu"
        )
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class Variant:
    name: str
    onnx_path: Path
    record: dict[str, Any]
    accuracy: Accuracy

    @property
    def passed(self) -> bool:
        return self.accuracy.passed

    @property
    def device(self) -> str:
        return str(self.record["device"])


def _versions() -> dict[str, str]:
    return package_versions(_VERSIONED)


def _encode(info: ModelInfo, texts: Sequence[str], max_length: int) -> list[Feeds]:
    """One batch per text, all padded to the longest (histogram calibrators need one shape)."""
    arrays = encode(load_tokenizer(info.model_dir), info, texts, max_length)
    return [
        {name: array[row : row + 1] for name, array in arrays.items()}
        for row in range(len(arrays["input_ids"]))
    ]


def _int8(
    name: str,
    fused: Path,
    target: Path,
    options: OptimizeSpec,
    calibration: list[Feeds],
    cpu: CpuInfo,
) -> Build:
    preset = quant_preset(options.quantization_preset, cpu)
    reduce_range = preset.reduce_range if options.reduce_range is None else options.reduce_range
    build = Build(name, target)
    build.details["preset"] = {
        "name": preset.name,
        "weights": "int8, per channel",
        "activations": "uint8",
        "reduce_range": reduce_range,
        "why": preset.why,
    }
    model = onnx.load(str(fused))
    layernorm_nodes = layernorm_fed(model)
    source = target.with_name("smoothed.onnx")
    if options.smooth_alpha > 0:
        count = smooth(model, calibration, options.smooth_alpha)
        build.steps.append(f"SmoothQuant alpha {options.smooth_alpha} on {count} nodes")
    onnx.save(model, str(source))
    if name == "int8-dynamic":
        quantize_dynamic_int8(source, target, reduce_range)
        build.steps.append(
            f"quantize_dynamic: per-channel int8 MatMul/Attention weights (preset {preset.name})"
        )
    else:
        count = quantize_static_int8(
            source,
            target,
            calibration,
            method=options.calibration_method,
            op_types=options.calibration_op_types,
            nodes=layernorm_nodes if options.static_scope == "layernorm-inputs" else None,
            reduce_range=reduce_range,
        )
        build.steps.append(
            f"quantize_static QDQ: {count} {'/'.join(options.calibration_op_types)} nodes "
            f"({options.static_scope}), {options.calibration_method} calibration"
        )
    source.unlink()
    return build


def _qdq(source: Path, target: Path, options: OptimizeSpec, calibration: list[Feeds]) -> Build:
    """SmoothQuant (plain Mul nodes) on the LayerNorm-fed MatMuls, then symmetric int8 QDQ on
    every constant-weight MatMul but those after the FFN activation (scope "all": every one)."""
    build = Build(TENSORRT_INT8, target)
    model = onnx.load(str(source))
    for node in model.graph.node:
        node.name = node.name or node.output[0]
    skipped = after_activation(model) if options.static_scope != "all" else []
    if options.smooth_alpha > 0:
        count = smooth(model, calibration, options.smooth_alpha)
        build.steps.append(f"SmoothQuant alpha {options.smooth_alpha} on {count} nodes")
    smoothed = target.with_name("smoothed.onnx")
    onnx.save(model, str(smoothed))
    chosen = [n.name for n in model.graph.node if n.op_type in ("MatMul", "Gemm")]
    count = quantize_qdq_int8(
        smoothed, target, calibration, options.calibration_method,
        [n for n in chosen if n not in skipped],
    )  # fmt: skip
    smoothed.unlink()
    build.steps.append(
        f"quantize_static QDQ for TensorRT: {count} MatMul/Gemm nodes ({len(skipped)} after the "
        "FFN activation left in float), int8 activations and weights, symmetric, weights per "
        f"channel, {options.calibration_method} calibration"
    )
    build.details["preset"] = {
        "name": "tensorrt",
        "weights": "int8, per channel, symmetric",
        "activations": "int8, symmetric",
        "reduce_range": False,
        "why": "onnx-tensorrt imports only symmetric signed int8 Q/DQ",
    }
    return build


def _record(
    build: Build,
    info: ModelInfo,
    options: OptimizeSpec,
    device: str,
    cpu: CpuInfo,
    seconds: float,
) -> dict[str, Any]:
    return {
        "variant": build.name,
        "task": info.task,
        "model_dir": str(info.model_dir.resolve()),
        "device": "gpu" if build.name in ("fp16", TENSORRT_INT8) else device,
        "steps": build.steps,
        **build.details,
        "warnings": build.warnings,
        "options": {
            "calibration_file": str(options.calibration_file or SENTIMENT_TRAIN),
            "calibration_method": options.calibration_method,
            "calibration_op_types": list(options.calibration_op_types),
            "static_scope": options.static_scope,
            "quantization_preset": options.quantization_preset,
            "reduce_range": options.reduce_range,
            "smooth_alpha": options.smooth_alpha,
        },
        "size_bytes": build.path.stat().st_size,
        "build_seconds": round(seconds, 2),
        "versions": _versions(),
        "cpu": cpu.as_dict(),
    }


def _publish(staged: Path, final: Path) -> None:
    """Replace `final` by the complete `staged` folder."""
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    staged.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def load_variant(folder: Path) -> Variant:
    """A variant folder written by build_variants."""
    record_path = folder / "variant.json"
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        accuracy = Accuracy.from_dict(record["accuracy"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise OptimizeError(
            f"{record_path}: missing or not a tritonkit variant record ({type(e).__name__}): "
            "rebuild the variants with `tritonkit optimize`"
        ) from None
    return Variant(folder.name, folder / "model.onnx", record, accuracy)


def build_variants(
    model_dir: Path,
    task: str,
    out_dir: Path,
    options: OptimizeSpec,
    device: str = "cpu",
    progress: Progress = lambda _: None,
) -> list[Variant]:
    """Build, gate and write every variant of `options` into out_dir/VARIANT/."""
    names = variant_names(options, device)
    info = inspect_model_dir(model_dir, task)
    max_length = min(options.max_length or 128, info.max_length)
    eval_set = read_eval_set(options.eval_file, task, info.labels)
    needs_int8 = any(n.startswith("int8") for n in names)
    texts = read_texts(options.calibration_file or SENTIMENT_TRAIN) if needs_int8 else []
    cpu = cpu_info()
    threads = options.threads or cpu.cores
    out_dir.mkdir(parents=True, exist_ok=True)
    progress(f"PyTorch reference on {len(eval_set.texts)} evaluation texts")
    reference = prepare_reference(info, eval_set, max_length)
    calibration = _encode(info, texts, max_length) if needs_int8 else []
    with tempfile.TemporaryDirectory(prefix=".work-", dir=out_dir) as tmp:
        work = Path(tmp)
        built = _build_all(names, info, options, device, calibration, cpu, work, progress)
        results = []
        for name in names:
            build, seconds = built[name]
            progress(f"accuracy gate: {name}")
            accuracy = score(build.path, info, reference, options.max_accuracy_drop, threads)
            record = _record(build, info, options, device, cpu, seconds)
            record["accuracy"] = accuracy.as_dict()
            record["eval_set"] = {
                "source": eval_set.source,
                "texts": len(eval_set.texts),
                "labelled": eval_set.labels is not None,
                "batch_size": EVAL_BATCH_SIZE,
                "max_length": max_length,
            }
            _publish_variant(work / f"{name}.staged", out_dir / name, build.path, record)
            results.append(Variant(name, out_dir / name / "model.onnx", record, accuracy))
    return results


def _build_all(
    names: Sequence[str],
    info: ModelInfo,
    options: OptimizeSpec,
    device: str,
    calibration: list[Feeds],
    cpu: CpuInfo,
    work: Path,
    progress: Progress,
) -> dict[str, tuple[Build, float]]:
    """Every variant's model under `work`, with its build time: fp32 first, then the fused
    graph the others start from."""
    progress("exporting fp32 (optimum-onnx, parity vs PyTorch)")
    started = time.perf_counter()
    export = export_model(info.model_dir, info.task, work / "fp32", atol=1e-4)
    fp32 = Build(
        "fp32",
        export.onnx_path,
        [f"optimum-onnx export, opset {export.opset}, post-processing in the graph"],
        {"export_max_abs_diff": export.max_abs_diff},
    )
    built = {"fp32": (fp32, time.perf_counter() - started)}
    if any(n not in _UNFUSED for n in names):
        progress("fusing (ONNX Runtime transformer optimizer)")
        started = time.perf_counter()
        (work / "fp32-fused").mkdir()
        fused = fuse(export.onnx_path, work / "fp32-fused" / "model.onnx", device)
        fused.steps[:0] = fp32.steps
        built["fp32-fused"] = (fused, time.perf_counter() - started)
    for name in names:
        if name in built:
            continue
        started = time.perf_counter()
        folder = work / name
        folder.mkdir()
        progress(f"building {name}")
        if name == "fp16":
            build = to_fp16(export.onnx_path, folder / "model.onnx")
            build.steps[:0] = fp32.steps
        elif name == TENSORRT_INT8:
            build = _qdq(export.onnx_path, folder / "model.onnx", options, calibration)
            build.steps[:0] = fp32.steps
        else:
            fused_build = built["fp32-fused"][0]
            build = _int8(name, fused_build.path, folder / "model.onnx", options, calibration, cpu)
            build.steps[:0] = fused_build.steps
            build.details["fused_operators"] = fused_build.details["fused_operators"]
            build.warnings[:0] = fused_build.warnings
        built[name] = (build, time.perf_counter() - started)
    return built


def _publish_variant(staged: Path, final: Path, model: Path, record: dict[str, Any]) -> None:
    staged.mkdir()
    shutil.copyfile(model, staged / "model.onnx")
    (staged / "variant.json").write_text(json.dumps(record, indent=2) + "\n", "utf-8")
    _publish(staged, final)


def built_for(folder: Path, info: ModelInfo) -> Variant | None:
    """The variant in `folder` if it was built from the same model folder for the same task."""
    if not (folder / "variant.json").is_file():
        return None
    variant = load_variant(folder)
    same_model = variant.record.get("model_dir") == str(info.model_dir.resolve())
    return variant if same_model and variant.record.get("task") == info.task else None


def choose(
    variants: Sequence[Variant],
    device: str,
    speed: dict[str, float],
    requested: str,
) -> Variant:
    """The deployed variant: `requested`, or for "auto" the fastest that passed the gate.

    `speed` maps variant names to a figure where larger is faster (the benchmark's mean
    speed-up); variants without one are ranked by DEVICE_VARIANTS order (later is faster).
    """
    by_name = {v.name: v for v in variants}
    if requested != "auto":
        if requested not in by_name:
            raise OptimizeError(f"variant '{requested}' was not built: add it to --variants")
        variant = by_name[requested]
        if not variant.passed:
            raise AccuracyGateError(
                f"variant {requested} failed the accuracy gate ({variant.accuracy.reason}): "
                "deploy another --variant, or raise --max-accuracy-drop if that loss is acceptable"
            )
        return variant
    order = DEVICE_VARIANTS[device]
    candidates = [v for v in variants if v.passed and v.name in order]
    if not candidates:
        reasons = "; ".join(f"{v.name}: {v.accuracy.reason}" for v in variants)
        raise AccuracyGateError(f"no variant passed the accuracy gate for {device}: {reasons}")
    return max(candidates, key=lambda v: (speed.get(v.name, 0.0), order.index(v.name)))
