"""Time series from CSV files, and the rules for missing values.

A CSV has a header line of column names and one row per time step, in time order (rows are
taken in file order; the date column is kept as text, not parsed). Cells that are empty or
read ``NA``, ``N/A``, ``nan`` or ``null`` (any case) are missing.

Missing-value rules (``missing=``), applied to each column on its own:

- ``"interpolate"`` (default): linear in the row position between the nearest observed rows
  (for evenly spaced data that is linear in time); a gap at either end takes the nearest
  observed value, since there is nothing on the other side to draw a line to.
- ``"ffill"``: each gap takes the last observed value above it; a gap at the start takes the
  first observed value.
- ``"drop"``: rows with any missing cell are removed (with their date).
- ``"error"``: a missing cell raises ``DataError`` naming its column and row.

The number of missing cells before the rule ran is reported as ``Series.missing``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np

from rnnkit.data._io import (
    Row,
    column_index,
    csv_stream,
    display_name,
    parse_number,
    utf8_lines,
    where,
)
from rnnkit.data.containers import Series
from rnnkit.errors import DataError

BLOCK_ROWS = 1 << 16  # rows of values allocated at a time while a CSV is parsed
MISSING_RULES = ("interpolate", "ffill", "drop", "error")


def read_series_csv(
    path: str | os.PathLike[str],
    *,
    target: str | Sequence[str],
    features: Sequence[str] | None = None,
    date: str | None = None,
    missing: str = "interpolate",
    unit: str = "",
    period: int | None = None,
    future_rows: bool = False,
) -> Series:
    """Read a time series from a CSV file with a header line.

    Args:
        path: the CSV file (UTF-8).
        target: the column to forecast, or several (the first columns of ``values``).
        features: extra input columns; when given (even empty) ``values`` is ``(N, F)`` with
            the target in column 0 and the features after it, in the order given.
        date: an optional column of time labels, kept as text in ``Series.index``.
        missing: the missing-value rule, one of ``MISSING_RULES`` (see the module docstring).
        unit: the target's unit, stored on the result.
        period: the seasonal period in rows, stored on the result.
        future_rows: the trailing rows whose targets are all empty are not filled but kept
            apart, as ``Series.future`` (their known-future covariates are read at forecast
            time).

    Returns:
        A ``Series`` with ``values`` ``(N,)`` (no features) or ``(N, F)``, float64, no NaN.

    Raises:
        DataError: the file is missing, not UTF-8, empty or headerless; a named column is
            absent; a cell is not a number; fewer than 2 rows remain.
    """
    source = display_name(path)
    return _series(
        *csv_stream(utf8_lines(path), source),
        source,
        target=target,
        features=features,
        date=date,
        missing=missing,
        unit=unit,
        period=period,
        future_rows=future_rows,
    )


def series_from_text(
    text: str,
    source: str,
    *,
    target: str | Sequence[str],
    features: Sequence[str] | None = None,
    date: str | None = None,
    missing: str = "interpolate",
    unit: str = "",
    period: int | None = None,
    future_rows: bool = False,
) -> Series:
    """``read_series_csv`` on text already read; ``source`` names it in messages."""
    return _series(*csv_stream(text.splitlines(keepends=True), source), source, target=target,
                   features=features, date=date, missing=missing, unit=unit, period=period,
                   future_rows=future_rows)


def _series(
    header: list[str],
    rows: Iterator[Row],
    source: str,
    *,
    target: str | Sequence[str],
    features: Sequence[str] | None,
    date: str | None,
    missing: str,
    unit: str,
    period: int | None,
    future_rows: bool,
) -> Series:
    """The series of CSV ``rows``, parsed as they are read: the memory holds the values, not
    the text or its rows."""
    _check_rule(missing)
    targets = [target] if isinstance(target, str) else list(target)
    names = targets + [f for f in (features or ()) if f not in targets]
    cols = [
        column_index(header, n, source, "target" if i < len(targets) else "feature")
        for i, n in enumerate(names)
    ]
    dcol = None if date is None else column_index(header, date, source, "date")
    blocks: list[np.ndarray] = []  # (rows, F) each
    pending: list[list[float]] = []  # the rows of the next block, and where they are
    spots: list[tuple[int, int]] = []
    holes_at: dict[int, tuple[int, int]] = {}  # (row, line) of each row with a missing cell
    labels: list[str] = []

    def flush() -> None:
        block = np.array(pending, dtype=np.float64).reshape(len(pending), len(cols))
        first = sum(len(b) for b in blocks)
        for i in np.flatnonzero(np.isnan(block).any(axis=1)):
            holes_at[first + int(i)] = spots[i]
        blocks.append(block)
        pending.clear()
        spots.clear()

    for row, line, cells in rows:
        pending.append([parse_number(cells[c], source, name, row, line)
                        for c, name in zip(cols, names, strict=True)])
        spots.append((row, line))
        if dcol is not None:
            labels.append(cells[dcol].strip())
        if len(pending) == BLOCK_ROWS:
            flush()
    flush()
    values = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]  # (N, F)
    blocks.clear()
    if len(values) < 2:
        raise DataError(f"{source}: expected at least 2 data rows, got {len(values)}")
    future = future_index = None
    if future_rows:
        k = len(targets)
        last = np.flatnonzero(~np.isnan(values[:, :k]).all(axis=1))
        cut = int(last[-1]) + 1 if len(last) else 0
        future, values = values[cut:], values[:cut]
        if dcol is not None:
            future_index, labels = labels[cut:], labels[:cut]
    holes = np.isnan(values)
    if missing == "error" and holes.any():
        i, j = np.argwhere(holes)[0]
        row, line = holes_at[int(i)]
        raise DataError(
            f"{where(source, names[j], row, line)}: missing value and missing='error'; "
            f"choose one of {MISSING_RULES[:3]} to fill or drop it"
        )
    index = None if dcol is None else labels
    if holes.any():  # else the rule changes nothing
        values, keep = fill_missing(values, missing, source=source, columns=names)
        if index is not None and keep is not None:
            index = [d for d, k in zip(index, keep, strict=True) if k]
    if len(values) < 2:
        raise DataError(
            f"{source}: expected at least 2 rows after missing='{missing}', got {len(values)}"
        )
    flat = features is None and len(targets) == 1
    return Series(
        name=source,
        values=values[:, 0] if flat else values,
        index=index,
        missing=int(holes.sum()),
        unit=unit,
        period=period,
        columns=tuple(names),
        target_col=0,
        missing_rule=missing,
        future=future,
        future_index=future_index,
    )


def fill_missing(
    values: np.ndarray,
    rule: str = "interpolate",
    *,
    source: str = "values",
    columns: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply a missing-value rule to NaN cells, column by column.

    Args:
        values: ``(N,)`` or ``(N, F)`` float array with NaN for missing cells.
        rule: one of ``MISSING_RULES`` (see the module docstring).
        source: names the data in messages.
        columns: names the columns in messages (default: their positions).

    Returns:
        ``(filled, keep)``: ``filled`` has the shape of ``values`` (fewer rows for
        ``"drop"``) and no NaN; ``keep`` ``(N,)`` bool marks the rows kept by ``"drop"``
        and is ``None`` for the other rules.

    Raises:
        DataError: unknown rule; a column with no observed value; ``"error"`` with a gap.
    """
    _check_rule(rule)
    v = np.array(values, dtype=np.float64)
    flat = v.ndim == 1
    v2 = v.reshape(len(v), -1)  # (N, F)
    holes = np.isnan(v2)
    names = list(columns) if columns is not None else [str(j) for j in range(v2.shape[1])]
    if rule == "drop":
        keep = ~holes.any(axis=1)
        out = v2[keep]
        return (out[:, 0] if flat else out), keep
    if rule == "error" and holes.any():
        i, j = np.argwhere(holes)[0]
        raise DataError(
            f"{source}: column {names[j]!r} row {i + 1}: missing value and missing='error'"
        )
    positions = np.arange(len(v2))
    for j in range(v2.shape[1]):
        seen = ~holes[:, j]
        if not seen.any():
            raise DataError(f"{source}: column {names[j]!r} has no values, all are missing")
        if seen.all():
            continue
        if rule == "interpolate":
            # np.interp holds the end values constant outside the observed range.
            v2[:, j] = np.interp(positions, positions[seen], v2[seen, j])
        else:  # ffill: index of the last observed row at or above each row
            last = np.maximum.accumulate(np.where(seen, positions, -1))
            last[last < 0] = np.argmax(seen)
            v2[:, j] = v2[last, j]
    return (v2[:, 0] if flat else v2), None


def _check_rule(rule: str) -> None:
    if rule not in MISSING_RULES:
        raise DataError(f"missing: expected one of {MISSING_RULES}, got {rule!r}")
