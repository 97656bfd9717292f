"""Turning ``DATA`` (a bundled dataset name, ``ucr:NAME``, a CSV, an ``.npz`` or a text file)
into one of the data layer's records, and inferring the task from what came back."""

from __future__ import annotations

import contextlib
import csv
import itertools
from pathlib import Path
from typing import Any

from rnnkit.data import (
    Sequences,
    Series,
    Text,
    list_datasets,
    load_dataset,
    load_npz,
    read_sequences_csv,
    read_series_csv,
    read_text,
)
from rnnkit.data._io import utf8_lines
from rnnkit.data.panel import Panel, read_panel_csv
from rnnkit.data.ucr import is_ucr_path
from rnnkit.errors import DataError

from .common import UsageError
from .settings import Settings

DEFAULT_DATASET = "sunspots"  # see docs/cli.md, "The default task"
TEXT_SUFFIXES = (".txt", ".text", ".md", ".py", ".rst")
DATE_NAMES = ("date", "year", "time", "month", "day", "timestamp")  # auto --date columns


def bundled_names() -> list[str]:
    return [d.name for d in list_datasets()]


def locate(spec: str | None) -> str:
    """What a model file remembers of its data: the dataset name, or the file's full path."""
    spec = spec or DEFAULT_DATASET
    if spec.startswith("ucr:") and is_ucr_path(spec[4:]):
        return "ucr:" + str(Path(spec[4:]).resolve())
    if spec in bundled_names() or spec.startswith("ucr:"):
        return spec
    return str(Path(spec).resolve())


def load_source(spec: str | None, s: Settings
                ) -> tuple[Series | Panel | Sequences | Text, str]:
    """``(record, short name)`` for ``spec``; the name labels the run folder and plots."""
    spec = spec or DEFAULT_DATASET
    if spec in bundled_names() or spec.startswith("ucr:"):
        if s.series_id:
            raise UsageError(f"--series-id {s.series_id}: {spec} is one series; panel data "
                             "comes as a long CSV with a column naming each row's series")
        return load_dataset(spec, missing=s.missing), spec
    path = Path(spec)
    if not path.exists():
        if path.suffix or "/" in spec:
            raise DataError(f"{spec}: file not found")
        raise DataError(
            f"unknown dataset {spec!r}: not a bundled dataset "
            f"({', '.join(bundled_names())}), not ucr:NAME and not a file"
        )
    if path.is_dir():
        raise DataError(f"{spec}: expected a file, got a folder")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        seqs = load_npz(path)
        if seqs.classes is None:
            raise DataError(
                f"{path.name}: y holds floats; rnnkit train classifies .npz "
                "sequences, so store integer or string class labels in y"
            )
        return seqs, path.name
    if s.task == "charlm" or (s.task is None and suffix in TEXT_SUFFIXES):
        return Text(name=path.name, text=read_text(path)), path.name
    return _read_csv(path, s), path.name


def _read_csv(path: Path, s: Settings) -> Series | Sequences:
    header = _header(path)
    long_format = {"sequence_id", "time"} <= set(header)
    if s.task == "classify" or (s.task is None and long_format):
        return read_sequences_csv(path, label_col=s.target or "label", features=s.features)
    if not s.target:
        raise DataError(
            f"{path.name}: a time-series CSV needs --target COL, the column to "
            f"forecast; columns: {', '.join(header)}"
        )
    date = s.date or next((h for h in header if h.lower() in DATE_NAMES), None)
    targets = [t.strip() for t in s.target.split(",") if t.strip()]
    past, future = list(s.features or ()), list(s.future_features or ())
    named = [*targets, *past, *future]
    twice = sorted({c for c in named if named.count(c) > 1})
    if twice:
        raise UsageError(f"column {twice[0]!r} is named twice in --target, --features and "
                         "--future-features; each column has one role")
    extra = [*targets[1:], *past, *future]
    if s.series_id:
        return read_panel_csv(path, series_id=s.series_id, target=targets,
                              features=extra or s.features, date=date, missing=s.missing,
                              future_rows=bool(future))
    return read_series_csv(path, target=targets, features=extra or s.features, date=date,
                           missing=s.missing, future_rows=bool(future))


def _header(path: Path) -> list[str]:
    """The CSV's header line, read from the file's first lines (not the whole file)."""
    lines = utf8_lines(path)
    with contextlib.closing(lines):
        first = next(lines, None)
        if first is None:  # as read_text says it
            raise DataError(f"{path.name}: the file is empty, expected some text")
        for row in csv.reader(itertools.chain([first], lines)):
            if row:
                return [h.strip() for h in row]
    raise DataError(f"{path.name}: the file is empty, expected a header line and data rows")


def infer_task(record: Any, asked: str | None, name: str) -> str:
    """The task the data supports; an explicit ``--task`` must agree with it."""
    task = (
        "forecast"
        if isinstance(record, (Series, Panel))
        else "classify"
        if isinstance(record, Sequences)
        else "charlm"
    )
    if asked is not None and asked != task:
        kinds = {"forecast": "a time series", "classify": "labelled sequences", "charlm": "a text"}
        raise DataError(f"--task {asked} needs {kinds[asked]}, but {name} is {kinds[task]}")
    return task
