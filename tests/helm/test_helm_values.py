"""`tritonkit helm-values`: chart values from the spec, so that the spec stays the one source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from tests.helm.chart import lint, template
from tritonkit.cli import main
from tritonkit.deploy.helm_values import CHART_OWNED_KEYS, split_image, values_from_spec
from tritonkit.errors import SpecError
from tritonkit.spec import DeploymentSpec, build_spec

SPEC = """\
model: ./my-model
task: text-classification
name: sentiment
device: gpu
max_sequence_length: 128
max_batch_size: 16
dynamic_batching:
  max_queue_delay_us: 200
  preferred_batch_sizes: [4, 8]
instances:
  model: 2
triton_image: registry.local:5000/triton:24.10-py3-tk
export:
  opset: 17
check:
  texts: ["great film"]
  file: texts.jsonl
  max_prob_diff: 0.002
"""


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    (tmp_path / "texts.jsonl").write_text('{"text": "awful"}\n{"text": "fine\\nreally"}\n')
    path = tmp_path / "tritonkit.yaml"
    path.write_text(SPEC)
    return path


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("nvcr.io/nvidia/tritonserver:24.10-py3", ("nvcr.io/nvidia/tritonserver", "24.10-py3", "")),
        ("registry.local:5000/triton:1", ("registry.local:5000/triton", "1", "")),
        (f"r/t@sha256:{'b' * 64}", ("r/t", "", f"sha256:{'b' * 64}")),
        (f"r/t:2@sha256:{'c' * 64}", ("r/t", "2", f"sha256:{'c' * 64}")),
    ],
)
def test_split_image(reference: str, expected: tuple[str, str, str]) -> None:
    assert tuple(split_image(reference).values()) == expected


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        (
            "registry.local:5000/triton",
            "spec: triton_image: 'registry.local:5000/triton' has no tag",
        ),
        ("triton:latest", "spec: triton_image: 'triton:latest' uses 'latest': pin a release tag"),
        ("triton@sha256:abc", "spec: triton_image: 'triton@sha256:abc' has an invalid digest"),
    ],
)
def test_split_image_refuses_unpinned_images(reference: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        split_image(reference)


def test_values_from_spec(spec_file: Path) -> None:
    spec = build_spec(spec_file)
    result = values_from_spec(spec, model_pvc="hf", model_sub_path="m")
    assert result.notices == ()
    carried = result.values["modelRepository"]["generate"]["spec"]
    for section in ("variant", "optimize", "tokenizer", "tensorrt"):  # defaults, carried as is
        value = getattr(spec, section)
        if not isinstance(value, str):
            value = {k: v for k, v in value.model_dump(mode="json").items() if v is not None}
        assert carried.pop(section) == value
    assert result.values == {
        "modelName": "sentiment",
        "image": {"repository": "registry.local:5000/triton", "tag": "24.10-py3-tk", "digest": ""},
        "gpu": {"enabled": True},
        "modelRepository": {
            "source": "generate",
            "generate": {
                "spec": {
                    "task": "text-classification",
                    "max_sequence_length": 128,
                    "max_batch_size": 16,
                    "dynamic_batching": {
                        "enabled": "auto",
                        "max_queue_delay_us": 200,
                        "preferred_batch_sizes": [4, 8],
                        "tokenizer_max_queue_delay_us": 0,
                    },
                    "instances": {"model": 2, "tokenizer": "auto", "threads": "auto"},
                    "target": {},  # the chart fills in the pod's CPU request
                    "export": {"opset": 17, "atol": 1e-4},
                }
            },
        },
        "test": {
            "check": {
                "minCosine": 0.999,
                "maxProbDiff": 0.002,
                "texts": ["great film", "awful", "fine\nreally"],
            }
        },
        "modelSource": {"pvc": {"claimName": "hf", "subPath": "m"}},
    }


def test_a_local_onnx_file_is_not_carried_into_the_cluster(tmp_path: Path) -> None:
    spec = build_spec(None, {"model": tmp_path, "export": {"onnx": tmp_path / "model.onnx"}})
    result = values_from_spec(spec)
    assert "onnx" not in result.values["modelRepository"]["generate"]["spec"]["export"]
    assert len(result.notices) == 1 and "export.onnx" in result.notices[0]


def test_sub_path_needs_a_claim(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="--model-sub-path needs --model-pvc"):
        values_from_spec(build_spec(None, {"model": tmp_path}), model_sub_path="m")


def _rendered_spec(helm: Path, values: dict[str, Any], tmp_path: Path, model: Path) -> Any:
    configmap = template(helm, values).named("ConfigMap", "-spec")
    data = yaml.safe_load(configmap["data"]["tritonkit.yaml"])
    data["model"] = str(model)  # the pod's /model, substituted
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump(data))
    return build_spec(path)


@pytest.mark.parametrize("device", ["gpu", "cpu"])
def test_the_spec_survives_the_trip_through_the_chart(
    helm: Path, spec_file: Path, tmp_path: Path, device: str
) -> None:
    """spec -> helm-values -> chart -> ConfigMap -> spec: everything but the pod's paths."""
    original = build_spec(spec_file, {"device": device})
    values = values_from_spec(original).values
    lint(helm, values)
    rendered: DeploymentSpec = _rendered_spec(helm, values, tmp_path, original.model)
    assert rendered.output.parent == Path("/repositories")  # the release's folder on the claim
    assert rendered.target.cpus == 2  # the chart's default CPU request of tritonserver
    keep = set(DeploymentSpec.model_fields) - {"output", "check", "force", "target"}
    assert rendered.model_dump(include=keep) == original.model_dump(include=keep)
    check = template(helm, values).container("check", "Job")["command"]
    assert check[check.index("--max-prob-diff") + 1] == "0.002"
    assert CHART_OWNED_KEYS == ("model", "output", "name", "device", "triton_image", "force")


