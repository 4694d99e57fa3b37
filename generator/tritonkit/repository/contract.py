"""The repository contract: what every tritonkit deployment looks like, read in one place.

A deployment NAME is an ensemble (TEXT in, the task's outputs upper-cased out) of two steps: a
Python-backend tokenizer (`NAME_tokenizer`, parameters typed by `TokenizerParams`) and the
model it feeds (`NAME_onnx` on ONNX Runtime, or `NAME_trt`, a TensorRT plan). `Deployment`
is that contract as one typed object. It is planned from a spec (`Deployment.planned`) or read
back from a repository folder or a running server (`from_repository`, `from_configs`), so that
check, loadtest, tune, validate and serve all read names, task and tokenizer parameters the
same way, whatever the model's backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tritonclient.grpc import model_config_pb2

from tritonkit.errors import ConfigError, RepositoryError
from tritonkit.repository.pbtxt import read_config
from tritonkit.runtime.tokenizer import ParameterError, TokenizerParams
from tritonkit.spec.names import model_name, tokenizer_model_name
from tritonkit.tasks import Task, get_task, task_for_outputs

ModelKind = Literal["onnx", "tensorrt"]
LABELS_FILE = "labels.txt"
RECORD_FILE = "tritonkit.json"
_KIND_OF_PLATFORM = {"onnxruntime_onnx": "onnx", "tensorrt_plan": "tensorrt"}
_KIND_OF_BACKEND = {"onnxruntime": "onnx", "tensorrt": "tensorrt"}

__all__ = ["Deployment", "ModelKind", "TokenizerParams", "read_configs"]


@dataclass(frozen=True)
class Deployment:
    """One deployment's names, task, model kind and tokenizer parameters."""

    name: str  # the ensemble clients call
    tokenizer_model: str
    model: str  # the composing model the tokenizer feeds
    model_kind: ModelKind
    task: Task
    tokenizer: TokenizerParams

    @classmethod
    def planned(
        cls, name: str, kind: ModelKind, task: str, tokenizer: TokenizerParams
    ) -> Deployment:
        """The deployment a spec asks for (names built by `tritonkit.spec.names`)."""
        return cls(name, tokenizer_model_name(name), model_name(name, kind), kind,
                   get_task(task), tokenizer)  # fmt: skip

    @property
    def served_outputs(self) -> tuple[str, ...]:
        """The ensemble's outputs a client asks for (the task's, upper-cased)."""
        return tuple(self.task.served_name(o) for o in self.task.output_names)

    def model_names(self) -> tuple[str, str, str]:
        """(tokenizer, model, ensemble): the load order."""
        return self.tokenizer_model, self.model, self.name

    @classmethod
    def from_configs(
        cls,
        configs: Mapping[str, model_config_pb2.ModelConfig],
        name: str | None = None,
        where: str = "repository",
    ) -> Deployment:
        """The deployment `name` (or the only ensemble) among parsed configs."""
        ensembles = sorted(n for n, c in configs.items() if c.platform == "ensemble")
        if name is None:
            if len(ensembles) != 1:
                raise RepositoryError(
                    f"{where}: {len(ensembles)} ensembles ({', '.join(ensembles) or 'none'}): "
                    "name the deployment with --name"
                )
            name = ensembles[0]
        ensemble = configs.get(name)
        if ensemble is None or ensemble.platform != "ensemble":
            raise RepositoryError(
                f"{where}: no ensemble '{name}' (ensembles: {', '.join(ensembles) or 'none'}): "
                "--name must name a deployment made by tritonkit"
            )
        steps = [s.model_name for s in ensemble.ensemble_scheduling.step]
        if len(steps) != 2 or any(s not in configs for s in steps):
            raise RepositoryError(
                f"{where}: ensemble '{name}' steps {steps} are not a tokenizer and a model in "
                "this repository: not a deployment made by tritonkit"
            )
        tokenizer_name, model = steps
        kind = _model_kind(configs[model])
        task = task_for_outputs(o.name for o in ensemble.output)
        if kind is None or task is None:
            serving = configs[model].platform or configs[model].backend
            outputs = [o.name for o in ensemble.output]
            raise RepositoryError(
                f"{where}: ensemble '{name}' ({model}: {serving}; outputs {outputs}) is not a "
                "deployment made by tritonkit"
            )
        params = {k: v.string_value for k, v in configs[tokenizer_name].parameters.items()}
        try:
            tokenizer = TokenizerParams.from_parameters(params)
        except ParameterError as e:
            raise ConfigError(f"{where}: {tokenizer_name}/config.pbtxt: {e}") from None
        return cls(name, tokenizer_name, model, kind, task, tokenizer)

    @classmethod
    def from_repository(cls, repo: Path, name: str | None = None) -> Deployment:
        return cls.from_configs(read_configs(repo), name, str(repo))

    def tokenizer_file(self, repo: Path) -> Path:
        return repo / self.tokenizer_model / "1" / "tokenizer.json"

    def labels(self, repo: Path) -> tuple[str, ...]:
        path = repo / self.name / LABELS_FILE
        if not path.is_file():
            return ()
        return tuple(path.read_text(encoding="utf-8").splitlines())


def _model_kind(config: model_config_pb2.ModelConfig) -> ModelKind | None:
    found = _KIND_OF_PLATFORM.get(config.platform) or _KIND_OF_BACKEND.get(config.backend)
    return found  # type: ignore[return-value]


def read_configs(repo: Path) -> dict[str, model_config_pb2.ModelConfig]:
    """Every model folder's parsed config.pbtxt, by folder name (hidden folders skipped)."""
    if not repo.is_dir():
        raise RepositoryError(f"{repo}: model repository folder not found")
    return {
        path.parent.name: read_config(path)
        for path in sorted(repo.glob("*/config.pbtxt"))
        if not path.parent.name.startswith(".")
    }
