"""`tritonkit bench --served` as a library call: served deployments next to in-process runs of
the same model and tokenizer, on local tritonservers this call starts and stops."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tritonkit.bench.served import ServedBench, ServedConfig, run_served, served
from tritonkit.bench.served_report import write
from tritonkit.errors import RepositoryError
from tritonkit.loadtest.config import load_corpus
from tritonkit.repository.validate import validate_repository
from tritonkit.server.install import find_server
from tritonkit.util.cpu import CpuInfo, cpu_info

Progress = Callable[[str], None]


@dataclass
class ServedRun:
    bench: ServedBench
    cpu: CpuInfo
    reports: dict[str, Path]


def parse_served(value: str) -> tuple[str, Path]:
    """`LABEL=REPO` or `REPO` (labelled by its folder name)."""
    label, sep, path = value.partition("=")
    if not sep:
        return Path(value).name, Path(value)
    return label, Path(path)


def bench_served(
    repos: Sequence[tuple[str, Path]],
    output: Path,
    config: ServedConfig,
    *,
    texts_file: Path | None = None,
    tritonserver: Path | None = None,
    progress: Progress = lambda _: None,
) -> ServedRun:
    """Measure each repository's deployment served, its tokenizer alone and the in-process
    runs; write output/served.{md,json,png}. The first repository is the one under test."""
    labels = [label for label, _ in repos]
    if len(set(labels)) != len(labels):
        raise RepositoryError(f"--served labels {labels} repeat: give each LABEL=REPO its own")
    for _, repo in repos:
        problems = validate_repository(repo)
        if problems:
            raise RepositoryError(f"{repo}: invalid repository: {problems[0]}")
    items = [served(label, repo) for label, repo in repos]
    texts = load_corpus(texts_file)
    install = find_server(tritonserver, log=progress)
    bench = run_served(items, install, texts, config, progress)
    cpu = cpu_info()
    deployment = items[0].deployment
    title = f"{deployment.name} ({deployment.task.name}) served on {cpu.model}, {cpu.cores} CPUs"
    return ServedRun(bench, cpu, write(bench, cpu, output, title))
