"""NAME_trt/build_plan.py as the Helm chart's init container runs it: `python3` of the system
(not tritonkit's environment) in isolated mode, nothing of tritonkit importable, against the
strict fake trtexec on PATH (the API path: the fake `tensorrt` module). One line on failure."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.trt_fakes import FAKE_TENSORRT, executable, install_trtexec
from tritonkit.pipeline.generate import generate
from tritonkit.repository.validate import repository_notes, validate_repository
from tritonkit.spec import build_spec
from tritonkit.util.resources import triton_model_source

IMAGE = "nvcr.io/nvidia/tritonserver:24.12-py3"  # verified: TensorRT 10.7.0.23
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")


def test_the_script_is_standard_library_and_python_3_8() -> None:
    source = triton_model_source("plan_builder").read_text()
    tree = ast.parse(source, feature_version=(3, 8))  # the images ship 3.10/3.12; keep 3.8
    imported = {
        (n.module if isinstance(n, ast.ImportFrom) else a.name).split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in (n.names if isinstance(n, ast.Import) else [n])
        if not isinstance(n, ast.ImportFrom) or n.module
    }
    assert imported - set(sys.stdlib_module_names) == {"tensorrt"}  # imported lazily, optional
    # what runs at import time must not subscript builtins or collections.abc (3.9+ only);
    # annotations are strings (`from __future__ import annotations`)
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            assert not isinstance(node.value, ast.Subscript), ast.unparse(node)
    assert "from __future__ import annotations" in source


@pytest.fixture(scope="module")
def deferred(tiny_model_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("deferred") / "repo"
    spec = build_spec(None, {
        "model": tiny_model_dirs["text-classification"], "task": "text-classification",
        "name": "cls", "output": out, "device": "gpu", "variant": "trt-fp16",
        "triton_image": IMAGE, "tokenizer": {"buckets": [16, 32]},
    })  # fmt: skip
    return generate(spec, defer_plan=True).output


@pytest.fixture
def pod(deferred: Path, tmp_path: Path) -> Path:
    """A copy of the repository, as the chart copies it into the pod's emptyDir."""
    repo = tmp_path / "workspace" / "repository"
    shutil.copytree(deferred, repo)
    return repo


def run_script(repo: Path, tmp_path: Path, *, gpu: bool = True, trtexec: str | None = "10.7.0",
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    assert SYSTEM_PYTHON is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if gpu:
        executable(bin_dir / "nvidia-smi", '#!/bin/sh\necho "NVIDIA L4, 8.9"\n')
    if trtexec:
        install_trtexec(bin_dir)
    base = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path),
            "FAKE_TRT_VERSION": trtexec or "", "TRT_VERSION": "10.7.0.23+cuda12.6"}  # fmt: skip
    command = [SYSTEM_PYTHON, "-I", str(repo / "cls_trt" / "build_plan.py")]
    return subprocess.run(command, capture_output=True, text=True, env=base | (env or {}))


def test_tritonkit_is_not_importable_there(tmp_path: Path) -> None:
    assert SYSTEM_PYTHON is not None
    done = subprocess.run([SYSTEM_PYTHON, "-I", "-c", "import tritonkit"], capture_output=True)
    assert done.returncode != 0


def test_the_pod_builds_and_records_the_plan(pod: Path, tmp_path: Path) -> None:
    assert repository_notes(pod)  # deferred
    cache = tmp_path / "timing-cache"
    done = run_script(pod, tmp_path, env={"TRITONKIT_TIMING_CACHE": str(cache)})
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1] == (
        "cls_trt/build_plan.py: built 1/model.plan with trtexec: TensorRT 10.7.0.23 on NVIDIA L4 "
        "(sm 8.9), 3 profile(s), checked: profiles"
    )
    version_dir = pod / "cls_trt" / "1"
    assert sorted(p.name for p in version_dir.iterdir()) == [".keep", "model.plan", "tensorrt.json"]
    record = json.loads((version_dir / "tensorrt.json").read_text())["plans"][0]
    assert record["tensorrt_version_source"] == "environment TRT_VERSION"
    assert record["timing_cache"] == "tensorrt-10.7.0.23-sm89-nvidia-l4.cache"
    assert (cache / record["timing_cache"]).is_file()
    assert validate_repository(pod) == [] and repository_notes(pod) == []


