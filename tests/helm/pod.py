"""Run a rendered container here as its pod would run it.

`Pod` maps the pod's paths (volume mounts, files the image provides) to local folders and
rewrites a rendered string with them. `Pod.argv` also expands `$(VAR)` references from the
container's environment as the kubelet does
(https://kubernetes.io/docs/tasks/inject-data-application/define-command-argument-container/).
`sandbox` wraps a command in bubblewrap the way the pod confines it: the root filesystem read-only,
a fresh /tmp, a memory-backed /dev/shm, only the container's own writable mounts bound
read-write, as uid/gid 1000 (the chart's runAsUser/runAsGroup) in a new user and PID namespace.
"""

from __future__ import annotations

import base64
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helm.chart import Rendered
from tests.helm.system_tools import require

VENV_BIN = Path(sys.executable).parent  # `tritonkit` lives here, as on the image's PATH
# What the image provides here: the virtual environment and the source tree it installs in
# editable mode. Bound again over the sandbox's fresh /tmp, which hides them when the checkout
# lies under /tmp (a CI clone can).
IMAGE_ROOTS = tuple(dict.fromkeys([sys.prefix, str(Path(__file__).resolve().parents[2])]))
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def secrets_of(rendered: Rendered) -> dict[tuple[str, str], str]:
    """(secret name, key) -> decoded value, for the Secrets the chart renders."""
    return {
        (doc["metadata"]["name"], key): base64.b64decode(value).decode()
        for doc in rendered.all("Secret")
        for key, value in doc.get("data", {}).items()
    }


@dataclass
class Pod:
    """Pod paths mapped to local folders; `local()` rewrites a rendered string."""

    paths: dict[str, str]
    secrets: dict[tuple[str, str], str] = field(default_factory=dict)
    executables: dict[str, str] = field(default_factory=dict)

    def local(self, text: str) -> str:
        """One pass, longest pod path first; only whole path components match."""
        keys = "|".join(re.escape(key) for key in sorted(self.paths, key=len, reverse=True))
        pattern = rf"(?<![\w/.-])({keys})(?![\w.-])"
        return re.sub(pattern, lambda match: self.paths[match.group(1)], text)

    def container_env(self, container: Mapping[str, Any]) -> dict[str, str]:
        """The container's own env (values and secretKeyRefs), pod paths made local."""
        env = {}
        for entry in container.get("env", []):
            if "value" in entry:
                env[entry["name"]] = self.local(str(entry["value"]))
            else:
                ref = entry["valueFrom"]["secretKeyRef"]
                env[entry["name"]] = self.secrets[(ref["name"], ref["key"])]
        return env

    def env(self, container: Mapping[str, Any]) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', os.defpath)}"
        env.update(self.container_env(container))
        return env

    def argv(self, container: Mapping[str, Any]) -> list[str]:
        """command + args, $(VAR) expanded from the container's env, pod paths made local."""
        own = self.container_env(container)

        def expand(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name = match.group(1)
            return own.get(name, match.group(0))  # undefined references stay as written

        raw = [*container.get("command", []), *container.get("args", [])]
        argv = [self.local(_REFERENCE.sub(expand, arg)) for arg in raw]
        return [self.executables.get(argv[0], argv[0]), *argv[1:]]

    def mounts(self, container: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """Local folders of the container's volume mounts: (writable, read-only)."""
        writable: list[str] = []
        readonly: list[str] = []
        for mount in container.get("volumeMounts", []):
            if mount["mountPath"] == "/dev/shm":
                continue  # a fresh tmpfs in the sandbox, as the memory-backed emptyDir
            local = self.paths[mount["mountPath"]]
            (readonly if mount.get("readOnly") else writable).append(local)
        return writable, readonly


def sandbox(
    argv: list[str], writable: list[str], readonly: list[str], uid: int = 1000, gid: int = 1000
) -> list[str]:
    """`argv` under bubblewrap: read-only root, fresh /tmp and /dev/shm, these mounts only."""
    bwrap = require("bwrap")
    binds = [arg for path in (*IMAGE_ROOTS, *readonly) for arg in ("--ro-bind", path, path)]
    binds += [arg for path in writable for arg in ("--bind", path, path)]
    return [
        str(bwrap),
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",
        "--tmpfs", "/dev/shm",
        *binds,
        "--unshare-user", "--uid", str(uid), "--gid", str(gid),
        "--unshare-pid",
        "--die-with-parent",
        "--",
        *argv,
    ]  # fmt: skip
