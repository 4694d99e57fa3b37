"""The deployment spec: one YAML file whose sections are the options of every pipeline stage.

Pydantic validates it with ``extra="forbid"``; every problem is reported at once as
``file: key: message`` lines. Command-line flags are derived from the same fields
(`tritonkit.cli.options`) and override the file.
"""

from tritonkit.spec.deployment import (
    DEFAULT_TRITON_IMAGE,
    NAME_PATTERN,
    DeploymentSpec,
    valid_name,
)
from tritonkit.spec.loader import build_section, build_spec, read_spec_file, spec_to_yaml
from tritonkit.spec.sections import (
    DEPLOY_VARIANTS,
    DEVICE_VARIANTS,
    TENSORRT_INT8_VARIANT,
    TRT_VARIANTS,
    VARIANTS,
    DynamicBatchingSpec,
    ExportSpec,
    InstancesSpec,
    OptimizeSpec,
    TargetSpec,
    TensorRTSpec,
    TokenizerSpec,
    bucket_count,
)
from tritonkit.spec.serving import (
    DEFAULT_NAME,
    CheckSpec,
    KServeSpec,
    LoadtestSpec,
    ServeSpec,
    TuneSpec,
)

__all__ = [
    "DEFAULT_NAME",
    "DEFAULT_TRITON_IMAGE",
    "DEPLOY_VARIANTS",
    "DEVICE_VARIANTS",
    "NAME_PATTERN",
    "TENSORRT_INT8_VARIANT",
    "TRT_VARIANTS",
    "VARIANTS",
    "CheckSpec",
    "DeploymentSpec",
    "DynamicBatchingSpec",
    "ExportSpec",
    "InstancesSpec",
    "KServeSpec",
    "LoadtestSpec",
    "OptimizeSpec",
    "ServeSpec",
    "TargetSpec",
    "TensorRTSpec",
    "TokenizerSpec",
    "TuneSpec",
    "bucket_count",
    "build_section",
    "build_spec",
    "read_spec_file",
    "spec_to_yaml",
    "valid_name",
]
