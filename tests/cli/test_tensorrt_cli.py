"""`tritonkit build-plan`, `generate --defer-plan` and `validate` on a deferred repository: the
one-line errors where TensorRT cannot run (these machines) and the trtexec path end to end
against the strict fake trtexec (it writes a JSON stand-in, not a plan)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.unit.trt_fakes import bin_dir, calls, fake_gpu, fake_trtexec, token_onnx
from tritonkit.cli import main
from tritonkit.repository.pbtxt import read_config
from tritonkit.tensorrt.build import read_metadata

__all__ = ["bin_dir", "fake_gpu", "fake_trtexec"]  # fixtures used below
IMAGE = "nvcr.io/nvidia/tritonserver:24.12-py3"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_no_tensorrt_here(bin_dir: Path, tmp_path: Path) -> None:
    model = token_onnx(tmp_path / "model.onnx")
    out = tmp_path / "repo" / "m_trt"
    code, output = run("build-plan", str(model), "-o", str(out), "--max-length", "128")
    assert code == 1
    assert output.startswith(
        f"Error: {model}: cannot build a TensorRT plan on this machine: the TensorRT Python API "
    )
    assert not (tmp_path / "repo").exists()


def test_build_plan_with_fake_trtexec(
    fake_trtexec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRT_VERSION", "10.7.0")
    monkeypatch.setenv("TRT_VERSION", "10.7.0.23")
    model = token_onnx(tmp_path / "model.onnx")
    out = tmp_path / "repo" / "m_trt"
    code, output = run(
        "build-plan", str(model), "-o", str(out), "--max-length", "128", "--buckets", "16,64",
        "--max-batch-size", "8", "--precision", "fp16", "--cuda-graphs", "--triton-image", IMAGE,
    )  # fmt: skip
    assert code == 0, output
    assert output == (
        f"built {out / '1' / 'model.plan'} with trtexec: TensorRT 10.7.0.23 on NVIDIA Fake L4 "
        "(compute capability 8.9), 3 profile(s), fp16\n"
        f"wrote {out / '1' / 'tensorrt.json'} and {out / 'config.pbtxt'}\n"
    )
    (argv,) = [c for c in calls(fake_trtexec) if c != ["--help"]]
    assert argv.count("--fp16") == 1 and argv[-1] == "--skipInference"
    assert [a for a in argv if a.startswith("--profile")] == ["--profile=0", "--profile=1",
                                                              "--profile=2"]  # fmt: skip
    config = read_config(out / "config.pbtxt")
    assert config.platform == "tensorrt_plan"
    assert list(config.instance_group[0].profile) == ["0", "1", "2"]
    assert [s.batch_size for s in config.optimization.cuda.graph_spec] == [1, 8]
    assert read_metadata(out / "1")["model.plan"].triton_image == IMAGE


def test_bad_buckets_and_batch_sizes(bin_dir: Path, tmp_path: Path) -> None:
    model = str(token_onnx(tmp_path / "model.onnx"))
    common = ("build-plan", model, "-o", str(tmp_path / "m"), "--max-length", "64")
    code, output = run(*common, "--buckets", "16,x")
    assert code == 2
    assert "Invalid value for '--buckets': '16,x': use comma-separated lengths" in output
    code, output = run(*common, "--max-batch-size", "4", "--opt-batch-size", "8")
    assert code == 2
    assert "Error: opt batch size 8 must lie in 1..4" in output
    assert not (tmp_path / "m").exists()


def test_generate_defer_plan_and_validate(
    tiny_model_dirs: dict[str, Path], tmp_path: Path, bin_dir: Path
) -> None:
    """The chart's generate step: no GPU and no TensorRT here, exit 0, a repository whose
    plan is deferred; validate says so in one line and calls it valid."""
    model = tiny_model_dirs["text-classification"]
    repo = tmp_path / "repo"
    code, output = run(
        "generate", str(model), "--task", "text-classification", "--name", "cls", "-o",
        str(repo), "--device", "gpu", "--variant", "trt-fp16", "--triton-image", IMAGE,
        "--defer-plan",
    )  # fmt: skip
    assert code == 0, output
    for name in ("config.pbtxt", "build_recipe.json", "build_plan.py", "onnx/model.onnx"):
        assert (repo / "cls_trt" / name).is_file(), name
    assert not (repo / "cls_trt" / "1" / "model.plan").exists()
    assert read_config(repo / "cls_trt" / "config.pbtxt").platform == "tensorrt_plan"
    code, output = run("validate", str(repo))
    assert code == 0
    assert output.splitlines()[0] == (
        "cls_trt: deferred: run cls_trt/build_plan.py on the serving GPU in "
        "nvcr.io/nvidia/tensorrt of the Triton image's release (the Helm chart does)"
    )
    code, output = run("generate", str(model), "-o", str(tmp_path / "x"), "--defer-plan")
    assert code == 2
    assert output.endswith("drop --defer-plan\n")
