"""The UCR time-series classification archive's own files, read without any other package.

``load_dataset("ucr:PATH")`` reads a problem of the UCR archive (2018 edition, univariate)
from disk: ``PATH`` is the problem's folder (``.../GunPoint``, holding ``GunPoint_TRAIN.tsv``
and ``GunPoint_TEST.tsv``) or its ``_TRAIN.tsv`` file. Each line of a ``.tsv`` is one case:
its class label, then its values, separated by tabs. A series shorter than the longest ends in
``NaN`` padding, which is dropped; a ``NaN`` before the last value is a missing value, which is
refused (rnnkit does not guess it). The training cases come first (``n_train`` of them), then
the test cases.

The files are untrusted input: each line is checked (a label, at least one finite value,
nothing but numbers) and every error names the file and the line.
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path

import numpy as np

from rnnkit.data._io import read_utf8
from rnnkit.data.containers import Sequences
from rnnkit.data.sequences import encode_labels
from rnnkit.errors import DataError

MAX_BYTES = 1 << 30  # the archive's largest file is ~120 MB; a bigger one is not a UCR file


def is_ucr_path(spec: str) -> bool:
    """Whether the part after ``ucr:`` names files rather than an archive problem name."""
    return os.sep in spec or "/" in spec or spec.endswith(".tsv") or Path(spec).is_dir()


def ucr_files(spec: str) -> tuple[str, Path, Path]:
    """``(problem name, train file, test file)`` for a folder or a ``_TRAIN.tsv`` path."""
    p = Path(spec)
    if p.is_dir():
        name, folder = p.resolve().name, p
    elif p.name.endswith("_TRAIN.tsv"):
        name, folder = p.name[: -len("_TRAIN.tsv")], p.parent
    else:
        raise DataError(f"ucr:{spec}: expected a UCR problem's folder or its NAME_TRAIN.tsv "
                        f"file, got {'a missing path' if not p.exists() else 'another file'}")
    return name, folder / f"{name}_TRAIN.tsv", folder / f"{name}_TEST.tsv"


def read_ucr_tsv(path: Path) -> tuple[list[np.ndarray], list[str]]:
    """The cases of one ``.tsv`` file: series ``(T_i, 1)`` float64 and their labels."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found (a UCR problem has NAME_TRAIN.tsv and "
                        f"NAME_TEST.tsv)") from None
    if not stat.S_ISREG(info.st_mode):
        raise DataError(f"{path}: expected a regular file")
    if info.st_size > MAX_BYTES:
        raise DataError(f"{path}: {info.st_size} bytes, more than a UCR file has "
                        f"({MAX_BYTES} at most)")
    X, labels = [], []
    for line_no, line in enumerate(read_utf8(path).splitlines(), start=1):
        if not line.strip():
            continue
        cells = line.rstrip("\r").split("\t")
        label, values = cells[0].strip(), cells[1:]
        if not label or not values:
            raise DataError(f"{path.name}: line {line_no}: expected a label and values "
                            f"separated by tabs, got {line[:40]!r}")
        try:
            v = np.array([float(c) for c in values], dtype=np.float64)
        except ValueError:
            bad = next(c for c in values if not _is_float(c))
            raise DataError(f"{path.name}: line {line_no}: expected numbers after the label, "
                            f"got {bad[:20]!r}") from None
        if np.isinf(v).any():
            raise DataError(f"{path.name}: line {line_no}: an infinite value")
        nan = np.isnan(v)
        n = len(v) - int(np.argmax(~nan[::-1])) if (~nan).any() else 0
        if n == 0:
            raise DataError(f"{path.name}: line {line_no}: no value, only NaN")
        if nan[:n].any():
            raise DataError(f"{path.name}: line {line_no}: a missing value (NaN) at position "
                            f"{int(np.argmax(nan[:n])) + 1} of {n}; fill or drop it first")
        X.append(v[:n, None])
        labels.append(label)
    if not X:
        raise DataError(f"{path.name}: no case in the file")
    return X, labels


def load_ucr_files(spec: str) -> Sequences:
    """``load_dataset("ucr:PATH")``: the training cases, then the test cases."""
    name, train, test = ucr_files(spec)
    x_tr, y_tr = read_ucr_tsv(train)
    x_te, y_te = read_ucr_tsv(test)
    X = x_tr + x_te
    codes, classes = encode_labels([_label(v) for v in y_tr + y_te], f"ucr:{name}: label")
    same = len({x.shape for x in X}) == 1
    return Sequences(name=f"ucr:{name}", X=np.stack(X) if same else X, y=codes,
                     classes=classes, n_train=len(x_tr))


def _label(text: str) -> str:
    """``"1.0000000e+00"`` and ``"1"`` are one class (the archive writes both forms)."""
    try:
        v = float(text)
    except ValueError:
        return text
    return str(int(v)) if math.isfinite(v) and v == int(v) else text


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
