"""The one reader of text files: corpora, calibration and evaluation sets, check texts.

`.txt`: one text per line (blank lines skipped). `.jsonl`: objects with a string "text" and
an optional "label". `.csv`: a header with a "text" column and an optional "label" column.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tritonkit.errors import TritonkitError

Row = tuple[str, str | None]


class TextFileError(TritonkitError):
    """A text file that cannot be used; the message names the file (and line) and the fix."""


def read_rows(path: Path) -> list[Row]:
    """(text, label or None) rows of a .txt, .jsonl or .csv file; at least one."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TextFileError(f"{path}: file not found: check the path") from None
    except IsADirectoryError:
        raise TextFileError(f"{path}: is a folder: pass a text file") from None
    except UnicodeDecodeError:
        raise TextFileError(f"{path}: not UTF-8 text: save it as UTF-8") from None
    except OSError as e:
        raise TextFileError(f"{path}: cannot be read ({e.strerror}): fix its permissions") from None
    if path.suffix == ".jsonl":
        rows = _jsonl_rows(path, raw)
    elif path.suffix == ".csv":
        rows = _csv_rows(path, raw)
    else:
        rows = [(line, None) for line in raw.splitlines() if line.strip()]
    if not rows:
        raise TextFileError(f"{path}: no texts in the file: add one text per line")
    return rows


def read_texts(path: Path) -> list[str]:
    """The texts of a file (labels ignored)."""
    return [text for text, _ in read_rows(path)]


def _jsonl_rows(path: Path, raw: str) -> list[Row]:
    rows: list[Row] = []
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            raise TextFileError(f"{path}:{number}: not valid JSON: fix the line") from None
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise TextFileError(f"{path}:{number}: expected an object with a string 'text'")
        label = item.get("label")
        rows.append((item["text"], None if label is None else str(label)))
    return rows


def _csv_rows(path: Path, raw: str) -> list[Row]:
    reader = csv.DictReader(raw.splitlines())
    if reader.fieldnames is None or "text" not in reader.fieldnames:
        raise TextFileError(f"{path}: the CSV header has no 'text' column: add 'text[,label]'")
    has_label = "label" in reader.fieldnames
    return [
        (row["text"] or "", row["label"] if has_label else None)
        for row in reader
        if (row["text"] or "").strip()
    ]
