"""The models of a repository as the server loads them: parsed configs, in dependency order."""

from __future__ import annotations

from pathlib import Path

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
