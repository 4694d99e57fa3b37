"""Issue 12 defect 7: the autoscaling metric counted each client request about three times.

A real Prometheus (Debian's `prometheus`, `make system-tools`) scrapes the session's served
release (tests/helm/deployment.py: the chart's arguments, confined) every second, with the labels
a Prometheus Operator ServiceMonitor gives its targets (namespace, service, pod), and loads the
rules of the release's PrometheusRule. After a known load, the prometheus-adapter rule
(helm/examples/prometheus-adapter-values.yaml), the recording rule, the alerts and every
dashboard query are evaluated through Prometheus' HTTP API and compared with the counters read
from /metrics directly."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from tests.helm.chart import CHART, FULLNAME, NAMESPACE
from tests.helm.deployment import NAME, Deployed
from tests.helm.system_tools import require
from tritonkit.server.process import free_port

pytestmark = pytest.mark.integration

POD = "t-tritonkit-0"
REQUESTS = 48
_SAMPLE = re.compile(r'^(nv_inference_\w+)\{model="([^"]+)",version="[^"]*"\} (\S+)$')


def counters(metrics_url: str) -> dict[tuple[str, str], float]:
    """(metric, model) -> value, straight from tritonserver's /metrics."""
    with urllib.request.urlopen(f"http://{metrics_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = {}
    for line in text.splitlines():
        if match := _SAMPLE.match(line):
            found[(match[1], match[2])] = float(match[3])
    return found


@dataclass
class Prometheus:
    url: str

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def value(self, promql: str) -> float:
        (sample,) = self.query(promql)
        return float(sample["value"][1])

    def rules(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/api/v1/rules", timeout=10) as response:
            groups = json.load(response)["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]


@pytest.fixture(scope="module")
def prometheus(
    deployed: Deployed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    binary = require("prometheus")
    tmp = tmp_path_factory.mktemp("prometheus")
    rules = tmp / "rules.yaml"
    rules.write_text(
        yaml.safe_dump({"groups": deployed.rendered.one("PrometheusRule")["spec"]["groups"]})
    )
    target = {"namespace": NAMESPACE, "service": FULLNAME, "pod": POD}  # as a ServiceMonitor labels
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {
                "job_name": FULLNAME,
                "static_configs": [{"targets": [deployed.server.metrics_url], "labels": target}],
            }
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    address = f"127.0.0.1:{free_port()}"
    log = tmp / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(binary),
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address={address}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Prometheus(f"http://{address}")
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            with contextlib.suppress(OSError, AssertionError, ValueError, IndexError):
                if server.query("up")[0]["value"][1] == "1":
                    break
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
        process.kill()


@dataclass(frozen=True)
class Load:
    requests: float  # the ensemble's successful requests during the load
    queue_us: float  # the queue time of every model during the load
    by_model: dict[str, float]  # requests per model


@pytest.fixture(scope="module")
def load(deployed: Deployed, prometheus: Prometheus) -> Load:
    """REQUESTS client requests from 6 threads (so that they queue), between two scrapes."""
    time.sleep(2.5)  # two scrapes of the counters before the load
    before = counters(deployed.server.metrics_url)
    body = json.dumps(
        {
            "inputs": [
                {
                    "name": "TEXT",
                    "shape": [1, 1],
                    "datatype": "BYTES",
                    "data": ["a queued text " * 4],
                }
            ]
        }
    ).encode()
    url = f"http://{deployed.server.url}/v2/models/{NAME}/infer"

    def infer(_: int) -> None:
        request = urllib.request.Request(url, data=body, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(infer, range(REQUESTS)))
    after = counters(deployed.server.metrics_url)
    time.sleep(2.5)  # two scrapes after it

    def delta(metric: str, model: str) -> float:
        return after[(metric, model)] - before.get((metric, model), 0.0)

    models = {model for _, model in after}
    return Load(
        requests=delta("nv_inference_request_success", NAME),
        queue_us=sum(delta("nv_inference_queue_duration_us", m) for m in models),
        by_model={m: delta("nv_inference_request_success", m) for m in models},
    )


def test_every_model_counts_each_client_request(load: Load) -> None:
    """Why summing the requests of every model is wrong: the ensemble, the tokenizer and the
    model each count the same client request (measured, not assumed)."""
    assert load.by_model == {
        NAME: REQUESTS,
        f"{NAME}_tokenizer": REQUESTS,
        f"{NAME}_onnx": REQUESTS,
    }
    assert load.queue_us > 0


def adapter_query() -> str:
    adapter = yaml.safe_load((CHART / "examples" / "prometheus-adapter-values.yaml").read_text())
    (rule,) = adapter["rules"]["custom"]
    # What prometheus-adapter substitutes for the HPA's per-pod query in this namespace.
    matchers = f'namespace="{NAMESPACE}",pod=~"{POD}"'
    return (
        str(rule["metricsQuery"])
        .replace("<<.GroupBy>>", "namespace,pod")
        .replace("<<.LabelMatchers>>", matchers)
    )


def test_adapter_rule_counts_each_client_request_once(prometheus: Prometheus, load: Load) -> None:
    """The adapter's quotient equals the queue time per client request from the raw counters;
    the old rule (every model's requests in the denominator) gave about a third of it. Both
    rates come from the same scrapes, so their extrapolation cancels; 15 % leaves room for a
    series whose window starts at zero."""
    expected = load.queue_us / load.requests
    measured = prometheus.value(adapter_query())
    assert measured == pytest.approx(expected, rel=0.15)
    old = (
        f'sum(rate(nv_inference_queue_duration_us{{pod="{POD}"}}[1m]))'
        f' / sum(rate(nv_inference_request_success{{pod="{POD}"}}[1m]))'
    )
    assert prometheus.value(old) == pytest.approx(expected / 3, rel=0.15)


def test_recording_rule_and_queue_alert(prometheus: Prometheus, load: Load) -> None:
    """The PrometheusRule, as rendered for this release, evaluated by Prometheus itself: the
    recording rule equals the adapter's quotient, and the queue-time alert fires (the session's
    release sets queueTimeSloMs to 0.001 and `for` to 0s)."""
    expected = load.queue_us / load.requests
    deadline = time.monotonic() + 10
    while not prometheus.query("tritonkit:queue_time_per_request_us"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    recorded = prometheus.query("tritonkit:queue_time_per_request_us")
    assert [sample["metric"] for sample in recorded] == [
        {"__name__": "tritonkit:queue_time_per_request_us", "namespace": NAMESPACE, "pod": POD}
    ]
    assert float(recorded[0]["value"][1]) == pytest.approx(expected, rel=0.15)
    rules = {rule["name"]: rule for rule in prometheus.rules()}
    assert {name: rule["health"] for name, rule in rules.items()} == dict.fromkeys(rules, "ok")
    assert rules["TritonkitQueueTimeHigh"]["state"] == "firing"
    assert rules["TritonkitErrorRate"]["state"] == "inactive"  # no failed requests


def test_dashboard_queries_return_data(
    prometheus: Prometheus, load: Load, deployed: Deployed
) -> None:
    (text,) = deployed.rendered.named("ConfigMap", "-dashboard")["data"].values()
    board = json.loads(text)
    empty = []
    for panel in board["panels"]:
        for target in panel["targets"]:
            result = prometheus.query(target["expr"].replace("$__rate_interval", "1m"))
            if not result and not panel["title"].startswith("GPU"):
                empty.append(panel["title"])
    assert empty == []  # every CPU-side panel shows the load; GPU panels need a GPU
