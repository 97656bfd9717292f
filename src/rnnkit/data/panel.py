"""Panel data: many series in one long CSV, one row per series and time step.

A column names the series of each row (``series_id``); the rows of one series are in time
order, and the series may follow one another or interleave. Each series is read as a
``Series`` of its own (its missing-value rule applied within it), so that windows, scalers and
baselines never mix two series.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass

from rnnkit.data._io import column_index, csv_table, display_name, read_utf8
from rnnkit.data.containers import Series
from rnnkit.data.tabular import series_from_text
from rnnkit.errors import DataError


@dataclass(frozen=True, eq=False)
class Panel:
    """Several series of the same columns, by id, in the order their ids first appear.

    Attributes:
        name: the file it came from.
        id_column: the column that named each row's series.
        series: one ``Series`` per id (``Series.name`` is the id).
    """

    name: str
    id_column: str
    series: tuple[Series, ...]

    @property
    def ids(self) -> list[str]:
        return [s.name for s in self.series]


def read_panel_csv(
    path: str | os.PathLike[str],
    *,
    series_id: str,
    target: str | Sequence[str],
    features: Sequence[str] | None = None,
    date: str | None = None,
    missing: str = "interpolate",
    future_rows: bool = False,
) -> Panel:
    """Read a long CSV of many series (see the module docstring); the other arguments are
    ``read_series_csv``'s, applied to each series.

    Raises:
        DataError: as ``read_series_csv``, for the file or any one series (the message names
            the series); an empty id; a ``series_id`` column that is also a target or feature.
    """
    text = read_utf8(path)
    source = display_name(path)
    header, rows = csv_table(text, source)
    col = column_index(header, series_id, source, "series id")
    targets = [target] if isinstance(target, str) else list(target)
    if series_id in (*targets, *(features or ())) or series_id == date:
        raise DataError(f"{source}: --series-id {series_id} is also a target, feature or date "
                        "column; it names the series of each row")
    groups: dict[str, list[list[str]]] = {}
    for _, line, cells in rows:
        key = cells[col].strip()
        if not key:
            raise DataError(f"{source}: line {line}: empty --series-id {series_id}")
        groups.setdefault(key, []).append(cells)
    out = []
    for key, body in groups.items():
        buf = io.StringIO()
        csv.writer(buf).writerows([header, *body])
        # messages name the series; their row numbers count that series' rows
        s = series_from_text(buf.getvalue(), f"{source} series {key}", target=targets,
                             features=features, date=date, missing=missing,
                             future_rows=future_rows)
        out.append(Series(name=key, values=s.values, index=s.index, missing=s.missing,
                          columns=s.columns, missing_rule=s.missing_rule, future=s.future,
                          future_index=s.future_index))
    if len(out) < 2:
        raise DataError(f"{source}: --series-id {series_id}: expected at least 2 series, got "
                        f"{len(out)}; without a panel, leave --series-id out")
    return Panel(source, series_id, tuple(out))
