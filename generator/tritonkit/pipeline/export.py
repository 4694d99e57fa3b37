"""`tritonkit export`: one model folder to one checked ONNX graph in an output folder."""

from __future__ import annotations

from pathlib import Path

from tritonkit.errors import RepositoryError, TritonkitError, cannot_write, disk_full
from tritonkit.model.export import ExportResult, export_model
from tritonkit.repository.writer import check_parents


def export_to(
    model_dir: Path, task: str, output: Path, *, opset: int | None = None, atol: float = 1e-4
) -> ExportResult:
    """Export into `output`, which must be empty or new; a failed export leaves no folder
    that was not there before."""
    check_parents(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise RepositoryError(f"{output}: output folder is not empty: choose another -o")
    created = not output.exists()
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RepositoryError(cannot_write(output, e)) from None
    try:
        return export_model(model_dir, task, output, opset=opset, atol=atol)
    except (OSError, TritonkitError) as e:
        _remove(output, created)
        full = disk_full(e)
        if full is not None:
            raise RepositoryError(cannot_write(output, full)) from e
        if isinstance(e, OSError):
            raise RepositoryError(f"{e.filename or output}: {e.strerror or e}") from e
        raise
    except BaseException:
        _remove(output, created)
        raise


def _remove(output: Path, created: bool) -> None:
    if created:
        import shutil

        shutil.rmtree(output, ignore_errors=True)
