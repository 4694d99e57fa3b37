"""SLO expressions, verdicts, the `loadtest:` spec section and the JUnit report."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from tritonkit.cli import main
from tritonkit.errors import LoadtestInputError, SpecError
from tritonkit.loadtest.config import LoadtestConfig, LoadtestResult, config_from_spec
from tritonkit.loadtest.reports import write_junit
from tritonkit.spec import LoadtestSpec, build_section
from tritonkit.spec.durations import parse_duration
from tritonkit.spec.slo import Slo, SloVerdict, evaluate_slos, merge_slos, parse_slo

EXPECTED = "expected NAME=NUMBER with NAME one of p50_ms, p95_ms, p99_ms, error_rate, min_rps"


@dataclass(frozen=True)
class Figures:
    p50_ms: float | None = 10.0
    p95_ms: float | None = 73.2
    p99_ms: float | None = 120.0
    error_rate: float | None = 0.0
    rps: float = 180.5


@pytest.mark.parametrize(
    ("text", "slo"),
    [
        ("p95_ms=50", Slo("p95_ms", 50.0)),
        (" p99_ms = 120.5 ", Slo("p99_ms", 120.5)),
        ("error_rate=0", Slo("error_rate", 0.0)),
        ("min_rps=2e2", Slo("min_rps", 200.0)),
    ],
)
def test_parse_slo(text: str, slo: Slo) -> None:
    assert parse_slo(text) == slo


@pytest.mark.parametrize("text", ["p95_ms=fast", "p90_ms=50", "p95_ms", "p95_ms=nan", "=5", ""])
def test_parse_slo_rejects_bad_expressions(text: str) -> None:
    with pytest.raises(LoadtestInputError) as info:
        parse_slo(text)
    assert str(info.value) == f"--slo {text}: {EXPECTED}"
    assert info.value.exit_code == 2


def test_parse_slo_rejects_impossible_limits() -> None:
    with pytest.raises(LoadtestInputError, match=r"^--slo p95_ms=-1: p95_ms must not be negative"):
        parse_slo("p95_ms=-1")
    with pytest.raises(LoadtestInputError, match="error_rate is a fraction of requests"):
        parse_slo("error_rate=5")


def test_verdicts_and_messages() -> None:
    slos = [parse_slo(s) for s in ("p95_ms=50", "p50_ms=10", "error_rate=0", "min_rps=200")]
    verdicts = evaluate_slos(Figures(), slos)
    assert [v.passed for v in verdicts] == [False, True, True, False]
    assert [v.message for v in verdicts] == [
        "p95_ms = 73.2 > 50",
        "p50_ms = 10 <= 10",
        "error_rate = 0 <= 0",
        "min_rps = 180.5 < 200",
    ]
    assert evaluate_slos(Figures(rps=200.0), [Slo("min_rps", 200.0)])[0].passed


def test_unmeasurable_latency_misses() -> None:
    (verdict,) = evaluate_slos(Figures(p95_ms=None), [Slo("p95_ms", 1e9)])
    assert not verdict.passed
    assert verdict.message == "p95_ms: no successful request to measure (limit 1e+09)"
    (verdict,) = evaluate_slos(Figures(error_rate=None), [Slo("error_rate", 1.0)])
    assert not verdict.passed


def test_merge_slos_flags_replace_the_spec() -> None:
    spec = (Slo("p95_ms", 50.0), Slo("error_rate", 0.0))
    merged = merge_slos(spec, [Slo("p95_ms", 80.0), Slo("p50_ms", 20.0)])
    assert merged == (Slo("p50_ms", 20.0), Slo("p95_ms", 80.0), Slo("error_rate", 0.0))
    with pytest.raises(LoadtestInputError, match="--slo p95_ms is given twice"):
        merge_slos((), [Slo("p95_ms", 1.0), Slo("p95_ms", 2.0)])


@pytest.mark.parametrize(
    ("text", "seconds"), [("20s", 20), ("90", 90), ("1m30s", 90), ("1h", 3600)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["fast", "0s", "", "1d"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(SpecError, match=f"^--duration {text}: expected a duration"):
        parse_duration(text)


def test_loadtest_spec_section(tmp_path: Path) -> None:
    spec = tmp_path / "tritonkit.yaml"
    spec.write_text(
        "model: ./minilm-model\n"
        "name: embed\n"
        "loadtest:\n"
        "  url: 10.0.0.5:8000\n"
        "  protocol: grpc\n"
        "  texts: corpus.txt\n"
        "  duration: 1m\n"
        "  slo:\n"
        "    p95_ms: 50\n"
        "    error_rate: 0\n"
    )
    loaded = build_section(LoadtestSpec, "loadtest", spec, {"users": 8, "url": None})
    config = config_from_spec(loaded, (parse_slo("p95_ms=80"),))
    assert (config.url, config.name, config.protocol, config.users) == (
        "10.0.0.5:8000",
        "embed",
        "grpc",
        8,
    )
    assert config.texts_file == tmp_path / "corpus.txt"
    assert config.model_dir == tmp_path / "minilm-model"
    assert config.duration_s == 60
    assert config.slos == (Slo("p95_ms", 80.0), Slo("error_rate", 0.0))
    assert config.resolved_grpc_url == "10.0.0.5:8001"
    assert config.resolved_metrics_url == "10.0.0.5:8002"


def test_loadtest_spec_reports_every_problem(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "loadtest:\n  users: 0\n  duration: soon\n  slo:\n    p90_ms: 5\n    error_rate: 2\n"
    )
    with pytest.raises(SpecError) as info:
        build_section(LoadtestSpec, "loadtest", spec)
    assert str(info.value).splitlines() == [
        f"{spec}: loadtest.users: Input should be greater than or equal to 1",
        f"{spec}: loadtest.duration: expected a duration of at least 1s, such as 20s, 90, 2m "
        "or 1m30s",
        f"{spec}: loadtest.slo.error_rate: Input should be less than or equal to 1",
        f"{spec}: loadtest.slo.p90_ms: unknown key: remove it or check its spelling",
    ]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--slo", "p95_ms=fast"], f"Error: --slo p95_ms=fast: {EXPECTED}"),
        (["--slo", "error_rate=1.5"], "Error: --slo error_rate=1.5: error_rate is a fraction "
         "of requests: give a number from 0 to 1"),
        (["--users", "0"], "Error: --users: Input should be greater than or equal to 1"),
        (["--duration", "soon"], "Error: --duration: expected a duration of at least 1s, such "
         "as 20s, 90, 2m or 1m30s"),
        (["--shape", "rate"], "Error: --shape rate needs --rate: the requests per second to send"),
    ],
)  # fmt: skip
def test_cli_bad_input_exits_2_before_any_request(args: list[str], line: str) -> None:
    result = CliRunner().invoke(main, ["loadtest", "--url", "127.0.0.1:1", *args])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [line]


def _result(tmp_path: Path, verdicts: tuple[SloVerdict, ...], complete: bool) -> LoadtestResult:
    config = LoadtestConfig(url="127.0.0.1:8000", name="minilm", output=tmp_path)
    return LoadtestResult(
        config=config, duration_s=10.0, requests=100, failures=0, error_rate=0.0, rps=10.0,
        texts_per_s=10.0, p50_ms=5.0, p95_ms=73.2, p99_ms=90.0, mean_ms=6.0, max_ms=99.0,
        client_cpu_share=0.2, checked=0, wrong=0, wrong_examples=(), breakdown=(),
        breakdown_source="unavailable", complete=complete, warnings=("Locust crashed",),
        verdicts=verdicts,
    )  # fmt: skip


def test_junit_has_one_testcase_per_slo(tmp_path: Path) -> None:
    verdicts = tuple(evaluate_slos(Figures(), [Slo("p95_ms", 50.0), Slo("p50_ms", 20.0)]))
    path = write_junit(_result(tmp_path, verdicts, complete=True), tmp_path / "junit.xml")
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "0")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert list(cases) == ["load test completed", "p95_ms=50", "p50_ms=20"]
    failure = cases["p95_ms=50"].find("failure")
    assert failure is not None and failure.get("message") == "SLO missed: p95_ms = 73.2 > 50"
    assert cases["p50_ms=20"].find("failure") is None

    path = write_junit(_result(tmp_path, (), complete=False), tmp_path / "junit.xml")
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None and suite.get("errors") == "1"
