"""The one writer of repositories: render every config of a plan, copy or write every file it
lists into a staging folder beside the output, validate the result, then move it into place.

Nothing is half-written: on any failure the staging folder is removed and an existing output
is untouched. `--force` replaces only a folder tritonkit wrote (it holds tritonkit.json), and
never a folder that is, contains or lies inside a protected folder (the source model).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from tritonkit.errors import RepositoryError, TritonkitError, cannot_write, disk_full
from tritonkit.repository.contract import RECORD_FILE
from tritonkit.repository.pbtxt import ModelPlan, render_config
from tritonkit.repository.plan import RepositoryPlan
from tritonkit.repository.validate import validate_repository
from tritonkit.util.processes import pid_alive

# The project's committed model_repository/ holds only this .gitignore (it keeps the folder in
# git and everything generated there out of it). It is carried over into what is written there,
# so a demo leaves the checkout clean.
PLACEHOLDER = ".gitignore"
PLACEHOLDER_MARK = "# model_repository/:"
_STAGING = re.compile(r"\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)-\w+")


def render_plan(plan: RepositoryPlan) -> dict[str, str]:
    """Every config.pbtxt, rendered and parsed; keyed by relative path."""
    rendered = {f"{m.name}/config.pbtxt": render_config(m) for m in plan.models}
    rendered[f"{plan.ensemble.name}/config.pbtxt"] = render_config(plan.ensemble)
    return rendered


def _placeholder_file(output: Path) -> Path | None:
    path = output / PLACEHOLDER
    if not path.is_file() or path.is_symlink():
        return None
    with path.open(encoding="utf-8", errors="replace") as f:
        return path if f.read(len(PLACEHOLDER_MARK)) == PLACEHOLDER_MARK else None


def is_placeholder(output: Path) -> bool:
    """`output` is the project's committed model_repository/ with nothing generated in it yet;
    generating into it loses nothing, so it needs no --force."""
    if not output.is_dir():
        return False
    return [p.name for p in output.iterdir()] == [PLACEHOLDER] and bool(_placeholder_file(output))


def _overlaps(output: Path, protected: Path) -> bool:
    return output == protected or protected in output.parents or output in protected.parents


def check_parents(output: Path) -> None:
    """`output` must not lie under a file (mkdir would fail late, after the export)."""
    for parent in output.absolute().parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise RepositoryError(
                    f"{output}: lies under {parent}, which is a file, not a folder: "
                    "choose another -o"
                )
            return


def check_output(output: Path, force: bool, protected: Sequence[Path] = ()) -> None:
    """Refuse early, before any work, to write where data would be lost."""
    check_parents(output)
    resolved = output.resolve()
    for folder in protected:
        if _overlaps(resolved, folder.resolve()):
            raise RepositoryError(
                f"{output}: is, contains or lies inside the model folder {folder}: "
                "choose another -o"
            )
    if output.exists() and not output.is_dir():
        raise RepositoryError(f"{output}: exists and is not a folder: choose another -o")
    if not output.exists() or is_placeholder(output):
        return
    if not force:
        raise RepositoryError(
            f"{output}: output already exists: pass --force to replace it or choose another -o"
        )
    if not (output / RECORD_FILE).is_file():
        raise RepositoryError(
            f"{output}: --force replaces only a repository tritonkit wrote (it holds "
            f"{RECORD_FILE}); this folder does not: choose another -o or remove it yourself"
        )
    if os.path.ismount(resolved):
        raise RepositoryError(
            f"{output}: is a mount point, which cannot be replaced by a rename: write to a "
            f"folder inside it (e.g. -o {output / 'repository'})"
        )


def sweep_stale(output: Path) -> None:
    """Remove staging folders beside `output` left by tritonkit runs that were killed."""
    parent = output.parent
    if not parent.is_dir():
        return
    for entry in parent.iterdir():
        found = _STAGING.fullmatch(entry.name)
        if found and found["name"] == output.name and not pid_alive(int(found["pid"])):
            shutil.rmtree(entry, ignore_errors=True)


@contextlib.contextmanager
def staging_dir(output: Path) -> Iterator[Path]:
    """A temporary folder beside `output` (same filesystem, so the final move is a rename),
    with the permissions of a normal folder (the umask's, not mkdtemp's 0700). A full disk while
    the work runs is reported for `output`, not for the staging file that hit it."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(output)
        tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-{os.getpid()}-", dir=output.parent))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)
    except OSError as e:
        raise RepositoryError(cannot_write(output.parent, e)) from None
    try:
        yield tmp
    except (OSError, TritonkitError) as e:
        full = disk_full(e)
        if full is not None:
            raise RepositoryError(cannot_write(output, full)) from e
        if isinstance(e, OSError):  # not ours to explain further; one line, not a traceback
            raise RepositoryError(f"{e.filename or output}: {e.strerror or e}") from e
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_files(root: Path, plan: RepositoryPlan) -> None:
    """Render the configs and write every file the plan lists under `root`."""
    try:
        for rel, text in render_plan(plan).items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        for entry in plan.files:
            target = root / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            if entry.source is not None:
                shutil.copyfile(entry.source, target)
            else:
                target.write_text(entry.content or "", encoding="utf-8")
    except OSError as e:
        raise RepositoryError(cannot_write(e.filename or root, e)) from e


def commit(staged: Path, output: Path, force: bool, protected: Sequence[Path] = ()) -> None:
    """Move a validated staging folder into place; the old output is removed only after."""
    check_output(output, force, protected)
    keep = _placeholder_file(output) if output.is_dir() else None
    if keep is not None:
        try:
            shutil.copyfile(keep, staged / PLACEHOLDER)
        except OSError as e:
            raise RepositoryError(cannot_write(staged / PLACEHOLDER, e)) from None
    old: Path | None = None
    if output.exists():
        old = output.parent / f".{output.name}.old-{os.getpid()}-x"
        output.rename(old)
    try:
        staged.rename(output)
    except OSError as e:
        if old is not None:
            old.rename(output)
        raise RepositoryError(
            f"{output}: cannot move the repository into place ({e.strerror})"
        ) from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_repository(
    plan: RepositoryPlan,
    output: Path,
    *,
    force: bool,
    protected: Sequence[Path] = (),
    before: Callable[[Path], None] | None = None,
) -> None:
    """Render, write, validate and move the plan into `output` (see the module docstring);
    `before` runs on the staged folder first (the TensorRT plan is built there)."""
    check_output(output, force, protected)
    with staging_dir(output) as staged:
        write_files(staged, plan)
        if before is not None:
            before(staged)
        problems = validate_repository(staged)
        if problems:
            raise RepositoryError("generated repository failed validation:\n" + "\n".join(problems))
        commit(staged, output, force, protected)


def write_model_config(model_dir: Path, model: ModelPlan) -> Path:
    """Render one model's config.pbtxt into an existing model folder, atomically (for
    `build-plan`, which adds a model to a repository)."""
    target = model_dir / "config.pbtxt"
    partial = model_dir / f".config.pbtxt.{os.getpid()}"
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
        partial.write_text(render_config(model), encoding="utf-8")
        partial.replace(target)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise RepositoryError(f"{target}: cannot write ({e.strerror})") from None
    return target
