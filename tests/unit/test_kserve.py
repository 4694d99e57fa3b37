"""`tritonkit kserve`: the InferenceService is checked field by field against KServe's own API
models (the kserve 0.21.0 SDK's openapi_types/attribute_map, read as data from its installed
source files, never imported), and its Kubernetes parts with kubernetes-validate (strict)."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from tritonkit.cli import main
from tritonkit.deploy.kserve import cpu_cores, inference_service
from tritonkit.errors import SpecError
from tritonkit.spec import build_spec
from tritonkit.util.resources import data_dir

K8S_VERSIONS = ("1.25.0", "1.30.0", "1.35.0")


def _kserve_models() -> Path:
    spec = importlib.util.find_spec("kserve")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the kserve package is missing: run `make helm-tools` (pip install kserve)")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _model_types(class_name: str) -> tuple[dict[str, str], dict[str, str]]:
    """(openapi_types, attribute_map) of a KServe model class, from its source file."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower()
    snake = snake.replace("v1beta1_", "v1beta1_", 1)
    path = _kserve_models() / f"{snake}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: dict[str, dict[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id in ("openapi_types", "attribute_map"):
                found[target.id] = ast.literal_eval(node.value)
    return found["openapi_types"], found["attribute_map"]


def _check(value: Any, type_name: str, where: str, core: list[tuple[str, str, Any]]) -> None:
    """Every key known to KServe's model of `type_name`, recursively; Kubernetes core types
    (V1...) are collected for kubernetes-validate."""
    if type_name.startswith("list["):
        assert isinstance(value, list), where
        for index, item in enumerate(value):
            _check(item, type_name[5:-1], f"{where}[{index}]", core)
    elif type_name.startswith("dict("):
        assert isinstance(value, dict), where
        inner = type_name[5:-1].split(",", 1)[1].strip()
        for key, item in value.items():
            _check(item, inner, f"{where}.{key}", core)
    elif type_name in ("str", "int", "bool", "float"):
        assert isinstance(value, {"str": str, "int": int, "bool": bool, "float": float}[type_name])
    elif type_name.startswith("V1beta1"):
        types, names = _model_types(type_name)
        by_json = {json_name: types[python] for python, json_name in names.items()}
        assert isinstance(value, dict), where
        unknown = sorted(set(value) - set(by_json))
        assert not unknown, f"{where}: not in KServe's {type_name}: {unknown}"
        for key, item in value.items():
            _check(item, by_json[key], f"{where}.{key}", core)
    else:
        core.append((where, type_name, value))


def _spec(tmp_path: Path, **keys: Any) -> Any:
    kserve = {"storage_uri": "s3://models/minilm", "image": "registry.local/triton-tok:24.10"}
    return build_spec(None, {"model": tmp_path, "name": "minilm", "kserve": kserve, **keys})


def _validate_core(service: dict[str, Any]) -> None:
    predictor = service["spec"]["predictor"]
    model = dict(predictor["model"])
    container = {"name": "kserve-container", "image": model["image"]}
    for key in ("args", "env", "resources", "readinessProbe", "startupProbe", "livenessProbe",
                "securityContext", "volumeMounts"):  # fmt: skip
        container[key] = model[key]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": service["metadata"],
        "spec": {
            "containers": [container],
            **{k: predictor[k] for k in ("volumes", "securityContext", "serviceAccountName",
                                          "automountServiceAccountToken") if k in predictor},
            **({"tolerations": predictor["tolerations"]} if "tolerations" in predictor else {}),
        },
    }  # fmt: skip
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(pod, version, strict=True)


