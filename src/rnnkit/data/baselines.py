"""Baselines a model has to beat, as pure NumPy functions.

Forecast baselines take the windows ``X`` ``(N, W, F)`` (or ``(N, W)``) of ``make_windows``
and return forecasts ``(N, H)`` shaped like its ``y``.
"""

from __future__ import annotations

import numpy as np

from rnnkit.errors import DataError


def persistence_forecast(X: np.ndarray, horizon: int = 1, target_col: int = 0) -> np.ndarray:
    """The last observed value, repeated: ``y_hat[i, h] = X[i, -1, target_col]``.

    Args:
        X: windows ``(N, W, F)`` or ``(N, W)``.
        horizon: H, forecast steps.
        target_col: the column being forecast.

    Returns:
        ``(N, H)`` forecasts.
    """
    x = _target(X, target_col, "persistence_forecast")
    _check_horizon(horizon, "persistence_forecast")
    return np.repeat(x[:, -1:], horizon, axis=1)


def seasonal_naive_forecast(
    X: np.ndarray, period: int, horizon: int = 1, target_col: int = 0
) -> np.ndarray:
    """The value one season earlier: step ``h`` (0-based) repeats window position
    ``W - period + h % period``, so forecasts cycle through the last observed season.

    Args:
        X: windows ``(N, W, F)`` or ``(N, W)`` with ``W >= period``.
        period: the seasonal period in steps (12 monthly, 52 weekly).
        horizon: H, forecast steps.
        target_col: the column being forecast.

    Returns:
        ``(N, H)`` forecasts.

    Raises:
        DataError: ``period < 1`` or a window shorter than one period.
    """
    x = _target(X, target_col, "seasonal_naive_forecast")
    _check_horizon(horizon, "seasonal_naive_forecast")
    w = x.shape[1]
    if period < 1 or period > w:
        raise DataError(
            f"seasonal_naive_forecast: expected 1 <= period <= window ({w}), got period {period}"
        )
    return x[:, w - period + np.arange(horizon) % period]


def drift_forecast(X: np.ndarray, horizon: int = 1, target_col: int = 0) -> np.ndarray:
    """The line from the window's first to its last value, extended (Hyndman's drift):
    ``y_hat[i, h] = last + (h + 1) * (last - first) / (W - 1)``; persistence when ``W = 1``.

    Args:
        X: windows ``(N, W, F)`` or ``(N, W)`` (a whole history as ``history[None]``).
        horizon: H, forecast steps.
        target_col: the column being forecast.

    Returns:
        ``(N, H)`` forecasts.
    """
    x = _target(X, target_col, "drift_forecast")
    _check_horizon(horizon, "drift_forecast")
    w = x.shape[1]
    slope = (x[:, -1:] - x[:, :1]) / max(w - 1, 1)  # (N, 1)
    return x[:, -1:] + slope * np.arange(1, horizon + 1)


def majority_class(y_train: np.ndarray, n: int) -> np.ndarray:
    """Predict the most frequent training label ``n`` times (ties: the smallest label).

    Args:
        y_train: ``(N,)`` training labels.
        n: how many predictions, e.g. ``len(y_test)``.

    Returns:
        ``(n,)`` predictions, all equal, of ``y_train``'s dtype.
    """
    y = np.asarray(y_train).reshape(-1)
    if y.size == 0:
        raise DataError("majority_class: expected at least one training label, got none")
    labels, counts = np.unique(y, return_counts=True)
    return np.full(n, labels[np.argmax(counts)], dtype=y.dtype)


def unigram_bits_per_char(train_ids: np.ndarray, test_ids: np.ndarray, vocab_size: int) -> float:
    """Bits per token of a unigram model with add-one (Laplace) smoothing.

    ``p(v) = (count_train(v) + 1) / (len(train_ids) + V)``, so a token never seen in
    training still has a finite cost; the result is ``-mean(log2 p(test_ids))``. A
    character model that does not beat this has learned nothing beyond letter frequencies.

    Args:
        train_ids: ``(L_train,)`` ids in ``[0, V)``.
        test_ids: ``(L_test,)`` ids in ``[0, V)``, at least one.
        vocab_size: V.

    Returns:
        Bits per character (per token at word level).

    Raises:
        DataError: an id outside ``[0, V)`` or an empty ``test_ids``.
    """
    tr, te = np.asarray(train_ids).reshape(-1), np.asarray(test_ids).reshape(-1)
    if te.size == 0:
        raise DataError("unigram_bits_per_char: expected at least one test id, got none")
    for name, a in (("train_ids", tr), ("test_ids", te)):
        if a.size and (a.min() < 0 or a.max() >= vocab_size):
            raise DataError(
                f"unigram_bits_per_char: {name} must lie in [0, {vocab_size}), "
                f"got {a.min()}..{a.max()}"
            )
    counts = np.bincount(tr.astype(np.int64), minlength=vocab_size)
    p = (counts + 1.0) / (tr.size + vocab_size)
    return float(-np.mean(np.log2(p[te.astype(np.int64)])))


def _target(X: np.ndarray, target_col: int, who: str) -> np.ndarray:
    """The target column of windows, ``(N, W)``."""
    x = np.asarray(X)
    if x.ndim == 3:
        if not -x.shape[2] <= target_col < x.shape[2]:
            raise DataError(
                f"{who}: target_col {target_col} is out of range for {x.shape[2]} feature(s)"
            )
        return x[:, :, target_col]
    if x.ndim == 2:
        return x
    raise DataError(f"{who}: expected windows X of shape (N, W, F) or (N, W), got {x.shape}")


def _check_horizon(horizon: int, who: str) -> None:
    if horizon < 1:
        raise DataError(f"{who}: expected horizon >= 1, got {horizon}")
