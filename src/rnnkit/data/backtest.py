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


def baselines(period: int | None, classical: bool = False, targets: int = 1
              ) -> dict[str, Forecaster]:
    """Naive, seasonal naive (when ``period``), drift and, with ``classical``, ETS and ARIMA
    (statsmodels, ``rnnkit.data.classical``); each forecasts the ``targets`` first columns on
    their own: ``(H,)`` for one target, ``(H, K)`` for several."""

    def each(one: Callable[[np.ndarray, int], np.ndarray]) -> Forecaster:
        def forecast(h: np.ndarray, H: int) -> np.ndarray:
            out = np.stack([one(h[:, k], H) for k in range(targets)], axis=1)
            return out[:, 0] if targets == 1 else out

        return forecast

    out: dict[str, Any] = {"naive": each(lambda y, H: persistence_forecast(y[None], H)[0])}
    if period and period > 1:
        out[f"seasonal naive ({period})"] = each(
            lambda y, H: seasonal_naive_forecast(y[None], period, H)[0])
    out["drift"] = each(lambda y, H: drift_forecast(y[None], H)[0])
    if classical:
        from rnnkit.data import classical as cl

        out["ETS"] = each(lambda y, H: cl.ets_forecast(y, H, period))
        out["ARIMA"] = each(lambda y, H: cl.arima_forecast(y, H, period))
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
    targets: int = 1,
) -> dict[str, Any]:
    """Every forecaster on every fold: ``forecaster(history, H)`` gets a copy of the fold's
    training rows ``(L, F)`` (target in column 0) and returns ``(H,)`` point forecasts or
    ``(point, quantiles (H, Q))`` at ``levels``.

    The last ``known`` columns of ``values`` are known in advance (planned prices, holidays):
    a forecaster with the attribute ``reads_future = True`` is called ``forecaster(history,
    H, future, labels)``, where ``future`` ``(H, F)`` holds those columns at the fold's test
    rows and NaN in every other column, and ``labels`` are ``index``'s labels of the history
    and test rows (dates are known ahead), or ``None``.

    With ``targets`` K above 1, the first K columns are targets: forecasters return ``(H,
    K)`` points and ``(H, K, Q)`` quantiles; each fold keeps every target's scores in
    ``per_target`` (a list) and, as ``scores``, their combination: MASE, sMAPE and coverage
    averaged over the targets, the other scores in units of each target's standard deviation
    over the fold's history. ``actual``, ``forecasts`` and ``quantiles`` hold the first target.

    Returns:
        ``{"folds": [...], "overall": {name: scores}}``: per fold its rows, actual values,
        forecasts and scores (MAE, RMSE, MASE with the fold's own in-sample naive scale, sMAPE,
        and interval scores for quantile forecasts); ``overall`` averages each score over the
        folds (and ``overall_per_target``, with several targets, each target's).
    """
    v = np.asarray(values, np.float64)
    v = v.reshape(len(v), -1)
    K = targets
    out_folds = []
    for fold in folds:
        history = v[fold.train].copy()  # a copy: nothing a forecaster does reaches the data
        actual = v[fold.test, :K]  # (H, K)
        H = len(actual)
        m = period if period and len(history) > period + 1 else 1
        scales = [naive_scale(history[:, k], m) for k in range(K)]
        stds = [float(np.std(history[:, k])) or 1.0 for k in range(K)]
        rec: dict[str, Any] = {
            "fold": fold.index,
            "train": [fold.train.start, fold.train.stop],
            "test": [fold.test.start, fold.test.stop],
            "actual": actual[:, 0].tolist(),
            "forecasts": {},
            "quantiles": {},
            "scores": {},
        }
        per: list[dict[str, Any]] = [{} for _ in range(K)]
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
            point = np.asarray(point, np.float64).reshape(H, K)
            q = None if quant is None else np.asarray(quant, np.float64).reshape(H, K, -1)
            for k in range(K):
                sc = point_scores(point[None, :, k], actual[None, :, k], scales[k])
                if q is not None:
                    iv = interval_scores(q[None, :, k], levels, actual[None, :, k])
                    sc.update(_interval_columns(iv))
                per[k][name] = sc
            if q is not None:
                rec["quantiles"][name] = q[:, 0].tolist()
            rec["forecasts"][name] = point[:, 0].tolist()
            rec["scores"][name] = per[0][name] if K == 1 else _combine(
                [p[name] for p in per], stds)
        if K > 1:
            rec["per_target"] = per
        out_folds.append(rec)
    out = {"folds": out_folds, "overall": _overall(out_folds)}
    if K > 1:
        out["overall_per_target"] = [
            _overall([{"scores": f["per_target"][k]} for f in out_folds]) for k in range(K)]
    return out


def _combine(per: list[dict[str, float]], stds: list[float]) -> dict[str, float]:
    """Several targets' scores as one: unit-free ones averaged, the others in standard
    deviations of each target first."""
    free = ("mase", "smape")
    return {k: float(np.mean([p[k] if k in free or k.startswith("coverage") else p[k] / s
                              for p, s in zip(per, stds)])) for k in per[0]}


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
