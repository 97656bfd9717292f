"""Which columns a forecaster reads, and how: its targets, past covariates, known-future
covariates and calendar features (``--target a,b``, ``--features``, ``--future-features``,
``--calendar``).

A series' ``values`` hold the targets first, then the past covariates, then the known-future
ones (``sources`` reads a CSV in that order). The scaler standardises all of those columns;
calendar features are sin/cos in [-1, 1] and are not scaled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnkit.data import Series
from rnnkit.data.covariates import calendar_features, calendar_names, calendar_unit
from rnnkit.data.dates import continue_labels
from rnnkit.errors import DataError

from .common import UsageError


@dataclass(frozen=True)
class Layout:
    targets: tuple[str, ...]
    features: tuple[str, ...] = ()  # past covariates: known up to each origin only
    future: tuple[str, ...] = ()  # known-future covariates: read at the forecast steps too
    calendar: tuple[str, ...] = ()  # calendar feature names, derived from the dates
    calendar_unit: str | None = None

    @property
    def K(self) -> int:
        return len(self.targets)

    @property
    def columns(self) -> tuple[str, ...]:
        """The data columns the model reads, in ``values`` order."""
        return (*self.targets, *self.features, *self.future)

    @property
    def known(self) -> bool:
        """Whether the model reads anything at the forecast steps."""
        return bool(self.future or self.calendar)

    def inputs(self) -> int:
        """Input features per time step of the model."""
        n = len(self.columns)
        return n + len(self.calendar) + 1 if self.known else n


def target_names(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def from_settings(series: Series, s: Any, name: str) -> Layout:
    """The layout ``series`` was read with (``sources`` put the columns in order)."""
    names = list(series.columns)
    targets = target_names(s.target) or names[:1]
    future = list(s.future_features or ())
    if names[: len(targets)] != targets:
        raise DataError(f"{name}: --target {s.target}: the data has column(s) "
                        f"{', '.join(names)}; bundled series have one")
    if future and names[len(names) - len(future):] != future:
        raise DataError(f"{name}: --future-features {','.join(future)}: the data has column(s) "
                        f"{', '.join(names)}")
    past = names[len(targets): len(names) - len(future)]
    cal: tuple[str, ...] = ()
    unit = None
    if s.calendar:
        if series.index is None:
            raise UsageError("--calendar derives month, week or day features from the dates: "
                             "give --date COL")
        unit = calendar_unit(series.index, f"{name}: --date {s.date}" if s.date
                             else f"{name}: its dates")
        cal = tuple(calendar_names(unit))
    return Layout(tuple(targets), tuple(past), tuple(future), cal, unit)


def from_meta(meta: dict[str, Any]) -> Layout:
    return Layout(
        tuple(meta.get("targets") or [meta["target"]]),
        tuple(meta.get("features") or ()),
        tuple(meta.get("future_features") or ()),
        tuple(meta.get("calendar") or ()),
        meta.get("calendar_unit"),
    )


def to_meta(lay: Layout) -> dict[str, Any]:
    return {"target": lay.targets[0], "targets": list(lay.targets),
            "features": list(lay.features), "future_features": list(lay.future),
            "calendar": list(lay.calendar), "calendar_unit": lay.calendar_unit}


def known(lay: Layout, scaled: np.ndarray, labels: list[str] | None) -> np.ndarray | None:
    """``(N, C)`` the known-future inputs of each row: the scaled future covariates, then the
    calendar features of ``labels``; ``None`` for a model without them."""
    if not lay.known:
        return None
    parts = [scaled[:, lay.K + len(lay.features):]]
    if lay.calendar:
        if labels is None or len(labels) != len(scaled):
            raise DataError("this model reads calendar features: the data needs its date "
                            "column (give --date COL)")
        parts.append(calendar_features(labels, lay.calendar_unit or ""))
    return np.concatenate(parts, axis=1)


def future_known(lay: Layout, scaler: Any, series: Series, steps: int, name: str
                 ) -> np.ndarray | None:
    """``(steps, C)`` the known-future inputs of the ``steps`` rows after the series' end:
    the future covariates from the data's rows past the last target value (``Series.future``),
    and the calendar of the continued dates; ``None`` for a model without them.

    Raises:
        DataError: the data gives fewer future rows than ``steps``, or a future covariate is
            missing in one of them.
    """
    if not lay.known:
        return None
    parts = []
    if lay.future:
        fut = series.future
        have = 0 if fut is None else len(fut)
        cols = ", ".join(lay.future)
        if have < steps:
            raise DataError(
                f"{name}: the model reads the future values of {cols} at each forecast step; "
                f"{steps} steps need them in {steps} rows after the last target value "
                f"(target cells left empty), the data has {have}"
            )
        v = fut[:steps, lay.K + len(lay.features):]  # (steps, Fu)
        bad = np.argwhere(~np.isfinite(v))
        if len(bad):
            r, j = bad[0]
            raise DataError(f"{name}: future covariate {lay.future[j]!r} is missing in future "
                            f"row {r + 1} (forecast step {r + 1}); give its planned value")
        full = np.zeros((steps, len(lay.columns)))
        full[:, lay.K + len(lay.features):] = v
        parts.append(scaler.transform(full)[:, lay.K + len(lay.features):])
    if lay.calendar:
        if not series.index:
            raise DataError(f"{name}: this model reads calendar features: give --date COL")
        labels = continue_labels(series.index, steps)
        parts.append(calendar_features(labels, lay.calendar_unit or ""))
    return np.concatenate(parts, axis=1)
