"""The chart's documentation and the places it must agree with: values.yaml comments, the
schema, tritonkit's spec and versions, the images, the examples in the README."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node

from tests.helm.chart import CHART, ROOT, template
from tritonkit import __version__
from tritonkit.deploy.helm_values import CHART_OWNED_KEYS, CHECK_KEY
from tritonkit.server.install import TRITON_VERSION
from tritonkit.spec import DEFAULT_TRITON_IMAGE, DeploymentSpec

VALUES_TEXT = (CHART / "values.yaml").read_text()
VALUES = yaml.safe_load(VALUES_TEXT)
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
CHART_META = yaml.safe_load((CHART / "Chart.yaml").read_text())


def _documented(lines: list[str], line: int) -> bool:
    """A `# --` comment block directly above the key documents it (and its whole subtree)."""
    block = []
    index = line - 1
    while index >= 0 and lines[index].strip().startswith("#"):
        block.append(lines[index].strip())
        index -= 1
    return any(comment.startswith("# --") for comment in block)


def _undocumented(node: Node, lines: list[str], path: str = "") -> list[str]:
    missing = []
    assert isinstance(node, MappingNode)
    for key, value in node.value:
        where = f"{path}.{key.value}" if path else key.value
        if _documented(lines, key.start_mark.line):
            continue
        if isinstance(value, MappingNode) and value.value:
            missing += _undocumented(value, lines, where)  # a section: its keys need comments
        else:
            missing.append(f"values.yaml:{key.start_mark.line + 1}: {where}")
    return missing


def test_every_value_is_documented_where_it_is_defined() -> None:
    root = yaml.compose(VALUES_TEXT)
    assert root is not None
    assert _undocumented(root, VALUES_TEXT.splitlines()) == []


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return dict(SCHEMA["definitions"][schema["$ref"].rsplit("/", 1)[1]])
    return schema


def _schema_paths(schema: dict[str, Any], path: str = "") -> set[str]:
    schema = _resolve(schema)
    paths = set()
    if schema.get("additionalProperties") is False:
        for key, sub in schema.get("properties", {}).items():
            where = f"{path}.{key}" if path else key
            paths.add(where)
            paths |= _schema_paths(sub, where)
    return paths


def _value_paths(values: dict[str, Any], schema: dict[str, Any], path: str = "") -> set[str]:
    schema = _resolve(schema)
    paths = set()
    for key, value in values.items():
        where = f"{path}.{key}" if path else key
        paths.add(where)
        sub = schema.get("properties", {}).get(key, {})
        if isinstance(value, dict) and _resolve(sub).get("additionalProperties") is False:
            paths |= _value_paths(value, sub, where)
    return paths


def test_schema_and_values_have_the_same_keys() -> None:
    """Every default has a schema entry and every closed schema object's keys have defaults
    (free-form maps such as resources or the spec block are left to their own schema)."""
    in_schema = _schema_paths(SCHEMA) - {"global"}
    in_values = _value_paths(VALUES, SCHEMA) - {"global"}  # open: parent charts add their own
    assert set(VALUES["global"]) == set(SCHEMA["properties"]["global"]["properties"])
    spec_keys = {p for p in in_schema if p.startswith("modelRepository.generate.spec.")}
    resources = {p for p in in_schema if re.search(r"resources\.(requests|limits)$", p)}
    resources |= {p for p in in_schema if p.endswith(".matchExpressions")}
    assert in_values - in_schema == set()
    assert in_schema - in_values - spec_keys - resources == set()


def test_spec_block_schema_follows_tritonkits_spec() -> None:
    block = SCHEMA["properties"]["modelRepository"]["properties"]["generate"]["properties"]["spec"]
    # sections of other commands: those that call a server, and `tritonkit kserve`'s
    serving = {CHECK_KEY, "loadtest", "serve", "tune", "kserve"}
    fields = set(DeploymentSpec.model_fields) - set(CHART_OWNED_KEYS) - serving
    assert set(block["properties"]) == fields
    for name, sub in block["properties"].items():
        model = DeploymentSpec.model_fields[name].annotation
        if sub.get("type") == "object":
            nested = set(getattr(model, "model_fields", {}))
            assert set(sub["properties"]) == nested - {"onnx"}, name  # onnx: a local file


def test_versions_agree() -> None:
    assert CHART_META["version"] == __version__
    assert VALUES["tritonkitImage"]["tag"] == __version__
    assert CHART_META["appVersion"] == TRITON_VERSION
    image = VALUES["image"]
    assert f"{image['repository']}:{image['tag']}" == DEFAULT_TRITON_IMAGE


def test_tritonkit_image_provides_what_the_chart_copies(helm: Path) -> None:
    dockerfile = (CHART / "images" / "tritonkit" / "Dockerfile").read_text()
    pod_mode = {"modelRepository": {"generate": {"mode": "pod"}}}
    source = template(helm, pod_mode).container("bundle-tokenizers")["command"][2]
    assert source.endswith("/.")
    assert f"--target {source[:-2]}" in dockerfile
    assert "torch==2.13.0" in dockerfile and "torch==2.13.0" in (ROOT / "Makefile").read_text()
    assert "USER 1000:1000" in dockerfile
    assert VALUES["podSecurityContext"]["runAsUser"] == 1000


def test_prometheus_adapter_rule_serves_the_hpa_metric() -> None:
    adapter = yaml.safe_load((CHART / "examples" / "prometheus-adapter-values.yaml").read_text())
    (rule,) = adapter["rules"]["custom"]
    assert rule["name"]["as"] == VALUES["autoscaling"]["custom"]["metricName"]
    assert "nv_inference_queue_duration_us" in rule["metricsQuery"]
    assert "nv_inference_request_success" in rule["metricsQuery"]
    assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}


def test_readme_shows_the_tested_examples() -> None:
    """The worked examples in README.md are the example files the matrix lints and validates."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Deploy to Kubernetes", 1)[1].split("\n## ", 1)[0]
    for name in ("values-gpu-generate.yaml", "values-s3.yaml", "values-mig.yaml"):
        body = (CHART / "examples" / name).read_text()
        assert body in section, f"README.md 'Deploy to Kubernetes' must show helm/examples/{name}"
