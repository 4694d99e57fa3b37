"""The task registry: every task tritonkit supports, by name.

Everything task-specific is a method or attribute of the task's record (see `base.Task`);
code elsewhere asks the registry, never compares task names.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

from tritonkit.errors import TritonkitError
from tritonkit.tasks.base import (
    PRECISION_TOLERANCES,
    Comparison,
    GateFigure,
    Output,
    Precision,
    Task,
    Tolerance,
)
from tritonkit.tasks.classification import TextClassification
from tritonkit.tasks.embeddings import FeatureExtraction
from tritonkit.tasks.tokens import TokenClassification

TaskName = Literal["text-classification", "feature-extraction", "token-classification"]
TASKS: tuple[str, ...] = get_args(TaskName)
DEFAULT_TASK: TaskName = "feature-extraction"
REGISTRY: dict[str, Task] = {
    task.name: task for task in (TextClassification(), FeatureExtraction(), TokenClassification())
}


def get_task(name: str) -> Task:
    """The task record; a TritonkitError naming the choices for an unknown name."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise TritonkitError(
            f"task '{name}': not supported: use one of {', '.join(TASKS)}"
        ) from None


def task_for_outputs(outputs: Iterable[str]) -> Task | None:
    """The task whose served outputs (upper-case) include all of `outputs`' task outputs."""
    names = set(outputs)
    for task in REGISTRY.values():
        if {task.served_name(o) for o in task.output_names} <= names:
            return task
    return None


__all__ = [
    "DEFAULT_TASK",
    "PRECISION_TOLERANCES",
    "REGISTRY",
    "TASKS",
    "Comparison",
    "GateFigure",
    "Output",
    "Precision",
    "Task",
    "TaskName",
    "Tolerance",
    "get_task",
    "task_for_outputs",
]