def test_cli_writes_the_values_file(helm: Path, spec_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "values-spec.yaml"
    result = CliRunner().invoke(
        main, ["helm-values", "--spec", str(spec_file), "-o", str(out), "--model-pvc", "hf"]
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert "helm install sentiment " in result.output
    text = out.read_text()
    assert text.startswith("# Written by `tritonkit helm-values`")
    assert yaml.safe_load(text)["modelSource"] == {"pvc": {"claimName": "hf"}}
    lint(helm, out)


def test_cli_prints_to_stdout(spec_file: Path) -> None:
    result = CliRunner().invoke(main, ["helm-values", "--spec", str(spec_file)])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output)["modelName"] == "sentiment"


def test_cli_reports_a_bad_spec(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("model: ./m\ntriton_image: nvcr.io/nvidia/tritonserver\n")
    result = CliRunner().invoke(main, ["helm-values", "--spec", str(path)])
    assert result.exit_code == 2
    assert result.output == (
        f"Error: {path}: triton_image: 'nvcr.io/nvidia/tritonserver' has no tag: pin one, "
        "e.g. nvcr.io/nvidia/tritonserver:24.10-py3\n"
    )


def test_cli_needs_a_spec() -> None:
    result = CliRunner().invoke(main, ["helm-values"])
    assert result.exit_code == 2
    assert "Missing option '--spec'" in result.output


@pytest.mark.parametrize(
    ("resources", "spec", "cpus"),
    [
        ({"requests": {"cpu": "4"}}, {}, 4),
        ({"requests": {"cpu": "1500m"}}, {}, 1),
        ({"requests": {"cpu": 3.7}}, {}, 3),
        ({"requests": {"cpu": "250m"}}, {}, 1),
        ({"requests": {"cpu": None}, "limits": {"cpu": "6"}}, {}, 6),
        ({"requests": {"cpu": "4"}}, {"target": {"cpus": 12}}, 12),  # the spec's own wins
        ({"requests": {"cpu": None}}, {}, None),  # neither: generate uses its node's CPUs
    ],
)
def test_the_layout_follows_the_pods_cpu_request(
    helm: Path, tmp_path: Path, resources: dict[str, Any], spec: dict[str, Any], cpus: int | None
) -> None:
    """The chart passes tritonserver's CPU request (whole cores) to `tritonkit generate` as
    target.cpus, so the instances fit the pod, not the node the generate Job ran on."""
    from tritonkit.repository.layout import resolve_layout

    values = {
        "tritonkitImage": {"repository": "registry.local/tritonkit"},
        "gpu": {"enabled": False},
        "resources": resources,
        "modelRepository": {"generate": {"spec": spec}},
    }
    lint(helm, values)
    rendered = _rendered_spec(helm, values, tmp_path, tmp_path)
    assert rendered.target.cpus == cpus
    if cpus is not None:
        layout = resolve_layout(rendered)
        assert (layout.model_instances, layout.threads) == (cpus, 1)
