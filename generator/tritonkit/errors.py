"""One root error type; each message is one user-facing line naming the file, field and fix."""

from __future__ import annotations

import errno

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def cannot_write(path: object, error: OSError, fix: str = "choose another -o") -> str:
    """One line for a failed write under `path`: a full disk says so (and is nobody's input
    mistake); anything else names the system's reason."""
    if error.errno in _DISK_FULL:
        return f"{path}: no space left on the device: free space or {fix}"
    return f"{path}: cannot write here ({error.strerror or error}): {fix}"


def disk_full(error: BaseException) -> OSError | None:
    """The OSError behind `error` (itself or its cause) when it is a full disk or quota."""
    cause = error if isinstance(error, OSError) else error.__cause__
    return cause if isinstance(cause, OSError) and cause.errno in _DISK_FULL else None


class TritonkitError(Exception):
    """Root of every error tritonkit reports to a user (the CLI prints it as one line, exit 1)."""

    exit_code = 1


class SpecError(TritonkitError):
    """The deployment spec (YAML file or flags) is invalid; the message holds every problem."""

    exit_code = 2


class ModelSourceError(TritonkitError):
    """The Hugging Face model folder is missing, incomplete or unsupported."""


class ExportError(TritonkitError):
    """ONNX export failed or produced an invalid graph."""


class ParityError(ExportError):
    """ONNX Runtime outputs differ from PyTorch by more than the tolerance."""

    def __init__(self, message: str, max_diff: float, atol: float) -> None:
        super().__init__(message)
        self.max_diff = max_diff
        self.atol = atol


class ConfigError(TritonkitError):
    """A rendered config.pbtxt does not parse against Triton's ModelConfig protobuf."""


class RepositoryError(TritonkitError):
    """A model repository is invalid, or the output folder cannot be written safely."""


class ServerError(TritonkitError):
    """The local tritonserver could not be installed, started or reached."""


class CheckError(TritonkitError):
    """A correctness check could not run (not: a text failed its tolerance)."""


class LoadtestInputError(TritonkitError):
    """A load test cannot start: unreachable server, unknown model, no texts, a bad SLO."""

    exit_code = 2


class LoadtestError(TritonkitError):
    """A load test ran but missed an SLO, or Locust did not finish (its reports are written)."""


class TensorRTUnavailableError(TritonkitError):
    """Neither the TensorRT Python API nor trtexec exists here: plans are built on a GPU node."""


class PlanBuildError(TritonkitError):
    """A TensorRT plan could not be built: bad options, a model TensorRT refuses, a failed build."""


class OptimizeError(TritonkitError):
    """An optimization variant could not be built or measured: bad options, a calibration or
    evaluation file that cannot be used, or a graph the optimizer cannot handle."""


class AccuracyGateError(OptimizeError):
    """The variant asked for (or every candidate) lost more accuracy than the gate allows."""
