"""Forecast windows with several targets and known-future covariates, and calendar features.

A series ``values (N, F)`` holds K targets in its first columns and past covariates after them
(known only up to each forecast origin). ``known (N, C)`` holds covariates whose values are
known in advance (planned prices, holidays, calendar features): the model reads them at the
forecast steps too. A window with origin ``o = i + W`` then reads ``W + H`` rows:

- rows ``i .. o - 1`` (the past): every column of ``values``, ``known``, and a flag 0;
- rows ``o .. o + H - 1`` (the future): zeros for ``values`` (the targets and past covariates
  there are unknown), ``known`` at those rows, and a flag 1 that marks them.

Nothing of ``values`` at or after the origin enters ``X``; of ``known``, nothing after the
last forecast step. Targets ``y`` are target-major: ``y[i, k * H + h] = values[o + h, k]``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from rnnkit.data.dates import frequency, parse_label
from rnnkit.data.windows import make_windows
from rnnkit.errors import DataError


def forecast_windows(
    values: np.ndarray,
    *,
    window: int,
    horizon: int,
    targets: int = 1,
    known: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Look-back windows (and known futures) of a series, and the targets that follow them.

    Args:
        values: ``(N, F)`` rows in time order, targets in columns ``[0, targets)``.
        window: look-back length W.
        horizon: forecast length H.
        targets: K, the number of target columns.
        known: ``(N, C)`` known-future covariates, or ``None``.

    Returns:
        ``(X, y)``: ``X`` ``(M, W, F)`` without ``known`` (as ``make_windows``), else
        ``(M, W + H, F + C + 1)`` (see the module docstring); ``y`` ``(M, K * H)``, with
        ``M = N - W - H + 1``.

    Raises:
        DataError: as ``make_windows``; ``targets`` out of range; ``known`` of another length
            or not finite.
    """
    v = np.asarray(values)
    v = v.reshape(len(v), -1)
    if not 1 <= targets <= v.shape[1]:
        raise DataError(f"forecast_windows: expected 1 <= targets <= {v.shape[1]} (the "
                        f"columns), got {targets}")
    X, y0 = make_windows(v, window=window, horizon=horizon)
    y = np.concatenate(
        [y0] + [make_windows(v, window=window, horizon=horizon, target_col=k)[1]
                for k in range(1, targets)], axis=1)  # (M, K*H)
    if known is None:
        return X, y
    c = np.asarray(known, dtype=X.dtype)
    c = c.reshape(len(c), -1)
    if len(c) != len(v):
        raise DataError(f"forecast_windows: known has {len(c)} rows, values {len(v)}")
    if not np.isfinite(c).all():
        r, j = np.argwhere(~np.isfinite(c))[0]
        raise DataError(f"forecast_windows: known[{r}, {j}] is {c[r, j]}; known-future "
                        "covariates must be given at every row")
    M, W, H = len(X), window, horizon
    starts = np.arange(M)[:, None]
    past = np.concatenate([X, c[starts + np.arange(W)], np.zeros((M, W, 1), X.dtype)], axis=2)
    future = np.concatenate([np.zeros((M, H, v.shape[1]), X.dtype),
                             c[starts + W + np.arange(H)], np.ones((M, H, 1), X.dtype)], axis=2)
    return np.concatenate([past, future], axis=1), y  # (M, W + H, F + C + 1)


#: calendar features per frequency: (name, period) of a cyclic position, encoded as sin/cos
CALENDAR = {
    "month": (("month", 12),),
    "quarter": (("quarter", 4),),
    "week": (("week_of_year", 52),),
    "day": (("day_of_week", 7), ("day_of_year", 365.25)),
}


def calendar_names(unit: str) -> list[str]:
    """The calendar feature names for labels of frequency ``unit`` (see ``CALENDAR``)."""
    if unit not in CALENDAR:
        raise DataError(
            f"--calendar: {unit}ly labels have no calendar position to encode (features exist "
            f"for {', '.join(u + 'ly' if u != 'day' else 'daily' for u in CALENDAR)} data)"
        )
    return [f"{name}_{f}" for name, _ in CALENDAR[unit] for f in ("sin", "cos")]


def calendar_features(labels: list[str], unit: str) -> np.ndarray:
    """``(N, C)`` sin/cos of each label's position in its cycle: month of the year for monthly
    data, quarter for quarterly, ISO week for weekly, day of the week and of the year for daily
    (``C = len(calendar_names(unit))``). The values lie in [-1, 1] and need no scaling."""
    names = calendar_names(unit)
    cols = []
    for name, period in CALENDAR[unit]:
        pos = np.array([_position(parse_label(v), name) for v in labels], np.float64)
        angle = 2 * np.pi * pos / period
        cols += [np.sin(angle), np.cos(angle)]
    out = np.stack(cols, axis=1) if labels else np.zeros((0, len(names)))
    return out


def calendar_unit(labels: list[str], source: str) -> str:
    """The frequency of ``labels`` whose calendar features ``--calendar`` adds."""
    unit, step = frequency(labels, source)
    if unit == "day" and step != 1:
        raise DataError(f"--calendar: {source}: dates {step} days apart have no calendar "
                        "cycle to encode")
    calendar_names(unit)
    return unit


def _position(parsed: tuple[str, int | dt.date], name: str) -> float:
    kind, v = parsed
    if kind == "month":
        return int(v) % 12
    if kind == "quarter":
        return int(v) % 4
    if not isinstance(v, dt.date):
        raise DataError(f"--calendar: a {kind} label has no {name}")
    if name == "month":
        return v.month - 1
    if name == "quarter":
        return (v.month - 1) // 3
    if name == "week_of_year":
        return v.isocalendar()[1] - 1
    if name == "day_of_week":
        return v.weekday()
    return v.timetuple().tm_yday - 1
