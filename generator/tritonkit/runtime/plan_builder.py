"""Build a TensorRT plan from its recipe: standard library only, Python >= 3.8.

tritonkit copies this file into a deferred repository as ``NAME_trt/build_plan.py`` beside
``build_recipe.json`` (what to build: the ONNX model, profiles, precision, the TensorRT the
serving Triton image runs, the dtypes its config.pbtxt declares). The Helm chart runs it in an
init container from ``nvcr.io/nvidia/tensorrt:<YY.MM>-py3`` on the pod's GPU, so the plan is
built with the TensorRT of the serving release for the GPU that serves it; tritonkit itself runs
the same code in-process (`build`) where TensorRT is installed. One file because the image
runs it as ``python3 build_plan.py`` with nothing of tritonkit installed.

It builds with the TensorRT Python API or trtexec (found on PATH, then under
/usr/src/tensorrt/bin where NVIDIA's images keep it), deserializes the result where the API
exists and checks it against the recipe (tensor names, dtypes, every profile's shapes), then
moves ``1/model.plan`` and ``1/tensorrt.json`` into place atomically. Any failure is one line
on stderr and exit status 1. Rules are cited beside the code that follows them ("TRT" =
NVIDIA/TensorRT, "TBE" = triton-inference-server/tensorrt_backend, at the branch named).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # aliases used in annotations only: `tuple[int, ...]` fails at run time on 3.8
    from collections.abc import Callable, Iterator

    Log = Callable[[str], None]
    Version = tuple[int, ...]

RECIPE_FILE = "build_recipe.json"
METADATA_FILE = "tensorrt.json"
RECIPE_FORMAT = 1
TIMING_CACHE_ENV = "TRITONKIT_TIMING_CACHE"  # a directory: one cache file per GPU and version
# NVIDIA images keep trtexec out of PATH (Triton QA: TRTEXEC=/usr/src/tensorrt/bin/trtexec,
# server qa/L0_perf_resnet/test.sh:56); /usr/src/tensorrt links /opt/tensorrt (NVIDIA forum).
TRTEXEC_DIRS = ("/usr/src/tensorrt/bin", "/opt/tensorrt/bin", "/workspace/tensorrt/bin")
# NvInferVersion.h carries the 4th (build) component that trtexec's banner lacks.
VERSION_HEADERS = (
    "/usr/include/x86_64-linux-gnu/NvInferVersion.h",
    "/usr/include/aarch64-linux-gnu/NvInferVersion.h",
    "/usr/include/NvInferVersion.h",
    "/usr/src/tensorrt/include/NvInferVersion.h",
    "/opt/tensorrt/include/NvInferVersion.h",
)
TRT_TO_TRITON = {
    "FLOAT": "TYPE_FP32", "HALF": "TYPE_FP16", "BF16": "TYPE_BF16", "INT8": "TYPE_INT8",
    "UINT8": "TYPE_UINT8", "INT32": "TYPE_INT32", "INT64": "TYPE_INT64", "BOOL": "TYPE_BOOL",
}  # fmt: skip


class BuildError(Exception):
    """One line for the user: what failed and what to do."""


def version_tuple(version: str) -> Version:
    """Leading numeric components: `10.5.0.18` -> (10, 5, 0, 18); `9.3.0.post12` -> (9, 3, 0)."""
    parts = []
    for part in str(version).split("."):
        if not re.fullmatch(r"\d+", part):
            break
        parts.append(int(part))
    return tuple(parts)


def plan_loads(plan_version: str, runtime_version: str, version_compatible: bool) -> bool:
    """Whether a plan built with `plan_version` deserializes on `runtime_version`.

    Default: only on the exact TensorRT that built it ("compatible only with the version of
    TensorRT used to build them", docs 10.16.1 version-compatibility), compared on every
    component both name (8.6.1.2 and 8.6.1.6 differ: server#5975). Version-compatible: built
    with >= 8.6 and run on the same or any later release, across majors ("engines built with
    TensorRT 8 work with TensorRT 9 and TensorRT 10 runtimes", same page; 11.1 engine-
    compatibility: "engines built with TensorRT 10 work with TensorRT 11"), never older.
    """
    plan, runtime = version_tuple(plan_version), version_tuple(runtime_version)
    common = min(len(plan), len(runtime))
    if common == 0:
        return False
    if version_compatible:
        return plan[:2] >= (8, 6) and plan[:common] <= runtime[:common]
    return plan[:common] == runtime[:common]


def _text(version: Version) -> str:
    return ".".join(str(v) for v in version)


# ---------------------------------------------------------------------------- trtexec


def find_trtexec(env: dict[str, str]) -> str | None:
    """TRITONKIT_TRTEXEC, else trtexec on PATH, else NVIDIA's image locations."""
    given = env.get("TRITONKIT_TRTEXEC")
    if given:
        return given if os.access(given, os.X_OK) else None
    found = shutil.which("trtexec", path=env.get("PATH", os.defpath))
    if found:
        return found
    for folder in TRTEXEC_DIRS:
        candidate = os.path.join(folder, "trtexec")
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def banner_version(output: str) -> Version | None:
    """TensorRT's X.Y.Z from trtexec's first line `&&&& RUNNING TensorRT.trtexec [TensorRT
    v100500]`: NV_TENSORRT_VERSION is major*1000+minor*100+patch in 8.x and major*10000+...
    from 10.0 (TRT 10.0 NvInferRuntimeBase.h:89-93), printed by logging.h (8.6 :383)."""
    found = re.search(r"\[TensorRT v(\d+)\]", output)
    if not found:
        return None
    n = int(found.group(1))
    major, rest = (n // 10000, n % 10000) if n >= 100000 else (n // 1000, n % 1000)
    return (major, rest // 100, rest % 100)


def trtexec_version(trtexec: str) -> Version:
    """`trtexec --help` prints the banner before parsing anything (trtexec.cpp 8.6 :289-297,
    11.1 :805) and exits 0; no other flag is needed."""
    try:
        done = subprocess.run([trtexec, "--help"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BuildError(f"{trtexec}: cannot run it ({e})") from None
    version = banner_version(done.stdout + done.stderr)
    if version is None:
        raise BuildError(f"{trtexec} --help printed no [TensorRT vN] banner: not trtexec?")
    return version


def precision_flags(precision: str, version: Version) -> list[str]:
    """Builder flags (trtexec --flag, API BuilderFlag.FLAG) for `precision` on `version`.

    TensorRT 11 removed --fp16/--int8 and BuilderFlag.FP16/INT8: every network is strongly
    typed (TRT 11.1 sampleOptions.cpp BuildOptions::parse has none; pyCore.cpp :1599-1621;
    11.0 release notes "Weak typing is no longer supported"). int8 needs no flag there: the Q/DQ
    nodes carry it ("Precision-control build flags are not required", explicit-quantization
    docs). fp16 would need an fp16 ONNX model, which tritonkit does not make for TensorRT.
    """
    if precision == "fp32":
        return []
    if version[:1] >= (11,):
        if precision == "int8":
            return []
        raise BuildError(
            f"TensorRT {_text(version)} builds strongly typed networks only (no --fp16, no "
            "BuilderFlag.FP16): an fp16 plan needs an fp16 ONNX model; build with TensorRT 10 "
            "(NGC images up to 25.xx), or fp32, or int8 from the int8-qdq model"
        )
    return ["fp16"] if precision == "fp16" else ["int8", "fp16"]


def _shapes(inputs: list[str], shape: list[int]) -> str:
    # name:dims,name:dims with 'x' between dims (TRT 11.1 sampleOptions.cpp:138-151, :270-306)
    return ",".join(f"{name}:{shape[0]}x{shape[1]}" for name in inputs)


def trtexec_argv(
    trtexec: str,
    version: Version,
    recipe: dict[str, Any],
    onnx: Path,
    plan: Path,
    timing_cache: Path | None,
) -> list[str]:
    """trtexec's command line for `recipe` on TensorRT `version`, every flag one `--k=v` item
    (argsToArgumentsMap splits only at '=', 11.1 sampleOptions.cpp:972-994); a flag that
    release lacks would end the build with "Unknown option" (trtexec.cpp 8.6 :305-321)."""
    inputs, profiles = recipe["inputs"], recipe["profiles"]
    argv = [trtexec, f"--onnx={onnx}", f"--saveEngine={plan}"]
    if version >= (9,):
        # --profile=N then its shapes, adjacent in argv: getAndDelOptionBehind matches only
        # position pos+1 (11.1 sampleOptions.cpp:407, getOptimizationProfiles :642-714).
        for index, profile in enumerate(profiles):
            argv.append(f"--profile={index}")
            argv += [f"--{k}Shapes={_shapes(inputs, profile[k])}" for k in ("min", "opt", "max")]
    elif len(profiles) == 1:
        argv += [f"--{k}Shapes={_shapes(inputs, profiles[0][k])}" for k in ("min", "opt", "max")]
    else:
        # 8.6 reads one --minShapes/--optShapes/--maxShapes each and has no --profile
        # (8.6 sampleOptions.cpp:870-872): a second triple is an unknown option.
        raise BuildError(
            f"trtexec {_text(version)} builds one optimization profile (no --profile option "
            f"before TensorRT 9.0) but the recipe has {len(profiles)}: build with the TensorRT "
            "Python API (import tensorrt), or use one profile (build-plan --profiles single)"
        )
    argv += [f"--{flag}" for flag in precision_flags(recipe["precision"], version)]
    # plain MiB: suffixes exist only from 10.1 and --workspace is gone in 10.0 (research §1.4)
    argv.append(f"--memPoolSize=workspace:{int(recipe['workspace_mib'])}")
    argv.append(f"--builderOptimizationLevel={int(recipe['optimization_level'])}")
    if timing_cache is not None:
        argv.append(f"--timingCacheFile={timing_cache}")
    if recipe["hardware_compatibility"] == "ampere+":
        argv.append("--hardwareCompatibilityLevel=ampere+")
    if recipe["version_compatible"]:
        argv.append("--versionCompatible")  # lean runtime embedded: Triton cannot load one
    if version >= (9,):
        argv.append("--dumpOptimizationProfile")  # 9.0 sampleOptions.cpp:1490
    argv.append("--skipInference")
    return argv


_PROFILE_LINE = re.compile(
    r"Model input (\S+) \(profile (\d+)\): min=([\dx]+), opt=([\dx]+), max=([\dx]+)"
)


def dumped_profiles(output: str, inputs: list[str]) -> list[dict[str, list[list[int]]]]:
    """The profiles trtexec printed with --dumpOptimizationProfile (printOptimizationProfileInfo,
    10.0 sampleReporting.cpp:534-556): per profile, per input, [min, opt, max]."""
    found: dict[int, dict[str, list[list[int]]]] = {}
    for name, index, *shapes in _PROFILE_LINE.findall(output):
        found.setdefault(int(index), {})[name] = [[int(d) for d in s.split("x")] for s in shapes]
    return [found[i] for i in sorted(found)]


def _build_with_trtexec(
    trtexec: str, version: Version, recipe: dict[str, Any], onnx: Path, plan: Path,
    cache: Path | None, log: Log,
) -> str:  # fmt: skip
    argv = trtexec_argv(trtexec, version, recipe, onnx, plan, cache)
    log("running " + " ".join(argv))
    done = subprocess.run(argv, capture_output=True, text=True)
    output = done.stdout + done.stderr
    if done.returncode != 0 and cache is not None and cache.is_file() and "cache" in output.lower():
        # a cache trtexec cannot read (corrupt, foreign): set it aside and build without it
        aside = cache.with_name(f"{cache.name}.unreadable-{int(time.time())}")
        os.replace(cache, aside)
        log(f"warning: trtexec could not use {cache.name}: moved to {aside.name}, rebuilding")
        done = subprocess.run(argv, capture_output=True, text=True)
        output = done.stdout + done.stderr
    if done.returncode != 0 or not plan.is_file():
        errors = [ln for ln in output.splitlines() if "error" in ln.lower() or "[E]" in ln]
        last = (errors or output.strip().splitlines() or ["no output"])[-1].strip()
        raise BuildError(f"trtexec failed (exit {done.returncode}): {last}")
    return output


# ---------------------------------------------------------------------------- versions, GPU


def full_version(short: Version, env: dict[str, str], trt: Any = None) -> tuple[str, str]:
    """The 4-component version (X.Y.Z.build) and where it was read; X.Y.Z when none says more.

    A candidate counts only if it starts with `short`, the version actually running."""
    candidates: list[tuple[str, str]] = []
    for header in VERSION_HEADERS:
        with contextlib.suppress(OSError):
            text = Path(header).read_text(encoding="utf-8", errors="replace")
            parts = [re.search(rf"#define (?:NV_TENSORRT|TRT)_{k}(?:_ENTERPRISE)? (\d+)", text)
                     for k in ("MAJOR", "MINOR", "PATCH", "BUILD")]  # fmt: skip
            if all(parts):
                candidates.append((".".join(p.group(1) for p in parts if p), header))
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        package = f"libnvinfer{short[0]}"
        done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                              capture_output=True, text=True, timeout=30)  # fmt: skip
        if done.returncode == 0:
            candidates.append((done.stdout.split("-")[0].split("+")[0], f"dpkg {package}"))
    if env.get("TRT_VERSION"):  # set in NGC TensorRT images (server#5812)
        candidates.append((env["TRT_VERSION"].split("+")[0], "environment TRT_VERSION"))
    if trt is not None:
        candidates.append((str(trt.__version__), "tensorrt.__version__"))
    for text, source in candidates:
        found = version_tuple(text)
        if found[: len(short)] == short and len(found) >= 4:
            return _text(found[:4]), source
    return _text(short), "the TensorRT library (no build number found)"


def gpu_info(env: dict[str, str]) -> tuple[str, str]:
    """GPU 0's name and compute capability: the CUDA driver API (libcuda.so.1, mounted by
    the NVIDIA container runtime), else nvidia-smi; BuildError when there is no GPU."""
    with contextlib.suppress(OSError, AttributeError):
        cuda = ctypes.CDLL("libcuda.so.1")
        device, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        name = ctypes.create_string_buffer(256)
        # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR/MINOR = 75/76 (cuda.h)
        if (
            cuda.cuInit(0) == 0
            and cuda.cuDeviceGet(ctypes.byref(device), 0) == 0
            and cuda.cuDeviceGetName(name, 256, device) == 0
            and cuda.cuDeviceGetAttribute(ctypes.byref(major), 75, device) == 0
            and cuda.cuDeviceGetAttribute(ctypes.byref(minor), 76, device) == 0
        ):
            return name.value.decode(errors="replace"), f"{major.value}.{minor.value}"
    smi = shutil.which("nvidia-smi", path=env.get("PATH", os.defpath))
    if smi is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError, ValueError):
            out = subprocess.run(
                [smi, "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                capture_output=True, text=True, check=True, timeout=30,
            ).stdout.splitlines()[0]  # fmt: skip
            name_, cc = (p.strip() for p in out.rsplit(",", 1))
            if re.fullmatch(r"\d+\.\d+", cc):
                return name_, cc
    raise BuildError(
        "no NVIDIA GPU is visible (libcuda.so.1 and nvidia-smi found none): run on a GPU node "
        "with the NVIDIA container runtime and a GPU resource limit"
    )


# ---------------------------------------------------------------------------- timing cache


def cache_file(directory: Path, version: str, gpu: tuple[str, str]) -> Path:
    """One cache per TensorRT version and GPU: a cache is refused on another device
    (set_timing_cache doc, pyCoreDoc.h 11.1 :1666-1678) and combine skips another version's
    (:1416-1427), so a shared folder (several GPU types, releases) keeps them apart."""
    slug = re.sub(r"[^a-z0-9]+", "-", gpu[0].lower()).strip("-") or "gpu"
    return directory / f"tensorrt-{version}-sm{gpu[1].replace('.', '')}-{slug}.cache"


@contextlib.contextmanager
def locked(cache: Path) -> Iterator[None]:
    """An exclusive lock for another build of the same cache, held by the caller across
    read-merge-write. Its own lock file: trtexec lockf()s `<cache>.lock` itself (TRT 8.6
    samples/common/common.h:1034-1125), which a lock of ours there would deadlock."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{cache}.tritonkit-lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _cache_from(config: Any, blob: bytes, what: str, log: Log | None) -> Any:
    """A timing cache object from `blob`; a blob TensorRT cannot read starts a fresh one
    (what create_timing_cache does with another version's blob is not documented: None or
    an exception both mean "start fresh")."""
    cache = None
    with contextlib.suppress(Exception):  # the binding raises on a corrupt blob
        cache = config.create_timing_cache(blob)
    if cache is None and blob:
        if log is not None:
            log(f"warning: {what} is not a timing cache this TensorRT reads: ignored")
        cache = config.create_timing_cache(b"")
    if cache is None:
        raise BuildError("TensorRT could not create an empty timing cache")
    return cache


def _attach_cache(config: Any, path: Path | None, log: Log) -> None:
    if path is None:
        return
    blob = b""
    with locked(path), contextlib.suppress(FileNotFoundError):
        blob = path.read_bytes()
    cache = _cache_from(config, blob, str(path), log)
    if not config.set_timing_cache(cache, False):  # False: built on another device (doc above)
        log(f"warning: {path} was made on another GPU: starting a fresh timing cache")
        if not config.set_timing_cache(_cache_from(config, b"", str(path), log), False):
            log("warning: TensorRT refused a fresh timing cache: building without one")


def _merge_cache(config: Any, path: Path | None, log: Log) -> None:
    """Fold this build's entries into the cache file under one lock (re-read, combine, write),
    so parallel builds lose nothing; trtexec 10.13+ releases its lock between read and write
    (shared/utils/cacheUtils.cpp 11.1 :109-146)."""
    if path is None:
        return
    built = config.get_timing_cache()  # None when no cache is set (pyCoreDoc.h :1680-1683)
    if built is None:
        log(f"warning: TensorRT kept no timing cache: {path} not updated")
        return
    with locked(path):
        blob = b""
        with contextlib.suppress(FileNotFoundError):
            blob = path.read_bytes()
        merged = built
        if blob:
            on_disk = _cache_from(config, blob, str(path), None)  # unreadable: warned on read
            if on_disk.combine(built, False):
                merged = on_disk
            else:  # another TensorRT version's entries: combine skips them (doc above)
                log(f"warning: {path} could not be merged (another TensorRT build): replaced")
        _write_atomic(path, bytes(merged.serialize()))


# ---------------------------------------------------------------------------- Python API


def import_tensorrt() -> Any:
    try:
        import tensorrt  # type: ignore[import-not-found]
    except Exception:  # the bindings without their libraries raise OSError
        return None
    return tensorrt


def _build_with_api(
    trt: Any, version: Version, recipe: dict[str, Any], onnx: Path, plan: Path,
    cache: Path | None, log: Log,
) -> None:  # fmt: skip
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # TRT 8.x needs EXPLICIT_BATCH for dynamic shapes and version compatibility (NvInfer.h
    # 8.6 :8842); 10.x ignores it and 11.x removed it (NvInfer.h 11.1 :11462-11476).
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH) if version < (10,) else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BuildError(f"{onnx}: TensorRT's ONNX parser refused the model: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(recipe["workspace_mib"]) << 20)
    config.builder_optimization_level = int(recipe["optimization_level"])
    for name in precision_flags(recipe["precision"], version):
        flag = getattr(trt.BuilderFlag, name.upper(), None)  # feature-detect, never assume
        if flag is None:
            raise BuildError(f"TensorRT {_text(version)} has no BuilderFlag.{name.upper()}")
        config.set_flag(flag)
    if recipe["hardware_compatibility"] == "ampere+":
        config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.AMPERE_PLUS
    if recipe["version_compatible"]:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    _attach_cache(config, cache, log)
    for profile in recipe["profiles"]:
        shapes = builder.create_optimization_profile()
        for name in recipe["inputs"]:
            shapes.set_shape(name, profile["min"], profile["opt"], profile["max"])
        if config.add_optimization_profile(shapes) < 0:
            raise BuildError(f"TensorRT refused optimization profile {profile}")
    log(f"building with the TensorRT {_text(version)} Python API")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BuildError(f"{onnx}: TensorRT could not build the plan (its log above says why)")
    _write_atomic(plan, bytes(serialized))
    _merge_cache(config, cache, log)


def inspect_plan(trt: Any, data: bytes, version_compatible: bool) -> dict[str, Any]:
    """The plan's I/O tensors (mode, Triton dtype) and every profile's input shapes."""
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    if version_compatible:
        # A version-compatible plan embeds host code: deserializing it needs this opt-in
        # (pyCore.cpp 8.6 :1296-1297; trtexec does the same, sampleEngines.cpp 11.1 :113-118).
        runtime.engine_host_code_allowed = True
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise BuildError("TensorRT could not deserialize the plan it built (its log says why)")
    io: dict[str, dict[str, str]] = {}
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        mode = "input" if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else "output"
        dtype = engine.get_tensor_dtype(name).name
        io[name] = {"mode": mode, "dtype": TRT_TO_TRITON.get(dtype, dtype)}
    inputs = [n for n, t in io.items() if t["mode"] == "input"]
    profiles = [
        {n: [list(s) for s in engine.get_tensor_profile_shape(n, i)] for n in inputs}
        for i in range(engine.num_optimization_profiles)
    ]
    return {"io": io, "profiles": profiles}


# ---------------------------------------------------------------------------- the build


def plan_problems(recipe: dict[str, Any], found: dict[str, Any]) -> list[str]:
    """What differs between the built plan and the recipe (and so the final config.pbtxt)."""
    problems = []
    if "io" in found:
        io = found["io"]
        inputs = [n for n, t in io.items() if t["mode"] == "input"]
        outputs = [n for n, t in io.items() if t["mode"] == "output"]
        if sorted(inputs) != sorted(recipe["inputs"]):
            problems.append(f"inputs {inputs} but the config declares {recipe['inputs']}")
        if sorted(outputs) != sorted(recipe["outputs"]):
            problems.append(f"outputs {outputs} but the config declares {recipe['outputs']}")
        for name, tensor in io.items():
            declared = recipe["io_types"].get(name)
            if declared is not None and tensor["dtype"] != declared:
                problems.append(f"'{name}' is {tensor['dtype']} but the config says {declared}")
    if "profiles" in found:
        expected = [
            {n: [p["min"], p["opt"], p["max"]] for n in recipe["inputs"]}
            for p in recipe["profiles"]
        ]
        if found["profiles"] != expected:
            problems.append(f"profiles {found['profiles']} differ from the recipe's {expected}")
    return problems


def _builder(recipe: dict[str, Any], prefer: str | None, env: dict[str, str]) -> Any:
    allowed = [b for b in recipe.get("builders", ["api", "trtexec"]) if prefer in (None, b)]
    trt = import_tensorrt() if "api" in allowed else None
    trtexec = find_trtexec(env) if "trtexec" in allowed else None
    if trt is None and trtexec is None:
        wanted = " or ".join(
            {"api": "the TensorRT Python API (import tensorrt)",
             "trtexec": "trtexec (PATH, " + ", ".join(TRTEXEC_DIRS) + ")"}[b]
            for b in allowed
        )  # fmt: skip
        raise BuildError(f"cannot build a TensorRT plan here: {wanted or 'no builder'} missing")
    return trt, trtexec


def _serving_check(recipe: dict[str, Any], version: str) -> None:
    serving = recipe.get("serving") or {}
    wanted = serving.get("tensorrt_version")
    if wanted and not plan_loads(version, wanted, bool(recipe["version_compatible"])):
        raise BuildError(
            f"this is TensorRT {version} but {serving.get('triton_image')} runs TensorRT "
            f"{wanted}: a plan loads only on the TensorRT that built it; run this in "
            f"nvcr.io/nvidia/tensorrt of the same release (or set tensorrt.image)"
        )


def build(
    model_dir: Path,
    recipe: dict[str, Any],
    *,
    prefer: str | None = None,
    cache_dir: Path | None = None,
    env: dict[str, str] | None = None,
    log: Log = lambda _: None,
) -> dict[str, Any]:
    """Build the recipe's plan into model_dir/<version_dir>/ and record it; the record."""
    env = dict(os.environ if env is None else env)
    if recipe.get("format") != RECIPE_FORMAT:
        raise BuildError(f"recipe format {recipe.get('format')} is not {RECIPE_FORMAT}")
    onnx = model_dir / recipe["onnx"]
    if not onnx.is_file():
        raise BuildError(f"{onnx}: the ONNX model the recipe names is missing")
    gpu = gpu_info(env)
    trt, trtexec = _builder(recipe, prefer, env)
    short = version_tuple(trt.__version__)[:3] if trt is not None else trtexec_version(trtexec)
    if trt is None and short < (9,) and len(recipe["profiles"]) > 1:
        trtexec_argv(trtexec, short, recipe, onnx, Path("-"), None)  # raises: one profile only
    version, version_source = full_version(short, env, trt)
    _serving_check(recipe, version)
    if precision_flags(recipe["precision"], short) and short >= (10, 12):  # 11+ refuses fp16
        log(
            "warning: --fp16/--int8 are deprecated from TensorRT 10.12 (NvInfer.h 10.12 "
            "BuilderFlag) and removed in 11.0: still used here, the plan is weakly typed"
        )
    folder = model_dir / recipe["version_dir"]
    folder.mkdir(parents=True, exist_ok=True)
    file = recipe["plan_file"].replace("{sm}", gpu[1].replace(".", ""))
    tmp = folder / f".{file}.build-{os.getpid()}"
    given = cache_dir or (Path(env[TIMING_CACHE_ENV]) if env.get(TIMING_CACHE_ENV) else None)
    cache = cache_file(given, version, gpu) if given else None
    started = time.time()
    try:
        found: dict[str, Any] = {}
        if trt is not None:
            _build_with_api(trt, short, recipe, onnx, tmp, cache, log)
        else:
            with contextlib.ExitStack() as stack:
                if cache is not None:
                    stack.enter_context(locked(cache))  # held across trtexec's read+write
                output = _build_with_trtexec(trtexec, short, recipe, onnx, tmp, cache, log)
            if short >= (9,):
                found["profiles"] = dumped_profiles(output, recipe["inputs"])
        api = trt or import_tensorrt()
        if api is not None:
            found = inspect_plan(api, tmp.read_bytes(), bool(recipe["version_compatible"]))
        problems = plan_problems(recipe, found)
        if problems:
            raise BuildError(f"the built plan does not match {RECIPE_FILE}: {problems[0]}")
        record = {
            "file": file,
            "tensorrt_version": version,
            "tensorrt_version_source": version_source,
            "builder": "api" if trt is not None else "trtexec",
            "gpu_name": gpu[0],
            "compute_capability": gpu[1],
            "precision": recipe["precision"],
            "strongly_typed": short >= (11,),
            "hardware_compatibility": recipe["hardware_compatibility"],
            "version_compatible": bool(recipe["version_compatible"]),
            "inputs": list(recipe["inputs"]),
            "profiles": recipe["profiles"],
            "io_types": {n: t["dtype"] for n, t in found["io"].items()}
            if "io" in found
            else dict(recipe["io_types"]),
            "checked": sorted(k for k in ("io", "profiles") if k in found),
            "triton_image": (recipe.get("serving") or {}).get("triton_image"),
            "timing_cache": cache.name if cache is not None else None,
            "build_seconds": round(time.time() - started, 1),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        os.replace(tmp, folder / file)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    record_plan(folder, record)
    return record


def record_plan(folder: Path, record: dict[str, Any]) -> None:
    """Add `record` to tensorrt.json (plans of other compute capabilities stay)."""
    path = folder / METADATA_FILE
    plans: dict[str, Any] = {}
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
        plans = {p["file"]: p for p in json.loads(path.read_text(encoding="utf-8"))["plans"]}
    plans[record["file"]] = record
    data = {"tritonkit_recipe": RECIPE_FORMAT, "plans": list(plans.values())}
    _write_atomic(path, (json.dumps(data, indent=2) + "\n").encode())


def main(argv: list[str] | None = None) -> int:
    """`python3 NAME_trt/build_plan.py [--builder api|trtexec]`: the recipe beside this file."""
    args = list(sys.argv[1:] if argv is None else argv)
    prefer = args[1] if args[:1] == ["--builder"] and len(args) == 2 else None
    if args and prefer not in ("api", "trtexec"):
        print("usage: build_plan.py [--builder api|trtexec]", file=sys.stderr)
        return 2
    model_dir = Path(__file__).resolve().parent
    where = f"{model_dir.name}/build_plan.py"

    def log(line: str) -> None:
        print(f"{where}: {line}", file=sys.stderr, flush=True)

    # timeout(1) sends SIGTERM: exit through the cleanup (temporary plan, trtexec child)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        try:
            recipe = json.loads((model_dir / RECIPE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise BuildError(f"{model_dir / RECIPE_FILE}: unreadable ({e})") from None
        record = build(model_dir, recipe, prefer=prefer, log=log)
    except BuildError as e:
        log(f"error: {e}")
        return 1
    except KeyError as e:
        log(f"error: {RECIPE_FILE} lacks {e}: regenerate it with tritonkit generate --defer-plan")
        return 1
    except OSError as e:
        log(f"error: {e.filename or model_dir}: {e.strerror or e}")
        return 1
    log(
        f"built {recipe['version_dir']}/{record['file']} with {record['builder']}: TensorRT "
        f"{record['tensorrt_version']} on {record['gpu_name']} (sm {record['compute_capability']})"
        f", {len(record['profiles'])} profile(s), checked: {', '.join(record['checked']) or '-'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
