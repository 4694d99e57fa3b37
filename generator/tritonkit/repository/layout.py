"""How many instances of each model Triton runs, and how many ONNX Runtime threads each, from
the target: the `auto` values of the spec's `instances` section, and why.

CPU (measured with `tritonkit tune` and `make bench-serve`, README "Fast by default"): one model
instance per core with one intra-op thread each. Independent single-thread sessions keep every
core busy on their own requests; one instance with a thread pool over every core pays the
pool's hand-offs on every short text, and its spinning threads compete with the tokenizer and
Triton's own threads for the same cores (at 4 clients it served fewer texts than at 1).

GPU: one model instance per GPU (`count: 1` of KIND_GPU is one per visible GPU): the device runs
a batch in a few milliseconds, and a second instance only adds a context and its memory. The
tokenizer is then the ceiling: a Python instance is one core (the GIL), so it gets one instance
per core but one, which is left to Triton's HTTP/gRPC front-ends, the ensemble scheduler and the
GPU instance's host thread. ONNX Runtime's CPU thread pool serves only the few host-side ops
there: one thread, so that it does not spin on the tokenizers' cores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tritonkit.spec import DeploymentSpec
from tritonkit.util.cpu import cpu_info

# CPU targets: one tokenizer instance per this many cores. The served tokenizer alone (batched,
# one instance) tokenizes several times what one core of int8 MiniLM encodes (README "Fast by
# default"), so a small share of instances keeps up; each extra one is a process and its memory.
CORES_PER_CPU_TOKENIZER = 8


@dataclass(frozen=True)
class ServingLayout:
    """The resolved instance layout of a deployment and the reason for each number."""

    device: str
    cpus: int  # the target's cores
    cpus_from: str  # where `cpus` came from
    model_instances: int
    threads: int  # ONNX Runtime intra-op threads per model instance; 0: ONNX Runtime's default
    tokenizer_instances: int
    model_batching: bool  # Triton's dynamic batcher on the model
    tokenizer_batching: bool
    why: dict[str, str]

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


def _target_cpus(spec: DeploymentSpec) -> tuple[int, str]:
    if spec.target.cpus is not None:
        return spec.target.cpus, "the spec's target.cpus"
    cores = cpu_info().cores
    return cores, "this machine's usable CPUs (os.sched_getaffinity)"


def _model_instances(spec: DeploymentSpec, cpus: int) -> tuple[int, str]:
    if spec.instances.model != "auto":
        return spec.instances.model, "set in the spec (instances.model)"
    if spec.device == "gpu":
        return 1, "auto: one per GPU (KIND_GPU count 1 runs one instance on each visible GPU)"
    count = min(cpus, 64)
    return count, f"auto: one per core of the target ({cpus}), each on its own requests"


def _threads(spec: DeploymentSpec, cpus: int, instances: int) -> tuple[int, str]:
    if spec.instances.threads != "auto":
        return spec.instances.threads, "set in the spec (instances.threads)"
    if spec.device == "gpu":
        return 1, "auto: 1 on GPU (only host-side ops run on ONNX Runtime's CPU pool)"
    threads = max(1, cpus // instances)
    return threads, (
        f"auto: the target's {cpus} cores shared by {instances} instance(s), no oversubscription"
    )


def _tokenizer_instances(spec: DeploymentSpec, cpus: int) -> tuple[int, str]:
    if spec.instances.tokenizer != "auto":
        return spec.instances.tokenizer, "set in the spec (instances.tokenizer)"
    if spec.device == "gpu":
        count = max(1, min(cpus - 1, 64))
        return count, (
            f"auto: one per core of the target ({cpus}) but one (left to Triton's front-ends): "
            "on a GPU the Python tokenizer, one core per instance, is the ceiling"
        )
    count = max(1, min(-(-cpus // CORES_PER_CPU_TOKENIZER), 64))
    return count, (
        f"auto: one per {CORES_PER_CPU_TOKENIZER} cores of the target ({cpus}); each instance "
        "tokenizes a whole dynamic batch in one call"
    )


def _model_batching(spec: DeploymentSpec, buckets: tuple[int, ...]) -> tuple[bool, str]:
    enabled = spec.dynamic_batching.enabled
    if enabled != "auto":
        return enabled, "set in the spec (dynamic_batching.enabled)"
    if spec.device == "gpu" or buckets:
        return True, "auto: on (GPU, or requests padded to shared bucket lengths can merge)"
    return False, (
        "auto: off on CPU without buckets: requests padded to their own length rarely share a "
        "shape, so batches do not form, and Triton's batcher would hold each request for its "
        "queue delay and spin while queued shapes differ"
    )


def resolve_layout(spec: DeploymentSpec, buckets: tuple[int, ...] = ()) -> ServingLayout:
    """The spec's instance layout with every `auto` resolved for its target; `buckets` are
    the tokenizer's (model batching pays only where requests share shapes)."""
    cpus, cpus_from = _target_cpus(spec)
    instances, why_instances = _model_instances(spec, cpus)
    threads, why_threads = _threads(spec, cpus, instances)
    tokenizers, why_tokenizers = _tokenizer_instances(spec, cpus)
    batching, why_batching = _model_batching(spec, buckets)
    return ServingLayout(
        device=spec.device,
        cpus=cpus,
        cpus_from=cpus_from,
        model_instances=instances,
        threads=threads,
        tokenizer_instances=tokenizers,
        model_batching=batching,
        tokenizer_batching=spec.dynamic_batching.enabled is not False,
        why={
            "model_instances": why_instances,
            "threads": why_threads,
            "tokenizer_instances": why_tokenizers,
            "model_batching": why_batching,
        },
    )
