"""Forecast accuracy, point and probabilistic, in the data's own units (plain floats).

Forecasts and actuals are ``(N, H)``: N forecast origins, H steps ahead each. Point scores
(``point_scores``) follow Hyndman & Koehler (2006): MASE divides the MAE by the in-sample MAE
of the (seasonal) naive forecast on the training part, so below 1 beats it on average. sMAPE
is the M4 competition's, in percent. Interval scores take quantile forecasts ``(N, H, Q)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.data.series_windows import column_sum
from rnnkit.errors import DataError

POINT = ("mae", "rmse", "mase", "smape")


def naive_scale(history: np.ndarray, period: int = 1) -> float:
    """In-sample MAE of the seasonal naive forecast on ``history`` ``(N,)``: the MASE scale,
    ``mean(|y[t] - y[t - period]|)``; 1-step naive when ``period`` is 1.

    Raises:
        DataError: ``history`` not longer than ``period``, or a constant series (scale 0).
    """
    h = np.asarray(history, dtype=np.float64).reshape(-1)
    if period < 1 or len(h) <= period:
        raise DataError(
            f"naive_scale: the MASE scale needs more than period={period} values, got {len(h)}"
        )
    n = len(h) - period  # a long history a block at a time, summed as np.mean sums it
    scale = float(column_sum(lambda lo, hi: np.abs(h[period + lo : period + hi] - h[lo:hi]),
                             n, True) / n)
    if not scale > 0:
        raise DataError("naive_scale: the training values do not change, so MASE is undefined")
    return scale


def smape(pred: np.ndarray, actual: np.ndarray) -> float:
    """``100 * mean(2 |f - y| / (|f| + |y|))``; a pair of zeros counts as 0, not 0/0."""
    p, a = np.asarray(pred, np.float64), np.asarray(actual, np.float64)
    den = np.abs(p) + np.abs(a)
    ratio = np.divide(2 * np.abs(p - a), den, out=np.zeros_like(den), where=den > 0)
    return float(100 * ratio.mean())


def point_scores(pred: np.ndarray, actual: np.ndarray, scale: float) -> dict[str, float]:
    """MAE, RMSE, MASE (MAE / ``scale``, see ``naive_scale``) and sMAPE of ``pred``."""
    p, a = np.asarray(pred, np.float64), np.asarray(actual, np.float64)
    if p.shape != a.shape or p.size == 0:
        raise DataError(f"point_scores: forecasts {p.shape} and actuals {a.shape} must match")
    mae = float(np.mean(np.abs(p - a)))
    return {
        "mae": mae,
        "rmse": float(np.sqrt(np.mean((p - a) ** 2))),
        "mase": mae / scale,
        "smape": smape(p, a),
    }


def per_step(pred: np.ndarray, actual: np.ndarray) -> dict[str, list[float]]:
    """MAE and RMSE at each step ahead: lists of H values for ``(N, H)`` forecasts."""
    d = np.asarray(pred, np.float64) - np.asarray(actual, np.float64)
    return {
        "mae": np.mean(np.abs(d), axis=0).tolist(),
        "rmse": np.sqrt(np.mean(d * d, axis=0)).tolist(),
    }


def interval_scores(
    quantiles: np.ndarray, levels: Any, actual: np.ndarray
) -> dict[str, Any]:
    """Probabilistic scores of quantile forecasts ``(N, H, Q)`` at ``levels`` ``(Q,)``.

    Returns ``pinball`` (mean over levels, steps and origins), ``crps`` (approximated as
    twice the mean pinball loss over the levels, exact as the levels fill (0, 1); Gneiting &
    Raftery 2007) and, for each central interval made by levels ``q`` and ``1 - q``, its
    nominal coverage, empirical ``coverage`` and mean ``width``.
    """
    qf = np.asarray(quantiles, np.float64)
    lv = np.asarray(levels, np.float64)
    a = np.asarray(actual, np.float64)
    if qf.shape != (*a.shape, len(lv)):
        raise DataError(
            f"interval_scores: expected quantile forecasts {(*a.shape, len(lv))}, got {qf.shape}"
        )
    d = a[..., None] - qf
    loss = np.maximum(lv * d, (lv - 1) * d)  # (N, H, Q)
    out: dict[str, Any] = {"pinball": float(loss.mean()), "crps": float(2 * loss.mean()),
                           "intervals": []}
    for j, q in enumerate(lv):
        k = np.flatnonzero(np.isclose(lv, 1 - q))
        if q >= 0.5 or not len(k):
            continue
        lo, hi = qf[..., j], qf[..., k[0]]
        out["intervals"].append({
            "nominal": round(float(1 - 2 * q), 6),
            "coverage": float(np.mean((a >= lo) & (a <= hi))),
            "width": float(np.mean(hi - lo)),
        })
    return out


def gaussian_quantiles(mean: np.ndarray, sigma: np.ndarray, levels: Any) -> np.ndarray:
    """Quantiles ``(..., Q)`` of normal distributions with ``mean`` and ``sigma`` ``(...)``."""
    from statistics import NormalDist

    z = np.array([NormalDist().inv_cdf(float(q)) for q in np.asarray(levels).reshape(-1)])
    return np.asarray(mean)[..., None] + np.asarray(sigma)[..., None] * z


def crps_gaussian(mean: np.ndarray, sigma: np.ndarray, actual: np.ndarray) -> float:
    """Exact mean CRPS of normal forecasts (Gneiting et al. 2005):
    ``sigma * (z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi))`` with ``z = (y - mean) / sigma``."""
    from math import erf, sqrt

    m, s, a = (np.asarray(v, np.float64) for v in (mean, sigma, actual))
    z = (a - m) / s
    cdf = 0.5 * (1 + np.vectorize(erf)(z / sqrt(2)))
    pdf = np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    return float(np.mean(s * (z * (2 * cdf - 1) + 2 * pdf - 1 / np.sqrt(np.pi))))
