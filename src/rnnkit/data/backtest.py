"""Rolling-origin backtests: forecast from several origins, each seeing only its past.

Fold ``k`` has an origin ``o_k``; its forecaster gets a copy of the rows before ``o_k`` (all of
them with ``expanding`` windows, the last ``L`` with ``sliding``, ``L`` being the first fold's
length) and forecasts rows ``o_k .. o_k + H - 1``. Origins are ``step`` rows apart and the
last fold ends at the series' last row. The forecaster is called with that copy and nothing
else, so it cannot see its future (Tashman 2000; sktime's ``ExpandingWindowSplitter``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnkit.data.baselines import drift_forecast, persistence_forecast, seasonal_naive_forecast
from rnnkit.data.scores import POINT, interval_scores, naive_scale, point_scores
from rnnkit.errors import DataError

SCHEMES = ("expanding", "sliding")

# (history (L, F), H) -> point forecasts (H,), or (point (H,), quantiles (H, Q))
Forecaster = Callable[[np.ndarray, int], Any]


@dataclass(frozen=True)
class Fold:
    """Rows ``train`` (what the forecaster sees) and ``test`` (what it forecasts)."""

    index: int
    train: slice
    test: slice


def rolling_origins(
    n: int,
    *,
    horizon: int,
    folds: int,
    step: int | None = None,
    scheme: str = "expanding",
    min_train: int = 2,
) -> list[Fold]:
    """The folds of a backtest on ``n`` rows, in time order.

    Raises:
        DataError: an unknown ``scheme``, or too few rows for ``folds`` origins ``step``
            apart with at least ``min_train`` rows before the first.
    """
    if scheme not in SCHEMES:
        raise DataError(f"rolling_origins: expected scheme in {SCHEMES}, got {scheme!r}")
    for arg, v in (("horizon", horizon), ("folds", folds), ("step", step or 1)):
        if int(v) != v or v < 1:
            raise DataError(f"rolling_origins: expected {arg} >= 1, got {v!r}")
    step = step or horizon
    first = n - horizon - (folds - 1) * step
    if first < min_train:
        raise DataError(
            f"a backtest of {folds} folds, {step} rows apart, each forecasting {horizon} "
            f"rows after at least {min_train} rows of history, needs "
            f"{min_train + horizon + (folds - 1) * step} rows; the series has {n} (use fewer "
            "--folds, a smaller --step or --horizon)"
        )
    out = []
    for k in range(folds):
        o = first + k * step
        start = 0 if scheme == "expanding" else o - first
        out.append(Fold(k, slice(start, o), slice(o, o + horizon)))
    return out


def baselines(period: int | None, classical: bool = False) -> dict[str, Forecaster]:
    """Naive, seasonal naive (when ``period``), drift and, with ``classical``, ETS and ARIMA
    (statsmodels, ``rnnkit.data.classical``); each reads the target, column 0."""

    def naive(h: np.ndarray, H: int) -> np.ndarray:
        return persistence_forecast(h[None, :, 0], H)[0]

    def seasonal(h: np.ndarray, H: int) -> np.ndarray:
        return seasonal_naive_forecast(h[None, :, 0], period, H)[0]

    def drift(h: np.ndarray, H: int) -> np.ndarray:
        return drift_forecast(h[None, :, 0], H)[0]

    out: dict[str, Any] = {"naive": naive}
    if period and period > 1:
        out[f"seasonal naive ({period})"] = seasonal
    out["drift"] = drift
    if classical:
        from rnnkit.data import classical as cl

        out["ETS"] = lambda h, H: cl.ets_forecast(h[:, 0], H, period)
        out["ARIMA"] = lambda h, H: cl.arima_forecast(h[:, 0], H, period)
    return out


def backtest(
    values: np.ndarray,
    folds: list[Fold],
    forecasters: dict[str, Forecaster],
    *,
    period: int | None = None,
    levels: Any = None,
    known: int = 0,
    index: list[str] | None = None,
) -> dict[str, Any]:
    """Every forecaster on every fold: ``forecaster(history, H)`` gets a copy of the fold's
    training rows ``(L, F)`` (target in column 0) and returns ``(H,)`` point forecasts or
    ``(point, quantiles (H, Q))`` at ``levels``.

    The last ``known`` columns of ``values`` are known in advance (planned prices, holidays):
    a forecaster with the attribute ``reads_future = True`` is called ``forecaster(history,
    H, future, labels)``, where ``future`` ``(H, F)`` holds those columns at the fold's test
    rows and NaN in every other column, and ``labels`` are ``index``'s labels of the history
    and test rows (dates are known ahead), or ``None``.

    Returns:
        ``{"folds": [...], "overall": {name: scores}}``: per fold its rows, actual values,
        forecasts and scores (MAE, RMSE, MASE with the fold's own in-sample naive scale, sMAPE,
        and interval scores for quantile forecasts); ``overall`` averages each score over the
        folds.
    """
    v = np.asarray(values, np.float64)
    v = v.reshape(len(v), -1)
    out_folds = []
    for fold in folds:
        history = v[fold.train].copy()  # a copy: nothing a forecaster does reaches the data
        actual = v[fold.test, 0]
        H = len(actual)
        m = period if period and len(history) > period + 1 else 1
        scale = naive_scale(history[:, 0], m)
        rec: dict[str, Any] = {
            "fold": fold.index,
            "train": [fold.train.start, fold.train.stop],
            "test": [fold.test.start, fold.test.stop],
            "actual": actual.tolist(),
            "forecasts": {},
            "quantiles": {},
            "scores": {},
        }
        future = np.full((H, v.shape[1]), np.nan)
        if known:
            future[:, -known:] = v[fold.test, -known:]
        labels = None if index is None else list(index[fold.train.start : fold.test.stop])
        for name, f in forecasters.items():
            if getattr(f, "reads_future", False):
                got = f(history.copy(), H, future.copy(), labels)
            else:
                got = f(history.copy(), H)
            point, quant = (got if isinstance(got, tuple) else (got, None))
            point = np.asarray(point, np.float64).reshape(H)
            sc = point_scores(point[None], actual[None], scale)
            if quant is not None:
                iv = interval_scores(np.asarray(quant)[None], levels, actual[None])
                sc.update(_interval_columns(iv))
                rec["quantiles"][name] = np.asarray(quant).tolist()
            rec["forecasts"][name] = point.tolist()
            rec["scores"][name] = sc
        out_folds.append(rec)
    return {"folds": out_folds, "overall": _overall(out_folds)}


def _interval_columns(iv: dict[str, Any]) -> dict[str, float]:
    cols = {"pinball": iv["pinball"], "crps": iv["crps"]}
    for i in iv["intervals"]:
        cols[f"coverage_{round(100 * i['nominal'])}"] = i["coverage"]
        cols[f"width_{round(100 * i['nominal'])}"] = i["width"]
    return cols


def _overall(folds: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    names = list(folds[0]["scores"])
    out = {}
    for name in names:
        keys = list(folds[0]["scores"][name])
        out[name] = {k: float(np.mean([f["scores"][name][k] for f in folds])) for k in keys}
    return out


__all__ = ["POINT", "SCHEMES", "Fold", "backtest", "baselines", "rolling_origins"]
