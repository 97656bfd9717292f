"""Labelled sequences: long-format CSV, ``.npz`` files, and padding to a batch.

Long-format CSV: one row per time step, ``sequence_id, time, feature..., label``. Rows of a
sequence may come in any order; they are sorted by ``time`` (numerically when every time
cell is a number, else as text, which orders ISO dates correctly). Every row of a sequence
must carry the same label.

``.npz``: arrays ``X`` ``(N, T, F)`` and ``y`` ``(N,)``; ragged data is stored padded, with
an int array ``lengths`` ``(N,)`` giving each sequence's true length. Files are read with
``allow_pickle=False``: an ``.npz`` holding Python objects is refused, since loading it could
run code.
"""

from __future__ import annotations

import itertools
import math
import os
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from rnnkit.data._io import (
    column_index,
    csv_table,
    display_name,
    parse_number,
    read_utf8,
    where,
)
from rnnkit.data.containers import Sequences
from rnnkit.errors import DataError
from rnnkit.fileio import open_regular


def read_sequences_csv(
    path: str | os.PathLike[str],
    *,
    id_col: str = "sequence_id",
    time_col: str = "time",
    label_col: str = "label",
    features: Sequence[str] | None = None,
) -> Sequences:
    """Read labelled sequences from a long-format CSV.

    Args:
        path: the CSV file (UTF-8) with a header line.
        id_col: column naming the sequence each row belongs to.
        time_col: column giving each row's position in its sequence.
        label_col: column with the sequence's class label.
        features: the feature columns; default every column but the three above.

    Returns:
        ``Sequences`` whose ``X`` is a list of ``(T_i, F)`` float64 arrays (always a list,
        in order of each id's first row), ``y`` ``(N,)`` int64 codes into the sorted
        ``classes`` (int64 when every label is an integer, else str), ``ids`` and
        ``features``.

    Raises:
        DataError: file errors as ``read_series_csv``; a missing or non-numeric feature
            cell; a repeated time within a sequence; labels that differ within a sequence;
            an empty label; fewer than two classes.
    """
    source = display_name(path)
    header, rows = csv_table(read_utf8(path), source)
    icol, tcol, lcol = (
        column_index(header, n, source, role)
        for n, role in ((id_col, "id"), (time_col, "time"), (label_col, "label"))
    )
    if features is None:
        features = [h for h in header if h not in (id_col, time_col, label_col)]
    if not features:
        raise DataError(
            f"{source}: no feature columns besides {id_col!r}, {time_col!r}, "
            f"{label_col!r}; columns: {header}"
        )
    fcols = [column_index(header, f, source, "feature") for f in features]

    groups: dict[str, list[tuple[str, list[float]]]] = {}
    labels: dict[str, tuple[str, int, int]] = {}
    for row, line, cells in rows:
        sid, label = cells[icol].strip(), cells[lcol].strip()
        if not label:
            raise DataError(f"{where(source, label_col, row, line)}: expected a label, got ''")
        first = labels.setdefault(sid, (label, row, line))
        if first[0] != label:
            raise DataError(
                f"{where(source, label_col, row, line)}: sequence {sid!r} has label "
                f"{label!r} here but {first[0]!r} at row {first[1]} (line {first[2]}); "
                "a sequence has one label"
            )
        vals = []
        for c, name in zip(fcols, features, strict=True):
            v = parse_number(cells[c], source, name, row, line)
            if math.isnan(v):  # sequences have no missing-value rule
                raise DataError(
                    f"{where(source, name, row, line)}: missing value; "
                    "fill it before reading sequences"
                )
            vals.append(v)
        groups.setdefault(sid, []).append((cells[tcol].strip(), vals))

    times_numeric = all(_is_float(t) for g in groups.values() for t, _ in g)
    X = []
    for sid, steps in groups.items():
        steps.sort(key=(lambda s: float(s[0])) if times_numeric else (lambda s: s[0]))
        times = [float(t) if times_numeric else t for t, _ in steps]
        dup = next((a for a, b in itertools.pairwise(times) if a == b), None)
        if dup is not None:
            raise DataError(
                f"{source}: sequence {sid!r} has time {dup!r} more than once in column {time_col!r}"
            )
        X.append(np.array([v for _, v in steps], dtype=np.float64))  # (T_i, F)
    y, classes = encode_labels([labels[s][0] for s in groups], f"{source}: column {label_col!r}")
    return Sequences(
        name=source, X=X, y=y, classes=classes, ids=list(groups), features=tuple(features)
    )


def load_npz(path: str | os.PathLike[str]) -> Sequences:
    """Load sequences from an ``.npz`` with ``X``, ``y`` and optionally ``lengths``.

    Args:
        path: the ``.npz`` file.

    Returns:
        ``Sequences`` with ``X`` ``(N, T, F)`` float64, or a list of ``(T_i, F)`` arrays cut
        to ``lengths`` when the file has them. Integer, bool or string ``y`` are class labels
        (``y`` becomes int64 codes into ``classes``); float ``y`` are regression targets
        (``classes`` is ``None``).

    Raises:
        DataError: the file is missing or not an ``.npz``; it holds object arrays; ``X`` or
            ``y`` is absent or has the wrong shape; ``lengths`` out of range; non-finite
            ``X``; a single class.
    """
    source = display_name(path)
    f, _ = open_regular(path, what="an .npz file")  # a FIFO or a device is refused, not read
    with f:
        magic = f.read(6)
        f.seek(0)
        if magic.startswith(b"\x93NUMPY"):
            raise DataError(f"{source}: expected an .npz archive of named arrays (np.savez), "
                            "got a single .npy array")
        if not magic.startswith(b"PK"):  # np.load would try to unpickle anything else
            raise DataError(f"{source}: expected an .npz file (a zip archive written by "
                            f"np.savez), got other content (first bytes {magic!r})")
        try:
            z = np.load(f, allow_pickle=False)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise DataError(
                f"{source}: expected an .npz file (np.savez), could not read it: {e}"
            ) from None
        return _from_npz(z, source)


