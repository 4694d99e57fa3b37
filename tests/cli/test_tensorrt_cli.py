"""`tritonkit build-plan`: the clear error where TensorRT cannot run (these machines), and the
trtexec path end to end against a fake trtexec (it writes a dummy file, not a plan)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from tests.unit.test_tensorrt_build import calls, fake_trtexec, no_tensorrt, token_onnx
from tritonkit.cli import main
from tritonkit.repository.pbtxt import read_config
from tritonkit.tensorrt.build import read_metadata

__all__ = ["fake_trtexec", "no_tensorrt"]  # fixtures used below


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_no_tensorrt_here(no_tensorrt: Path, tmp_path: Path) -> None:
    model = token_onnx(tmp_path / "model.onnx")
    out = tmp_path / "repo" / "m_trt"
    code, output = run("build-plan", str(model), "-o", str(out), "--max-length", "128")
    assert code == 1
    assert output == (
        f"Error: {model}: cannot build a TensorRT plan on this machine: the TensorRT Python API "
        "(import tensorrt) and trtexec on PATH are both missing; build it on a GPU node inside "
        "the target Triton image (the Helm chart's init container runs tritonkit build-plan), "
        "or serve the ONNX model with ONNX Runtime's TensorRT accelerator instead\n"
    )
    assert not (tmp_path / "repo").exists()


def test_build_plan_with_fake_trtexec(fake_trtexec: Path, tmp_path: Path) -> None:
    model = token_onnx(tmp_path / "model.onnx")
    out = tmp_path / "repo" / "m_trt"
    code, output = run(
        "build-plan",
        str(model),
        "-o",
        str(out),
        "--max-length",
        "128",
        "--buckets",
        "16,64",
        "--max-batch-size",
        "8",
        "--precision",
        "fp16",
        "--cuda-graphs",
        "--triton-image",
        "nvcr.io/nvidia/tritonserver:24.10-py3",
    )
    assert code == 0, output
    assert output == (
        f"built {out / '1' / 'model.plan'} with trtexec: TensorRT 10.5.0 on Fake GPU (not a "
        "real build) (compute capability 8.9), 3 profile(s), fp16\n"
        f"wrote {out / '1' / 'tensorrt.json'} and {out / 'config.pbtxt'}\n"
    )
    (argv,) = calls(fake_trtexec)
    assert argv.count("--fp16") == 1 and argv[-1] == "--skipInference"
    assert [a for a in argv if a.startswith("--maxShapes")] == [
        "--maxShapes=input_ids:8x16,attention_mask:8x16",
        "--maxShapes=input_ids:8x64,attention_mask:8x64",
        "--maxShapes=input_ids:8x128,attention_mask:8x128",
    ]
    config = read_config(out / "config.pbtxt")
    assert config.platform == "tensorrt_plan"
    assert list(config.instance_group[0].profile) == ["0", "1", "2"]
    assert [s.batch_size for s in config.optimization.cuda.graph_spec] == [1, 8] * 3
    assert read_metadata(out / "1")["model.plan"].triton_image == (
        "nvcr.io/nvidia/tritonserver:24.10-py3"
    )


def test_bad_buckets_and_batch_sizes(no_tensorrt: Path, tmp_path: Path) -> None:
    model = str(token_onnx(tmp_path / "model.onnx"))
    common = ("build-plan", model, "-o", str(tmp_path / "m"), "--max-length", "64")
    code, output = run(*common, "--buckets", "16,x")
    assert code == 2
    assert "Invalid value for '--buckets': '16,x': use comma-separated lengths" in output
    code, output = run(*common, "--max-batch-size", "4", "--opt-batch-size", "8")
    assert code == 2
    assert "Error: opt batch size 8 must lie in 1..4" in output
    assert not (tmp_path / "m").exists()
