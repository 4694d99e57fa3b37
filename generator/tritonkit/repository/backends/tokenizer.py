"""The tokenizer model of a deployment: Triton's Python backend running `runtime/tokenizer.py`."""

from __future__ import annotations

from collections.abc import Sequence

from tritonkit.repository.layout import ServingLayout
from tritonkit.repository.pbtxt import DynamicBatching, ModelPlan, Tensor
from tritonkit.runtime.tokenizer import TokenizerParams
from tritonkit.spec import DeploymentSpec

TEXT = Tensor("TEXT", "TYPE_STRING", (1,))
OFFSETS = "offsets"


def tokenizer_batching(spec: DeploymentSpec, layout: ServingLayout) -> DynamicBatching | None:
    """The tokenizer's batcher, with its own (short) queue delay: every request is TEXT [n, 1],
    so whatever queued while it was busy forms one batch, tokenized in one call."""
    delay = spec.dynamic_batching.tokenizer_max_queue_delay_us
    return DynamicBatching(delay) if layout.tokenizer_batching else None


def tokenizer_model_plan(
    name: str,
    token_inputs: Sequence[str],
    params: TokenizerParams,
    *,
    max_batch_size: int,
    instance_count: int,
    dynamic_batching: DynamicBatching | None,
) -> ModelPlan:
    """TEXT in; one int64 [-1] tensor per model input (and offsets [-1, 2]) out."""
    outputs = [Tensor(name_, "TYPE_INT64", (-1,)) for name_ in token_inputs]
    if params.emit_offsets:
        outputs.append(Tensor(OFFSETS, "TYPE_INT64", (-1, 2)))
    return ModelPlan(
        name=name,
        kind="python",
        description="tokenizer (Python backend: tokenizers + numpy); batched, pads each request",
        max_batch_size=max_batch_size,
        inputs=(TEXT,),
        outputs=tuple(outputs),
        instance_count=instance_count,
        dynamic_batching=dynamic_batching,
        parameters=params.to_parameters(),
    )