def _from_npz(z: Any, source: str) -> Sequences:
    with z:
        try:
            arrays = {k: z[k] for k in z.files}
        except ValueError as e:  # numpy refuses object arrays without pickle
            raise DataError(
                f"{source}: holds Python objects, which are not loaded (no "
                "pickle); store ragged X padded, with a 'lengths' array"
            ) from e
    if "X" not in arrays or "y" not in arrays:
        raise DataError(f"{source}: expected arrays 'X' and 'y', got {sorted(arrays)}")
    X, y = arrays["X"], arrays["y"]
    if X.ndim != 3 or X.dtype.kind not in "biuf":  # complex is not cast away silently
        raise DataError(
            f"{source}: expected real numeric X of shape (N, T, F), got {X.dtype} "
            f"{X.shape}" + ("; for one feature use X[..., None]" if X.ndim == 2 else "")
        )
    if 0 in X.shape:
        raise DataError(f"{source}: X of shape {X.shape} is empty; expected at least one "
                        "sequence (N), step (T) and feature (F)")
    if y.dtype.kind not in "biufUS":
        raise DataError(f"{source}: expected y of class labels (integers or strings) or real "
                        f"targets, got dtype {y.dtype}")
    if y.ndim != 1 or len(y) != len(X):
        raise DataError(
            f"{source}: expected y of shape ({len(X)},) to match X {X.shape}, got {y.shape}"
        )
    X = X.astype(np.float64)
    seqs: np.ndarray | list[np.ndarray] = X
    if "lengths" in arrays:
        lengths = arrays["lengths"]
        if (
            lengths.shape != (len(X),)
            or not np.issubdtype(lengths.dtype, np.integer)
            or lengths.min(initial=1) < 1
            or lengths.max(initial=1) > X.shape[1]
        ):
            raise DataError(
                f"{source}: expected integer lengths of shape ({len(X)},) in "
                f"[1, {X.shape[1]}], got {lengths.dtype} {lengths.shape} "
                f"ranging {lengths.min(initial=0)}..{lengths.max(initial=0)}"
            )
        seqs = [X[i, : lengths[i]] for i in range(len(X))]
    bad = next((i for i, s in enumerate(seqs) if not np.isfinite(s).all()), None)
    if bad is not None:
        raise DataError(f"{source}: X[{bad}] has NaN or inf values within its length")
    if y.dtype.kind == "f":
        return Sequences(name=source, X=seqs, y=y.astype(np.float64), classes=None)
    codes, classes = encode_labels(y.tolist(), f"{source}: y")
    return Sequences(name=source, X=seqs, y=codes, classes=classes)


def pad_sequences(
    sequences: Sequence[np.ndarray], *, value: float = 0.0, dtype: np.dtype | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Stack sequences of different lengths into one zero-padded batch.

    Args:
        sequences: B arrays ``(T_i, ...)`` with the same trailing shape (``(T_i, F)``
            features or ``(T_i,)`` token ids).
        value: the fill value after each sequence's end.
        dtype: the result dtype; default the common dtype of the inputs.

    Returns:
        ``(padded, lengths)``: ``padded`` ``(B, T_max, ...)`` with ``padded[b, :lengths[b]]``
        equal to ``sequences[b]``, and ``lengths`` ``(B,)`` int64.

    Raises:
        DataError: no sequences, a sequence of length 0, or trailing shapes that differ.
    """
    arrays = [np.asarray(s) for s in sequences]
    if not arrays:
        raise DataError("pad_sequences: expected at least one sequence, got none")
    rest = arrays[0].shape[1:]
    for i, a in enumerate(arrays):
        if a.ndim == 0 or len(a) == 0:
            raise DataError(f"pad_sequences: sequence {i} is empty (shape {a.shape})")
        if a.shape[1:] != rest:
            raise DataError(
                f"pad_sequences: sequence {i} has shape {a.shape}, expected "
                f"(T, {', '.join(map(str, rest))}) like sequence 0"
            )
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    out_dtype = dtype if dtype is not None else np.result_type(*arrays)
    padded = np.full((len(arrays), int(lengths.max()), *rest), value, dtype=out_dtype)
    for i, a in enumerate(arrays):
        padded[i, : len(a)] = a
    return padded, lengths


def encode_labels(labels: Sequence, source: str = "labels") -> tuple[np.ndarray, np.ndarray]:
    """Class labels as int64 codes into their sorted distinct values.

    Args:
        labels: N labels (str, int or bool); strings that all read as integers become ints,
            so "10" sorts after "9".
        source: names the labels in messages.

    Returns:
        ``(codes, classes)``: ``codes`` ``(N,)`` int64 with ``classes[codes] == labels``,
        ``classes`` ``(C,)`` sorted (int64 for integer labels).

    Raises:
        DataError: fewer than two distinct labels.
    """
    if len(labels) == 0:
        raise DataError(f"{source}: expected labels, got none")
    if all(isinstance(v, str) for v in labels) and all(_is_int(v) for v in labels):
        labels = [int(v) for v in labels]
    classes, codes = np.unique(np.asarray(labels), return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"{source}: expected at least 2 classes, got only {classes.tolist()}")
    if classes.dtype.kind in "iub":
        classes = classes.astype(np.int64)
    return codes.astype(np.int64).reshape(-1), classes


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _is_int(s: str) -> bool:
    try:
        int(s)
    except ValueError:
        return False
    return True
