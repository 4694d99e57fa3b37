"""The models of a repository as the server loads them: parsed configs, in dependency order."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from tritonkit.errors import ConfigError


def read_repository(repo: Path) -> dict[str, model_config_pb2.ModelConfig]:
    """Every model folder's parsed config.pbtxt, by folder name."""
    configs: dict[str, model_config_pb2.ModelConfig] = {}
    for path in sorted(repo.glob("*/config.pbtxt")):
        config = model_config_pb2.ModelConfig()
        try:
            text_format.Parse(path.read_text(), config)
        except text_format.ParseError as e:
            raise ConfigError(f"{path}: {e}: fix the config") from e
        configs[path.parent.name] = config
    return configs


def load_waves(configs: dict[str, model_config_pb2.ModelConfig]) -> list[list[str]]:
    """Groups of models to load in turn: plain models, then ensembles after their steps."""
    done = {name for name, config in configs.items() if config.platform != "ensemble"}
    waves = [sorted(done)] if done else []
    pending = {
        name: {step.model_name for step in config.ensemble_scheduling.step} & set(configs)
        for name, config in configs.items()
        if name not in done
    }
    while pending:
        wave = sorted(name for name, needs in pending.items() if needs <= done)
        if not wave:
            raise ConfigError(
                f"ensembles {', '.join(sorted(pending))} use each other in a cycle: "
                "fix their ensemble_scheduling steps"
            )
        waves.append(wave)
        done.update(wave)
        for name in wave:
            del pending[name]
    return waves


def entry_points(configs: dict[str, model_config_pb2.ModelConfig]) -> list[str]:
    """The models clients call: every model no ensemble uses as a step (a request to an
    ensemble runs its steps too)."""
    used = {
        step.model_name for config in configs.values() for step in config.ensemble_scheduling.step
    }
    return sorted(name for name in configs if name not in used)


CANARY_TEXT = "tritonkit canary"


def canary_request(config: model_config_pb2.ModelConfig) -> dict[str, Any]:
    """The smallest valid inference request for `config` (KServe v2 JSON): one row, every
    variable dimension 1, strings a short text, numbers zeros."""
    inputs = []
    for tensor in config.input:
        dims = [1 if d < 0 else int(d) for d in tensor.dims]
        shape = [1, *dims] if config.max_batch_size > 0 else dims
        count = math.prod(shape)
        dtype = model_config_pb2.DataType.Name(tensor.data_type).removeprefix("TYPE_")
        if dtype == "STRING":
            inputs.append({"name": tensor.name, "shape": shape, "datatype": "BYTES",
                           "data": [CANARY_TEXT] * count})  # fmt: skip
        else:
            zero: object = False if dtype == "BOOL" else 0
            inputs.append({"name": tensor.name, "shape": shape, "datatype": dtype,
                           "data": [zero] * count})  # fmt: skip
    return {"inputs": inputs}


def model_of_instance(instance: str, names: Iterable[str]) -> str | None:
    """The model an instance name (`<model>_<group>_<index>`, as Triton names unnamed groups'
    instances and their Python stubs) belongs to."""
    found = [n for n in names if re.fullmatch(rf"{re.escape(n)}_\d+_\d+", instance)]
    return max(found, key=len) if found else None
