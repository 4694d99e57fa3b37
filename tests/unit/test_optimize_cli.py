"""`tritonkit optimize`, `bench`, `finetune` and `generate --variant`: output and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tritonkit.cli import main
from tritonkit.errors import SpecError
from tritonkit.spec import build_spec
from tritonkit.util.cpu import CpuInfo, parse_cpuinfo, quant_preset

TEXTS = "the movie was great\nbad food\nhello world, this is a test\nparis is a city\n"


@pytest.fixture()
def texts(tmp_path: Path) -> Path:
    path = tmp_path / "texts.txt"
    path.write_text(TEXTS, encoding="utf-8")
    return path


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def last_line(result: Result) -> str:
    return result.output.rstrip().splitlines()[-1]


def test_optimize_prints_the_gate(
    tmp_path: Path, tiny_model_dirs: dict[str, Path], texts: Path
) -> None:
    model = tiny_model_dirs["text-classification"]
    out = tmp_path / "v"
    result = run(
        "optimize", model, "--task", "text-classification", "-o", out,
        "--eval-file", texts, "--calibration-file", texts,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert last_line(result) == f"wrote {out}: 4 of 4 variants passed the gate"
    assert "variants vs fp32 PyTorch (accuracy gate)" in result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "fp32", "fp32-fused", "int8-dynamic", "int8-static",
    ]  # fmt: skip


def test_optimize_bad_inputs(tmp_path: Path, tiny_model_dirs: dict[str, Path]) -> None:
    model = tiny_model_dirs["text-classification"]
    out = tmp_path / "v"
    missing = tmp_path / "nope.txt"
    result = run("optimize", model, "--task", "text-classification", "-o", out,
                 "--variants", "int8-static", "--calibration-file", missing)  # fmt: skip
    assert result.exit_code == 1
    assert last_line(result) == f"Error: {missing}: file not found: check the path"
    empty = tmp_path / "empty.txt"
    empty.write_text("\n", encoding="utf-8")
    result = run("optimize", model, "--task", "text-classification", "-o", out,
                 "--calibration-file", empty)  # fmt: skip
    assert result.exit_code == 1
    assert last_line(result).startswith(f"Error: {empty}: no texts in the file")
    labels = tmp_path / "eval.csv"
    labels.write_text("text,label\ngood,positive\nmeh,neutral\n", encoding="utf-8")
    result = run("optimize", model, "--task", "text-classification", "-o", out,
                 "--eval-file", labels)  # fmt: skip
    assert result.exit_code == 1
    assert last_line(result) == (
        f"Error: {labels}: row 2: label 'neutral' is not one of the model's labels "
        "(negative, positive): fix the file or use the model it was written for"
    )
    result = run("optimize", model, "-o", out, "--variants", "int4")
    assert result.exit_code == 2
    assert "'int4' is not one of 'fp32', 'fp32-fused', 'fp16'" in result.output
    assert not out.exists()


def test_bench_cli_writes_table_json_plot(
    tmp_path: Path, tiny_model_dirs: dict[str, Path], texts: Path
) -> None:
    out = tmp_path / "bench"
    result = run(
        "bench", tiny_model_dirs["feature-extraction"], "-o", out,
        "--variants", "fp32", "--variants", "int8-dynamic", "--eval-file", texts,
        "--calibration-file", texts, "--sequence-length", "12", "--batch-size", "2",
        "--rounds", "1", "--round-seconds", "0.01", "--no-rss", "--threads", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "| fixed | 12 | 2 | pytorch |" in result.output
    assert "generate --variant auto would deploy: " in result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "bench.json", "bench.md", "bench.png", "variants",
    ]  # fmt: skip
    data = json.loads((out / "bench.json").read_text(encoding="utf-8"))
    assert data["config"]["threads"] == 1


def test_finetune_cli_is_cached(tmp_path: Path, tiny_model_dirs: dict[str, Path]) -> None:
    base = tiny_model_dirs["feature-extraction"]
    args = ("finetune", base, "--cache-dir", tmp_path, "--max-steps", "2")
    first = run(*args)
    assert first.exit_code == 0, first.output
    assert "trained in" in first.output and "eval accuracy" in first.output
    path = run(*args, "--print-path")
    assert path.exit_code == 0
    folder = Path(path.output.strip())
    assert folder.parent == tmp_path and (folder / "finetune.json").is_file()
    assert "(cached)" in run(*args).output


def test_generate_variant_flags_map_to_the_spec(tmp_path: Path) -> None:
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(
        "model: m\nvariant: auto\noptimize:\n  variants: [fp32, int8-dynamic]\n"
        "  eval_file: eval.jsonl\n  calibration_method: entropy\n  max_accuracy_drop: 0.5\n",
        encoding="utf-8",
    )
    spec = build_spec(spec_file, {"optimize": {"threads": 1}})
    assert spec.variant == "auto"
    assert spec.optimize.variants == ("fp32", "int8-dynamic")
    assert spec.optimize.eval_file == (tmp_path / "eval.jsonl").resolve()
    assert (spec.optimize.calibration_method, spec.optimize.threads) == ("entropy", 1)
    result = run("generate", "--spec", spec_file, "--variant", "int4")
    assert result.exit_code == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: m\nvariant: int4\noptimize:\n  calibration: x\n", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        build_spec(bad)
    assert str(info.value).splitlines() == [
        f"{bad}: variant: Input should be 'auto', 'fp32', 'fp32-fused', 'fp16', 'int8-dynamic', "
        "'int8-static', 'int8-qdq', 'trt-fp16' or 'trt-int8'",
        f"{bad}: optimize.calibration: unknown key: remove it or check its spelling",
    ]
    result = run("generate", tmp_path, "--variant", "int8-dynamic", "--onnx", spec_file,
                 "-o", tmp_path / "repo")  # fmt: skip
    assert result.exit_code == 2  # a cross-field rule of the spec, refused before any work
    assert last_line(result) == (
        "Error: spec: export.onnx: a given ONNX file and variant int8-dynamic exclude each "
        "other: variants are built from the model folder; drop one of them"
    )
    assert not (tmp_path / "repo").exists()


def test_cpu_flags_choose_the_preset() -> None:
    model, flags = parse_cpuinfo(
        "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 fma avx512f avx512_vnni\n"
    )
    assert (model, flags) == ("AMD EPYC", ("avx2", "avx512_vnni", "avx512f", "fma"))

    def preset(machine: str, *flags: str) -> str:
        return CpuInfo("x", machine, 2, tuple(flags)).preset

    assert preset("x86_64", "avx2", "fma") == "avx2"
    assert preset("x86_64", "avx2", "avx512f") == "avx512"
    assert preset("x86_64", "avx2", "avx512f", "avx512_vnni") == "avx512-vnni"
    assert preset("aarch64", "asimddp") == "arm64"
    info = CpuInfo("x", "x86_64", 2, ("avx2",))
    assert quant_preset("auto", info).reduce_range is True
    assert quant_preset("avx512-vnni", info).reduce_range is False