@pytest.mark.parametrize(
    ("kwargs", "line"),
    [
        ({"gpu": False}, "error: no NVIDIA GPU is visible (libcuda.so.1 and nvidia-smi found "
                         "none): run on a GPU node with the NVIDIA container runtime and a GPU "
                         "resource limit"),
        ({"trtexec": "10.5.0", "env": {"TRT_VERSION": ""}},
         f"error: this is TensorRT 10.5.0 but {IMAGE} runs TensorRT 10.7.0.23: a plan loads only "
         "on the TensorRT that built it; run this in nvcr.io/nvidia/tensorrt of the same release "
         "(or set tensorrt.image)"),
        ({"trtexec": None}, "error: cannot build a TensorRT plan here: the TensorRT Python API "
                            "(import tensorrt) or trtexec (PATH, /usr/src/tensorrt/bin, "
                            "/opt/tensorrt/bin, /workspace/tensorrt/bin) missing"),
        ({"env": {"FAKE_TRT_EXIT": "1"}},
         "error: trtexec failed (exit 1): [E] Error[4]: fake failure requested by the test"),
    ],
)  # fmt: skip
def test_failures_are_one_line(pod: Path, tmp_path: Path, kwargs: dict, line: str) -> None:  # type: ignore[type-arg]
    done = run_script(pod, tmp_path, **kwargs)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == f"cls_trt/build_plan.py: {line}"
    assert not (pod / "cls_trt" / "1" / "model.plan").exists()
    assert [p.name for p in (pod / "cls_trt" / "1").iterdir()] == [".keep"]


def test_the_api_path_in_the_pod(pod: Path, tmp_path: Path) -> None:
    """The NGC TensorRT image has `import tensorrt`: the script builds with it and checks the
    plan's bindings, dtypes and profiles on the deserialized engine. The fake module needs
    onnx, so this runs tritonkit's interpreter with tritonkit's modules blocked."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable(bin_dir / "nvidia-smi", '#!/bin/sh\necho "NVIDIA L4, 8.9"\n')
    script = pod / "cls_trt" / "build_plan.py"
    code = (
        "import runpy, sys; sys.modules['tritonkit'] = None; "
        f"sys.path.insert(0, {str(FAKE_TENSORRT)!r}); "
        f"sys.argv = [{str(script)!r}]; runpy.run_path({str(script)!r}, run_name='__main__')"
    )
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_TRT_VERSION": "10.7.0.23",
           "HOME": str(tmp_path)}  # fmt: skip
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                          env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1].endswith("3 profile(s), checked: io, profiles")
    record = json.loads((pod / "cls_trt" / "1" / "tensorrt.json").read_text())["plans"][0]
    assert record["builder"] == "api" and record["io_types"]["input_ids"] == "TYPE_INT64"
    assert validate_repository(pod) == []


def test_sigterm_leaves_no_partial_plan(pod: Path, tmp_path: Path) -> None:
    """The chart bounds the build with timeout(1), which sends SIGTERM."""
    assert SYSTEM_PYTHON is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable(bin_dir / "nvidia-smi", '#!/bin/sh\necho "NVIDIA L4, 8.9"\n')
    install_trtexec(bin_dir)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_TRT_VERSION": "10.7.0",
           "TRT_VERSION": "10.7.0.23", "FAKE_TRT_SLEEP": "30"}  # fmt: skip
    command = ["timeout", "-k", "5", "3", SYSTEM_PYTHON, "-I",
               str(pod / "cls_trt" / "build_plan.py")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 124  # timeout(1): the command timed out (and exited on SIGTERM)
    assert [p.name for p in (pod / "cls_trt" / "1").iterdir()] == [".keep"]
