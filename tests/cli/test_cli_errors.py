"""Bad input: one clear `Error:` line, a non-zero exit, nothing written or lost."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tritonkit.cli import main


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_missing_model_folder(tmp_path: Path) -> None:
    code, out = run("generate", str(tmp_path / "nope"), "-o", str(tmp_path / "repo"))
    assert code == 1
    assert out == (
        f"Error: {tmp_path / 'nope'}: model folder not found: "
        "pass a local Hugging Face model folder\n"
    )
    assert not (tmp_path / "repo").exists()


def test_folder_without_config_json(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    code, out = run("generate", str(tmp_path / "m"), "-o", str(tmp_path / "repo"))
    assert code == 1
    assert out == (
        f"Error: {tmp_path / 'm' / 'config.json'}: not found: pass a folder written by "
        "save_pretrained() that holds it\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_unsupported_task_flag(tmp_path: Path) -> None:
    code, out = run("generate", str(tmp_path), "--task", "translation")
    assert code == 2
    assert "Invalid value for '--task': 'translation' is not one of" in out


def test_unsupported_task_in_spec(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("model: m\ntask: summarization\n")
    code, out = run("generate", "--spec", str(spec))
    assert code == 2
    assert out == (
        f"Error: {spec}: task: Input should be 'text-classification', 'feature-extraction' "
        "or 'token-classification'\n"
    )


def test_unsupported_architecture(tmp_path: Path, tiny_model_dirs: dict[str, Path]) -> None:
    model = tiny_model_dirs["feature-extraction"]
    code, out = run(
        "generate", str(model), "--task", "token-classification", "-o", str(tmp_path / "r")
    )
    assert code == 1
    assert out.startswith(f"Error: {model / 'config.json'}: ")
    assert out.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_spec_unknown_key_and_wrong_type(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("model: m\nbatching: 3\nmax_batch_size: many\n")
    code, out = run("generate", "--spec", str(spec))
    assert code == 2
    assert out == (
        f"Error: {spec}: max_batch_size: Input should be a valid integer, unable to parse "
        f"string as an integer\n{spec}: batching: unknown key: remove it or check its spelling\n"
    )


@pytest.mark.parametrize("name", ["my/model", "my model", "../up"])
def test_invalid_deployment_name(tmp_path: Path, name: str) -> None:
    code, out = run("generate", str(tmp_path), "--name", name, "-o", str(tmp_path / "r"))
    assert code == 2
    assert out == (
        f"Error: spec: name: '{name}' is not a valid deployment name: use letters, digits, "
        "'_', '-', '.' (no spaces or path separators), starting with a letter or digit\n"
    )
    assert not (tmp_path / "r").exists()


def test_output_exists_without_force(tmp_path: Path, tiny_model_dirs: dict[str, Path]) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "keep.txt").write_text("precious")
    code, out = run(
        "generate",
        str(tiny_model_dirs["text-classification"]),
        "--task",
        "text-classification",
        "-o",
        str(repo),
    )
    assert code == 1
    assert out == (
        f"Error: {repo}: output already exists: pass --force to replace it or choose another -o\n"
    )
    assert [p.name for p in repo.iterdir()] == ["keep.txt"]
    assert (repo / "keep.txt").read_text() == "precious"


def test_corrupt_onnx(tmp_path: Path, tiny_model_dirs: dict[str, Path]) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07this is not a protobuf\xff\xff")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, out = run(
        "generate",
        str(tiny_model_dirs["text-classification"]),
        "--task",
        "text-classification",
        "--onnx",
        str(bad),
        "-o",
        str(out_dir / "repo"),
    )
    assert code == 1
    assert out.startswith(f"Error: {bad}: not a valid ONNX model (")
    assert out.endswith("): re-export it with `tritonkit export`\n")
    assert out.count("\n") == 1
    assert list(out_dir.iterdir()) == []  # no partial repository, no staging folder


def test_force_replaces_and_failed_force_keeps_old(
    tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    model = tiny_model_dirs["text-classification"]
    repo = tmp_path / "repo"
    args = (
        "generate",
        str(model),
        "--task",
        "text-classification",
        "--name",
        "cls",
        "-o",
        str(repo),
    )
    code, out = run(*args)
    assert code == 0, out
    before = (repo / "cls_onnx" / "1" / "model.onnx").read_bytes()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    code, out = run(*args, "--force", "--onnx", str(bad))
    assert code == 1
    assert (repo / "cls_onnx" / "1" / "model.onnx").read_bytes() == before
    assert leftovers(tmp_path) == []
    code, out = run(*args, "--force", "--max-batch-size", "4")
    assert code == 0, out
    assert "max_batch_size: 4" in (repo / "cls" / "config.pbtxt").read_text()
    assert leftovers(tmp_path) == []


def test_validate_reports_every_problem(tmp_path: Path, tiny_model_dirs: dict[str, Path]) -> None:
    model = tiny_model_dirs["text-classification"]
    repo = tmp_path / "repo"
    code, out = run(
        "generate", str(model), "--task", "text-classification", "--name", "c", "-o", str(repo)
    )
    assert code == 0, out
    code, out = run("validate", str(repo))
    assert code == 0 and "valid" in out
    (repo / "c_tokenizer" / "1" / "model.py").unlink()
    config = repo / "c" / "config.pbtxt"
    wired = 'input_map { key: "input_ids" value: "input_ids" }'
    config.write_text(
        config.read_text().replace(wired, wired.replace('value: "input_ids"', 'value: "ids"'))
    )
    shutil.rmtree(repo / "c_onnx" / "1")
    code, out = run("validate", str(repo))
    assert code == 1
    lines = out.splitlines()
    assert "c_onnx: no numeric version folder (e.g. c_onnx/1/): add one" in lines
    assert "c_tokenizer/1/model.py: Python backend file missing" in lines
    assert any("input_map value 'ids' is produced by no earlier step" in line for line in lines)
    assert lines[-1] == f"Error: {repo}: 3 problem(s) found"
