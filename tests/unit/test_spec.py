from pathlib import Path

import pytest

from tritonkit.errors import SpecError
from tritonkit.spec import build_spec, spec_to_yaml


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tritonkit.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    spec = build_spec(write(tmp_path, "model: ./m\noutput: repo\n"))
    assert spec.model == (tmp_path / "m").resolve()
    assert spec.output == (tmp_path / "repo").resolve()
    assert spec.task == "feature-extraction"
    assert spec.name == "minilm"
    assert spec.max_batch_size == 32
    assert spec.dynamic_batching.enabled
    assert spec.tokenizer_name == "minilm_tokenizer"
    assert spec.model_name == "minilm_onnx"


def test_flags_override_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "model: m\nname: a\nmax_batch_size: 4\ndynamic_batching:\n  max_queue_delay_us: 7\n",
    )
    spec = build_spec(
        path, {"name": "b", "max_batch_size": None, "dynamic_batching": {"enabled": False}}
    )
    assert spec.name == "b"
    assert spec.max_batch_size == 4  # None means: flag not given
    assert spec.dynamic_batching.enabled is False
    assert spec.dynamic_batching.max_queue_delay_us == 7


def test_every_error_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "model: m\nname: a b\nbatch: 3\nmax_batch_size: abc\ndevice: tpu\n",
    )
    with pytest.raises(SpecError) as info:
        build_spec(path)
    lines = str(info.value).splitlines()
    assert f"{path}: batch: unknown key: remove it or check its spelling" in lines
    assert any(
        line.startswith(f"{path}: max_batch_size: Input should be a valid integer")
        for line in lines
    )
    assert any(line.startswith(f"{path}: device: Input should be 'cpu' or 'gpu'") for line in lines)
    assert (
        f"{path}: name: 'a b' is not a valid deployment name: use letters, digits, '_', '-', '.'"
        " (no spaces or path separators), starting with a letter or digit"
    ) in lines
    assert len(lines) == 4


@pytest.mark.parametrize("name", ["a/b", "../x", "has space", "", "-lead"])
def test_invalid_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(SpecError, match="name"):
        build_spec(None, {"model": "m", "name": name})


def test_nested_unknown_key(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        build_spec(write(tmp_path, "model: m\ninstances:\n  gpus: 2\n"))
    expected = "instances.gpus: unknown key: remove it or check its spelling"
    assert str(info.value) == f"{tmp_path / 'tritonkit.yaml'}: {expected}"


def test_missing_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        build_spec(tmp_path / "nope.yaml")
    assert (
        str(info.value) == f"{tmp_path / 'nope.yaml'}: spec file not found: check the --spec path"
    )
    with pytest.raises(SpecError, match="not valid YAML"):
        build_spec(write(tmp_path, "model: [unclosed\n"))
    with pytest.raises(SpecError, match="must be a YAML mapping"):
        build_spec(write(tmp_path, "- a\n- b\n"))


def test_model_is_required() -> None:
    with pytest.raises(SpecError) as info:
        build_spec(None, {})
    assert str(info.value) == "spec: model: Field required"


def test_round_trip_yaml(tmp_path: Path) -> None:
    spec = build_spec(
        None, {"model": str(tmp_path), "output": str(tmp_path / "r"), "name": "x", "device": "gpu"}
    )
    path = write(tmp_path, spec_to_yaml(spec))
    assert build_spec(path) == spec


def test_cross_field_rules_are_reported_together(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "model: m\nmax_batch_size: 8\ndynamic_batching:\n  preferred_batch_sizes: [4, 16]\n"
        "variant: trt-fp16\ntensorrt:\n  accelerator: true\n",
    )
    with pytest.raises(SpecError) as info:
        build_spec(path)
    assert str(info.value).splitlines() == [
        f"{path}: dynamic_batching.preferred_batch_sizes: [16] exceed max_batch_size 8: lower "
        "them or raise max_batch_size",
        f"{path}: variant: trt-fp16: TensorRT plans are for GPU targets: set device: gpu",
        f"{path}: tensorrt.accelerator: ONNX Runtime's TensorRT accelerator needs device: gpu",
    ]


def test_every_flag_is_a_spec_key() -> None:
    """The CLI's flags come from the spec's fields: each names its key, and two fields of one
    command never share a flag."""
    from tritonkit.cli.generate_cmd import GENERATE_FLAGS

    names = [flag.names[-1] for flag in GENERATE_FLAGS]
    assert len(names) == len(set(names))
    assert {"--max-queue-delay-us", "--buckets", "--tensorrt-accelerator", "--force"} <= set(names)
    paths = {".".join(flag.path) for flag in GENERATE_FLAGS}
    assert {"dynamic_batching.max_queue_delay_us", "tokenizer.buckets", "force"} <= paths
