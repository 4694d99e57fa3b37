"""The helm binary: installed by `make helm-tools`; tests skip only when it cannot be obtained."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helm import install_helm


@pytest.fixture(scope="session")
def helm() -> Path:
    try:
        return install_helm.install()
    except (install_helm.HelmInstallError, OSError) as e:
        pytest.skip(f"no helm binary: {e} (make helm-tools installs it into .cache/bin/helm)")
