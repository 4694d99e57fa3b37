"""The helm binary: installed by `make helm-tools`; tests skip only when it cannot be obtained."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helm import install_helm
from tests.helm.deployment import Deployed, deploy
from tritonkit.server.install import ServerInstall, find_server


@pytest.fixture(scope="session")
def helm() -> Path:
    try:
        return install_helm.install()
    except (install_helm.HelmInstallError, OSError) as e:
        pytest.skip(f"no helm binary: {e} (make helm-tools installs it into .cache/bin/helm)")


@pytest.fixture(scope="session")
def install() -> ServerInstall:
    return find_server(log=lambda line: print(f"[tritonkit] {line}"))


# The release the served tests share: the chart's PrometheusRule and dashboard on, so that
# test_chart_prometheus.py evaluates exactly what this release renders.
OBSERVED = {
    "prometheusRule": {"enabled": True, "queueTimeSloMs": 0.001, "for": "0s"},
    "grafanaDashboard": {"enabled": True},
}


@pytest.fixture(scope="session")
def deployed(
    helm: Path,
    install: ServerInstall,
    tiny_model_dirs: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployed]:
    model = tiny_model_dirs["text-classification"]
    with deploy(helm, install, model, tmp_path_factory.mktemp("chart_pod"), OBSERVED) as release:
        yield release
