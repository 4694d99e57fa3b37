"""The fp32-fused and fp16 variants: ONNX Runtime's transformer optimizer on the export."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tritonkit.errors import OptimizeError
from tritonkit.tasks.graph import POSTPROCESS_PREFIX
from tritonkit.variants.quantize import split_skip_layernorm

FUSED_OPS = ("EmbedLayerNormalization", "Attention", "SkipLayerNormalization", "BiasGelu")


@dataclass
class Build:
    """A variant under construction in a temporary folder."""

    name: str
    path: Path
    steps: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _optimize(source: Path, device: str) -> tuple[Any, Build]:
    """ONNX Runtime's transformer optimizer (Python fusions only, so the graph stays portable)."""
    from onnxruntime.transformers.optimizer import optimize_model

    build = Build("fp32-fused", source)
    try:
        optimized = optimize_model(
            str(source),
            model_type="bert",
            num_heads=0,
            hidden_size=0,
            opt_level=0,
            use_gpu=device == "gpu",
        )
    except Exception as e:  # the optimizer raises anything on graphs it does not understand
        detail = str(e).splitlines()[0][:160] if str(e) else ""
        raise OptimizeError(
            f"{source}: ONNX Runtime's transformer optimizer failed ({type(e).__name__}: "
            f"{detail}): deploy --variant fp32, or leave the fused variants out of --variants"
        ) from e
    stats = optimized.get_fused_operator_statistics()
    counts = {op: int(stats.get(op, 0)) for op in FUSED_OPS}
    if not any(counts.values()):
        raise OptimizeError(
            f"{source}: ONNX Runtime's transformer optimizer fused nothing in this graph "
            "(no Attention, LayerNorm or Gelu pattern): deploy --variant fp32, or leave the "
            "fused variants out of --variants"
        )
    build.details["fused_operators"] = counts
    build.steps.append("onnxruntime.transformers optimizer (model_type bert, opt_level 0)")
    if counts["Attention"] == 0:
        build.warnings.append(
            "Attention did not fuse: the graph keeps MatMul/Softmax attention (ONNX Runtime's "
            "optimizer fuses BERT-style attention; measured here, DistilBERT, MPNet and "
            "DeBERTa-v2 exports do not fuse, nor do exports made with SDPA or dynamo)"
        )
    return optimized, build


def fuse(source: Path, target: Path, device: str) -> Build:
    """The fp32-fused variant; on CPU its SkipLayerNormalization nodes are split."""
    optimized, build = _optimize(source, device)
    if device == "cpu":
        split = split_skip_layernorm(optimized.model)
        if split:
            build.steps.append(
                f"{split} SkipLayerNormalization -> Sum + LayerNormalization "
                "(ONNX Runtime's CPU SkipLayerNormalization kernel is ~6x slower)"
            )
    optimized.save_model_to_file(str(target))
    build.path = target
    return build


def to_fp16(source: Path, target: Path) -> Build:
    """GPU fusions, then float16 everywhere except the I/O and tritonkit's post-processing."""
    optimized, build = _optimize(source, "gpu")
    post = [
        n.name for n in optimized.model.graph.node if n.name.startswith(f"{POSTPROCESS_PREFIX}/")
    ]
    optimized.convert_float_to_float16(keep_io_types=True, node_block_list=post)
    optimized.save_model_to_file(str(target))
    build.name, build.path = "fp16", target
    build.steps.append("convert_float_to_float16(keep_io_types=True), post-processing kept fp32")
    return build
