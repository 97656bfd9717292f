"""ETS and ARIMA baselines from statsmodels (the ``stats`` extra), fitted on one history.

Fixed, common specifications rather than a search, so a backtest stays fast and its baselines
are the ones a forecaster would try first (Hyndman & Athanasopoulos, *Forecasting: Principles
and Practice*, 3rd ed., ch. 8-9):

- ETS: additive damped trend; additive seasonality when a period is known and the history
  holds two full seasons.
- ARIMA(1,1,1); with a period up to 24 and three seasons of history, seasonal (0,1,1)
  (the "airline model" family). Weekly seasonality (52) is left out: its state space model
  takes minutes per fit.

statsmodels' convergence warnings are silenced; a fit that fails raises ``DataError``.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np

from rnnkit.errors import DataError

MAX_SEASONAL_ARIMA_PERIOD = 24


def available() -> bool:
    """True when statsmodels can be imported."""
    return importlib.util.find_spec("statsmodels") is not None


def _require() -> None:
    if not available():
        raise DataError("ETS and ARIMA baselines need statsmodels: pip install 'rnnkit[stats]'")


def ets_forecast(history: np.ndarray, horizon: int, period: int | None = None) -> np.ndarray:
    """``horizon`` forecasts ``(H,)`` of exponential smoothing fitted to ``history`` ``(L,)``."""
    _require()
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    h = np.asarray(history, np.float64)
    seasonal = period is not None and period > 1 and len(h) >= 2 * period
    model = ExponentialSmoothing(
        h,
        trend="add",
        damped_trend=True,
        seasonal="add" if seasonal else None,
        seasonal_periods=period if seasonal else None,
        initialization_method="estimated",
    )
    return _forecast(model, horizon, "ETS")


def arima_forecast(history: np.ndarray, horizon: int, period: int | None = None) -> np.ndarray:
    """``horizon`` forecasts ``(H,)`` of an ARIMA model fitted to ``history`` ``(L,)``."""
    _require()
    from statsmodels.tsa.arima.model import ARIMA

    h = np.asarray(history, np.float64)
    seasonal = (
        period is not None and 1 < period <= MAX_SEASONAL_ARIMA_PERIOD and len(h) >= 3 * period
    )
    model = ARIMA(h, order=(1, 1, 1), seasonal_order=(0, 1, 1, period) if seasonal else None)
    return _forecast(model, horizon, "ARIMA")


def _forecast(model: object, horizon: int, name: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning, frequency notes: not the user's
        try:
            fit = model.fit()  # type: ignore[attr-defined]
            out = np.asarray(fit.forecast(horizon), np.float64)
        except (ValueError, np.linalg.LinAlgError) as e:
            raise DataError(f"{name} baseline: statsmodels could not fit it: {e}") from None
    if out.shape != (horizon,) or not np.isfinite(out).all():
        raise DataError(f"{name} baseline: statsmodels returned no finite forecast")
    return out
