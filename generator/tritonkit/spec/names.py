"""How a deployment names its models: the one place that builds `NAME_tokenizer`,
`NAME_onnx` and `NAME_trt` (everything else reads the names from the repository contract)."""

from __future__ import annotations

from typing import Literal

ModelKind = Literal["onnx", "tensorrt"]
_SUFFIX: dict[str, str] = {"onnx": "_onnx", "tensorrt": "_trt"}


def tokenizer_model_name(name: str) -> str:
    return f"{name}_tokenizer"


def model_name(name: str, kind: ModelKind) -> str:
    return f"{name}{_SUFFIX[kind]}"
