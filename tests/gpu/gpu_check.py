"""`make gpu-check`: issue 11 on a machine WITH an NVIDIA GPU and TensorRT (under 8 minutes).

Exports all-MiniLM-L6-v2 (feature-extraction), builds a plan with three bucket profiles through
`tritonkit build-plan` (with the Python API and with trtexec, where each exists), checks every
profile's bindings and dtypes against the plan's record and config.pbtxt, compares the plan's
outputs with ONNX Runtime at batch 1, 3 and 8 in each bucket, and reproduces items 1 (trtexec's
profile grammar), 3 (a version-compatible plan deserializes only with engine_host_code_allowed)
and 5 (a corrupt timing cache is ignored with a warning; a second build merges). Where TensorRT
or the GPU is missing it stops in one line (exit 1). Not part of `make test`.

    make gpu-check            # or: .venv/bin/python tests/gpu/gpu_check.py [WORK_DIR]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tritonkit.runtime import plan_builder

BUCKETS = "16,64,128"
MAX_LENGTH, MAX_BATCH = 128, 8
BATCHES = (1, 3, 8)
TOLERANCE = 0.995  # min cosine of fp16 TensorRT embeddings vs fp32 ONNX Runtime
TEXTS = ["a short one", "TensorRT builds one engine per GPU type " * 6, "word " * 120]


class Stop(Exception):
    pass


def say(line: str) -> None:
    print(f"gpu-check: {line}", flush=True)


def prerequisites() -> tuple[Any, str | None]:
    """The TensorRT module (or None) and trtexec (or None); Stop when neither, or no GPU."""
    env = dict(os.environ)
    try:
        gpu = plan_builder.gpu_info(env)
    except plan_builder.BuildError as e:
        raise Stop(str(e)) from None
    trt, trtexec = plan_builder.import_tensorrt(), plan_builder.find_trtexec(env)
    if trt is None and trtexec is None:
        raise Stop("needs TensorRT: neither `import tensorrt` nor trtexec is available here")
    say(f"GPU {gpu[0]} (sm {gpu[1]}); Python API: {getattr(trt, '__version__', 'no')}; "
        f"trtexec: {trtexec or 'no'}")  # fmt: skip
    return trt, trtexec


def tritonkit(*args: str) -> str:
    command = [str(Path(sys.executable).parent / "tritonkit"), *args]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise Stop(f"tritonkit {args[0]} failed: {(done.stderr or done.stdout).strip()[-400:]}")
    return done.stdout


def export(work: Path) -> Path:
    from tritonkit.model.default import default_model_dir
    from tritonkit.model.export import export_model

    started = time.perf_counter()
    result = export_model(default_model_dir(), "feature-extraction", work / "export")
    say(f"exported MiniLM in {time.perf_counter() - started:.0f}s")
    return result.onnx_path


def build(onnx: Path, out: Path, builder: str, cache: Path, *extra: str) -> dict[str, Any]:
    started = time.perf_counter()
    tritonkit("build-plan", str(onnx), "-o", str(out), "--max-length", str(MAX_LENGTH),
              "--buckets", BUCKETS, "--max-batch-size", str(MAX_BATCH), "--builder", builder,
              "--timing-cache", str(cache), *extra)  # fmt: skip
    record: dict[str, Any] = json.loads((out / "1" / "tensorrt.json").read_text())["plans"][0]
    say(f"{builder}: built in {time.perf_counter() - started:.0f}s, TensorRT "
        f"{record['tensorrt_version']} ({record['tensorrt_version_source']}), checked "
        f"{record['checked']}")  # fmt: skip
    return record


def check_bindings(trt: Any, out: Path, record: dict[str, Any]) -> Any:
    """Every profile's shapes and every tensor's dtype: engine == record == config.pbtxt."""
    from tritonkit.repository.pbtxt import data_type_name, read_config

    config = read_config(out / "config.pbtxt")
    engine = plan_builder.inspect_plan(trt, (out / "1" / "model.plan").read_bytes(),
                                       record["version_compatible"])  # fmt: skip
    declared = {t.name: data_type_name(t.data_type) for t in (*config.input, *config.output)}
    exposed = {n: t["dtype"] for n, t in engine["io"].items()}
    if not exposed == record["io_types"] == declared:
        raise Stop(
            f"dtypes differ: engine {exposed}, record {record['io_types']}, config {declared}"
        )
    problems = plan_builder.plan_problems(
        {"inputs": record["inputs"], "outputs": [t.name for t in config.output],
         "io_types": declared, "profiles": record["profiles"]}, engine,
    )  # fmt: skip
    if problems or len(config.instance_group[0].profile) != len(engine["profiles"]):
        raise Stop(f"bindings differ from the record/config: {problems}")
    say(f"{len(engine['profiles'])} profiles, bindings and dtypes agree with record and config")
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    runtime.engine_host_code_allowed = bool(record["version_compatible"])
    return runtime.deserialize_cuda_engine((out / "1" / "model.plan").read_bytes())


def _device_arrays() -> Any:
    """torch.cuda where it exists, else None (then outputs are not compared)."""
    try:
        import torch

        return torch if torch.cuda.is_available() else None
    except ImportError:
        return None


def compare_outputs(trt: Any, engine: Any, onnx: Path, record: dict[str, Any]) -> None:
    import onnxruntime

    from tritonkit.model.default import default_model_dir
    from tritonkit.runtime.tokenizer import TextEncoder, TokenizerParams

    torch = _device_arrays()
    if torch is None:
        raise Stop("comparing outputs needs torch with CUDA for device buffers")
    session = onnxruntime.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    dtypes = {"TYPE_INT64": torch.int64, "TYPE_INT32": torch.int32, "TYPE_FP32": torch.float32,
              "TYPE_FP16": torch.float16}  # fmt: skip
    stream = torch.cuda.Stream()
    worst = 1.0
    for index, bucket in enumerate(int(b) for b in BUCKETS.split(",")):
        context = engine.create_execution_context()
        context.set_optimization_profile_async(index, stream.cuda_stream)
        types = "token_type_ids" in record["inputs"]
        params = TokenizerParams(MAX_LENGTH, buckets=(bucket,), emit_token_type_ids=types)
        encoder = TextEncoder(str(default_model_dir() / "tokenizer.json"), params)
        for batch in BATCHES:
            # at most bucket - 4 characters: every text pads to this bucket (this profile)
            texts = [TEXTS[i % len(TEXTS)][: bucket - 4] for i in range(batch)]
            feeds = {k: v for k, v in encoder.encode(texts).items() if k in record["inputs"]}
            buffers = {}
            for name, array in feeds.items():
                tensor = torch.from_numpy(array).to("cuda", dtypes[record["io_types"][name]])
                context.set_input_shape(name, tuple(array.shape))
                buffers[name] = tensor
            for name in (n for n in record["io_types"] if n not in feeds):
                shape = tuple(context.get_tensor_shape(name))
                buffers[name] = torch.empty(shape, dtype=dtypes[record["io_types"][name]],
                                            device="cuda")  # fmt: skip
            for name, tensor in buffers.items():
                context.set_tensor_address(name, tensor.data_ptr())
            if not context.execute_async_v3(stream.cuda_stream):
                raise Stop(f"execute_async_v3 failed (profile {index}, batch {batch})")
            stream.synchronize()
            out = next(n for n in record["io_types"] if n not in feeds)
            got = buffers[out].float().cpu().numpy()
            want = session.run([out], {k: v.astype(np.int64) for k, v in feeds.items()})[0]
            cosine = (
                (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
            )
            worst = min(worst, float(cosine.min()))
    if worst < TOLERANCE:
        raise Stop(f"TensorRT vs ONNX Runtime: min cosine {worst:.4f} < {TOLERANCE}")
    say(f"outputs match ONNX Runtime at batch {BATCHES} in buckets {BUCKETS}: min cos {worst:.4f}")


def item_1(trtexec: str, onnx: Path, work: Path) -> None:
    """Several --minShapes/--optShapes/--maxShapes without --profile fail on trtexec >= 9."""
    version = plan_builder.trtexec_version(trtexec)
    inputs = ["input_ids", "attention_mask", "token_type_ids"]
    old = [trtexec, f"--onnx={onnx}", "--skipInference"]
    for low, high in ((1, 16), (17, 64)):
        for flag, shape in (("min", (1, low)), ("opt", (4, high)), ("max", (8, high))):
            old.append(f"--{flag}Shapes=" + ",".join(f"{i}:{shape[0]}x{shape[1]}" for i in inputs))
    done = subprocess.run(old, capture_output=True, text=True)
    expected = "Multiple --minShapes" if version >= (9,) else "Unknown option"
    if done.returncode == 0 or expected not in done.stdout + done.stderr:
        raise Stop(f"item 1: trtexec {version} accepted repeated shape triples")
    say(f"item 1 reproduced: trtexec {'.'.join(map(str, version))} refuses the old argv "
        f"({expected}); the --profile=N argv built above")  # fmt: skip


def item_3(trt: Any, onnx: Path, work: Path, cache: Path) -> None:
    record = build(onnx, work / "vc" / "m_trt", "api", cache, "--version-compatible")
    data = (work / "vc" / "m_trt" / "1" / "model.plan").read_bytes()
    runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
    if runtime.deserialize_cuda_engine(data) is not None:
        raise Stop("item 3: a version-compatible plan deserialized without host code allowed")
    runtime.engine_host_code_allowed = True
    if runtime.deserialize_cuda_engine(data) is None or not record["version_compatible"]:
        raise Stop("item 3: the version-compatible plan did not deserialize")
    say("item 3 reproduced: VC plan is None without engine_host_code_allowed, loads with it")


def item_5(onnx: Path, work: Path, cache: Path, record: dict[str, Any]) -> None:
    path = cache / record["timing_cache"]
    before = path.stat().st_size
    path.write_bytes(b"corrupt")
    build(onnx, work / "cache" / "m_trt", "api", cache)
    if path.stat().st_size <= len(b"corrupt"):
        raise Stop("item 5: the corrupt timing cache was not replaced")
    build(onnx, work / "cache2" / "m_trt", "api", cache)
    say(f"item 5 reproduced: corrupt cache ignored and rewritten ({before} -> "
        f"{path.stat().st_size} bytes after a merge)")  # fmt: skip


def main() -> int:
    started = time.perf_counter()
    try:
        trt, trtexec = prerequisites()
        work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="gpu-"))
        cache = work / "timing-cache"
        onnx = export(work)
        for builder in ("api", "trtexec"):
            if (builder == "api" and trt is None) or (builder == "trtexec" and trtexec is None):
                say(f"{builder}: not available here, skipped")
                continue
            out = work / builder / "m_trt"
            record = build(onnx, out, builder, cache)
            if trt is not None:
                engine = check_bindings(trt, out, record)
                compare_outputs(trt, engine, onnx, record)
        if trtexec is not None:
            item_1(trtexec, onnx, work)
        if trt is not None:
            item_3(trt, onnx, work, cache)
            item_5(onnx, work, cache, build(onnx, work / "again" / "m_trt", "api", cache))
    except Stop as e:
        say(f"stopped: {e}")
        return 1
    say(f"passed in {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