@pytest.mark.parametrize("device", ["gpu", "cpu"])
def test_the_inference_service_matches_kserves_api(tmp_path: Path, device: str) -> None:
    service = inference_service(_spec(tmp_path, device=device))
    core: list[tuple[str, str, Any]] = []
    _check(service, "V1beta1InferenceService", "isvc", core)
    assert {t for _, t, _ in core} >= {"V1ObjectMeta", "V1Probe", "V1EnvVar"}
    _validate_core(service)
    model = service["spec"]["predictor"]["model"]
    limits = model["resources"]["limits"]
    assert ("nvidia.com/gpu" in limits) == (device == "gpu")
    assert ("tolerations" in service["spec"]["predictor"]) == (device == "gpu")
    visible = [e for e in model["env"] if e["name"] == "NVIDIA_VISIBLE_DEVICES"]
    assert visible == (
        [] if device == "gpu" else [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"}]
    )
    assert model["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_check_catches_a_field_kserve_does_not_have(tmp_path: Path) -> None:
    service = inference_service(_spec(tmp_path))
    service["spec"]["predictor"]["model"]["storageURI"] = "s3://typo"
    with pytest.raises(AssertionError, match=r"not in KServe's V1beta1ModelSpec: \['storageURI'\]"):
        _check(service, "V1beta1InferenceService", "isvc", [])


def test_control_apis_restricted_and_the_chart_probe(tmp_path: Path) -> None:
    model = inference_service(_spec(tmp_path))["spec"]["predictor"]["model"]
    restricted = [a for a in model["args"] if "restricted" in a]
    assert len(restricted) == 2 and all(
        "model-repository,model-config,shared-memory,logging,trace:tritonkit-admin-key=" in a
        for a in restricted
    )
    key = next(e for e in model["env"] if e["name"] == "TRITONKIT_ADMIN_KEY")
    assert key["valueFrom"]["secretKeyRef"] == {"name": "minilm-tritonkit-admin-key",
                                                "key": "admin-key"}  # fmt: skip
    command = model["readinessProbe"]["exec"]["command"]
    script = (data_dir("helm") / "files" / "inference_probe.py").read_text(encoding="utf-8")
    assert command == ["python3", "-c", script, "127.0.0.1:8080", "minilm", "9"]
    assert model["resources"]["limits"]["memory"] == "8Gi"


def test_what_kserve_cannot_serve_is_refused_at_once(tmp_path: Path) -> None:
    spec = build_spec(
        None, {"model": tmp_path, "name": "My_Model", "device": "gpu", "variant": "trt-fp16"}
    )
    with pytest.raises(SpecError) as info:
        inference_service(spec, "s.yaml")
    assert str(info.value).splitlines() == [
        "s.yaml: name: 'My_Model' is not a DNS-1035 label, which KServe requires: use "
        "lower-case letters, digits and '-', starting with a letter (at most 63)",
        "s.yaml: variant: trt-fp16: KServe's predictor has no per-pod plan build step: deploy "
        "with the Helm chart, or an ONNX variant",
        "s.yaml: kserve.storage_uri: required: where the generated repository was synced (e.g. "
        "s3://bucket/minilm); pass --storage-uri",
        "s.yaml: kserve.image: required: the stock Triton runtime image lacks `tokenizers` for "
        "the tokenizer model; build helm/images/triton/Dockerfile and pass --image",
    ]


def _cpu_request(service: dict[str, Any]) -> str:
    return str(service["spec"]["predictor"]["model"]["resources"]["requests"]["cpu"])


def test_the_cpu_request_follows_the_target_the_layout_was_made_for(tmp_path: Path) -> None:
    assert _cpu_request(inference_service(_spec(tmp_path))) == "2"
    assert _cpu_request(inference_service(_spec(tmp_path, target={"cpus": 8}))) == "8"
    kserve = {"storage_uri": "s3://m/x", "image": "r/t:1", "cpu": "8500m"}
    assert _cpu_request(inference_service(_spec(tmp_path, kserve=kserve, target={"cpus": 8}))) == (
        "8500m"
    )
    for cpu, cores in (("2", 2.0), ("1.5", 1.5), ("500m", 0.5), ("+3", 3.0), ("1e1", 10.0)):
        assert cpu_cores(cpu) == cores
    kserve = {"storage_uri": "s3://m/x", "image": "r/t:1", "cpu": "3500m"}
    with pytest.raises(SpecError) as info:
        inference_service(_spec(tmp_path, kserve=kserve, target={"cpus": 4}), "s.yaml")
    assert str(info.value) == (
        "s.yaml: kserve.cpu: 3500m is less than target.cpus 4, the cores the repository's "
        "instances and threads were generated for: raise --cpu to 4, or generate again with a "
        "smaller --target-cpus"
    )
    kserve = {"storage_uri": "s3://m/x", "image": "r/t:1", "cpu": "2Ki"}
    with pytest.raises(SpecError) as info:
        inference_service(_spec(tmp_path, kserve=kserve), "s.yaml")
    assert str(info.value) == ("s.yaml: kserve.cpu: '2Ki' is not a CPU quantity, e.g. 2, 1.5, 500m")


def test_cli_writes_the_manifest_and_rejects_bad_values(tmp_path: Path) -> None:
    spec_file = tmp_path / "tritonkit.yaml"
    spec_file.write_text("model: m\nname: minilm\nkserve:\n  storage_uri: s3://b/m\n")
    out = tmp_path / "isvc.yaml"
    runner = CliRunner()
    result = runner.invoke(main, ["kserve", "--spec", str(spec_file), "--image",
                                  "registry.local/t:1", "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(out.read_text())["spec"]["predictor"]["model"]["storageUri"] == "s3://b/m"
    bad = runner.invoke(main, ["kserve", "--spec", str(spec_file), "--image", "img\nRUN x"])
    assert bad.exit_code == 2
    assert (
        bad.output.strip()
        .splitlines()[-1]
        .startswith(
            f"Error: {spec_file}: kserve.image: 'img\\nRUN x' is not a valid image reference"
        )
    )
    bad = runner.invoke(main, ["kserve", "--spec", str(spec_file), "--memory", "lots"])
    assert bad.exit_code == 2
    assert "kserve.memory: 'lots' is not a Kubernetes quantity" in bad.output
