"""Time labels of a series: parse them, check their order, find their frequency, continue them.

Understood forms: years (``1700``), quarters (``1990Q1``, ``1990-Q1``), months (``1949-01``)
and ISO dates (``1958-03-29``, a time part is ignored). The frequency is read from the
spacing of the last labels: yearly, quarterly, monthly, weekly, daily, or every ``k`` days;
the seasonal period follows from it (months 12, quarters 4, weeks 52, days 7, years none).
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import re

from rnnkit.errors import DataError

PERIODS = {"year": None, "quarter": 4, "month": 12, "week": 52, "day": 7}
_QUARTER = re.compile(r"^(-?\d{1,4})-?Q([1-4])$", re.IGNORECASE)
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")


def parse_label(label: str) -> tuple[str, int | dt.date]:
    """``(kind, value)``: ``("year", 1700)``, ``("quarter", 4 * year + q - 1)``, ``("month",
    12 * year + m - 1)`` or ``("date", date)``.

    Raises:
        DataError: a label in none of the forms above.
    """
    text = label.strip()
    if re.fullmatch(r"-?\d{1,4}", text):
        return "year", int(text)
    m = _QUARTER.match(text)
    if m:
        return "quarter", 4 * int(m.group(1)) + int(m.group(2)) - 1
    m = _MONTH.match(text)
    if m and 1 <= int(m.group(2)) <= 12:
        return "month", 12 * int(m.group(1)) + int(m.group(2)) - 1
    try:
        return "date", dt.date.fromisoformat(text[:10])
    except ValueError:
        raise DataError(
            f"date {label!r}: expected a year (1990), a quarter (1990Q1), a month (1990-01) or "
            "an ISO date (1990-01-31)"
        ) from None


def _ordinal(kind: str, v: int | dt.date) -> int:
    return v.toordinal() if isinstance(v, dt.date) else int(v)


def frequency(index: list[str], source: str = "dates") -> tuple[str, int]:
    """``(unit, step)`` of labels that must increase: e.g. ``("month", 1)``, ``("day", 7)``
    for weekly ISO dates (reported as ``("week", 1)``), ``("year", 1)``.

    Raises:
        DataError: a label does not parse, the forms are mixed, or the labels do not increase.
    """
    try:
        parsed = [parse_label(v) for v in index]
    except DataError as e:
        raise DataError(f"{source}: {e}") from None
    kinds = {k for k, _ in parsed}
    if len(kinds) > 1:
        raise DataError(f"{source}: mixed date forms ({', '.join(sorted(kinds))})")
    kind = kinds.pop()
    ords = [_ordinal(kind, v) for _, v in parsed]
    for i in range(1, len(ords)):
        if ords[i] <= ords[i - 1]:
            raise DataError(
                f"{source}: dates must increase, but row {i + 1} ({index[i]!r}) does not come "
                f"after row {i} ({index[i - 1]!r})"
            )
    if len(ords) < 2:
        return ("year" if kind == "year" else kind), 1
    tail = [b - a for a, b in itertools.pairwise(ords[-6:])]
    step = min(tail)
    if kind != "date":
        return kind, step
    if all(28 <= d <= 31 for d in tail):
        return "month", 1
    if all(90 <= d <= 92 for d in tail):
        return "quarter", 1
    if all(365 <= d <= 366 for d in tail):
        return "year", 1
    if step == 7:
        return "week", 1
    return "day", step


def detect_period(index: list[str] | None) -> int | None:
    """The seasonal period implied by the labels' frequency, or ``None``."""
    if not index or len(index) < 3:
        return None
    try:
        unit, step = frequency(index)
    except DataError:
        return None
    return PERIODS.get(unit) if step == 1 else None


def continue_labels(index: list[str], steps: int) -> list[str]:
    """The next ``steps`` labels after ``index``, in its form: years, quarters, months, ISO
    dates (monthly ISO dates keep their day, clipped to the month's length)."""
    unit, step = frequency(index)
    kind, last = parse_label(index[-1])
    out: list[str] = []
    for k in range(1, steps + 1):
        if kind == "year":
            out.append(str(int(last) + k * step))
        elif kind == "quarter":
            q = int(last) + k * step
            sep = "-Q" if "-Q" in index[-1].upper() else "Q"
            out.append(f"{q // 4}{sep}{q % 4 + 1}")
        elif kind == "month":
            m = int(last) + k * step
            out.append(f"{m // 12:04d}-{m % 12 + 1:02d}")
        else:
            out.append(_add(last, unit, k * step).isoformat())  # type: ignore[arg-type]
    return out


def _add(d: dt.date, unit: str, k: int) -> dt.date:
    if unit in ("day", "week"):
        return d + dt.timedelta(days=k * (7 if unit == "week" else 1))
    months = {"month": 1, "quarter": 3, "year": 12}[unit] * k
    m = d.year * 12 + d.month - 1 + months
    y, mo = divmod(m, 12)
    return dt.date(y, mo + 1, min(d.day, calendar.monthrange(y, mo + 1)[1]))
