"""Forecasting windows, a chronological split and a scaler for series.

A series of N steps becomes ``N - window - horizon + 1`` training pairs: ``X[i]`` is the
look-back ``values[i : i + window]`` and ``y[i]`` the next ``horizon`` target values.

To keep the future out of training, split the *series* first (``chronological_split``), fit
the ``Scaler`` on the training part only, then window each part. Splitting the windows
instead lets the last training targets overlap the first validation targets when
``horizon > 1``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.data.series_windows import BLOCK_ROWS, column_sum
from rnnkit.errors import DataError


def check_finite(v: np.ndarray, offset: int = 0, what: str = "make_windows: values",
                 fix: str = "fill missing values first (see fill_missing)") -> None:
    """Raise ``DataError`` at ``v``'s first non-finite entry (2-D), named by its row (counted
    from ``offset``: ``v`` may be a block of a longer array) and column."""
    bad = ~np.isfinite(v)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(f"{what}[{offset + r}, {c}] is {v[r, c]}; {fix}")


def make_windows(
    values: np.ndarray, *, window: int, horizon: int = 1, target_col: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Cut a series into look-back windows and the values that follow them.

    Args:
        values: ``(N,)`` or ``(N, F)`` series, rows in time order, no NaN.
        window: look-back length W (time steps per input).
        horizon: forecast length H (future target values per window).
        target_col: which column of ``values`` is forecast.

    Returns:
        ``(X, y)``: ``X`` ``(N - W - H + 1, W, F)`` with ``F = 1`` for a 1-D series, and
        ``y`` ``(N - W - H + 1, H)``, where ``y[i, h] = values[i + W + h, target_col]``.
        Floating inputs keep their dtype; other inputs become float64. Copies, not views.

    Raises:
        DataError: ``window`` or ``horizon`` below 1, ``window + horizon`` longer than the
            series, ``target_col`` out of range, or a NaN/inf in ``values``.
    """
    v = np.asarray(values)
    if not np.issubdtype(v.dtype, np.floating):
        v = v.astype(np.float64)
    if v.ndim == 1:
        v = v[:, None]
    if v.ndim != 2:
        raise DataError(f"make_windows: expected values of shape (N,) or (N, F), got {v.shape}")
    for arg, val in (("window", window), ("horizon", horizon)):
        if int(val) != val or val < 1:
            raise DataError(f"make_windows: expected {arg} >= 1, got {val!r}")
    n, f = v.shape
    if window + horizon > n:
        raise DataError(
            f"make_windows: window + horizon = {window} + {horizon} = {window + horizon} is "
            f"longer than the series ({n} rows)"
        )
    if not -f <= target_col < f:
        raise DataError(f"make_windows: target_col {target_col} is out of range for {f} column(s)")
    check_finite(v)
    count = n - window - horizon + 1
    starts = np.arange(count)[:, None]
    X = v[starts + np.arange(window)]  # (count, W, F)
    y = v[starts + window + np.arange(horizon), target_col]  # (count, H)
    return X, y


def chronological_split(
    n: int, *, val: float = 0.1, test: float = 0.2
) -> tuple[slice, slice, slice]:
    """Split ``n`` rows in time order into train, validation and test slices.

    The test part is the last ``round(n * test)`` rows, validation the ``round(n * val)``
    rows before it, training the rest. Nothing is shuffled.

    Args:
        n: number of rows (of the series or of the windows).
        val: fraction for validation, in ``[0, 1)``; 0 gives an empty validation slice.
        test: fraction for test, in ``[0, 1)``; 0 gives an empty test slice.

    Returns:
        ``(train, val, test)`` slices that cover ``range(n)`` in order.

    Raises:
        DataError: a fraction out of range, or a part that was asked for comes out empty.
    """
    for arg, frac in (("val", val), ("test", test)):
        if not 0.0 <= frac < 1.0:
            raise DataError(f"chronological_split: expected 0 <= {arg} < 1, got {frac!r}")
    n_test, n_val = round(n * test), round(n * val)
    n_train = n - n_val - n_test
    for arg, frac, size in (("val", val, n_val), ("test", test, n_test), ("train", 1, n_train)):
        if frac > 0 and size < 1:
            raise DataError(
                f"chronological_split: the {arg} part of n={n} rows is empty "
                f"(val={val}, test={test}); use more rows or other fractions"
            )
    return slice(0, n_train), slice(n_train, n_train + n_val), slice(n_train + n_val, n)


#: the largest magnitude a scaler accepts: squared errors of such values stay finite in float64
MAX_ABS = 1e150


class Scaler:
    """Standardise each column to zero mean and unit variance, learned on training data.

    ``transform`` computes ``(x - mean_) / scale_`` over the last axis, so a ``(N, F)`` series
    and ``(B, W, F)`` windows both work. A constant column gets ``scale_ = 1`` (it would
    divide by zero otherwise) and maps to 0.

    Attributes:
        mean_: ``(F,)`` column means, set by ``fit``.
        scale_: ``(F,)`` column standard deviations (population, ``ddof=0``).
    """

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    def fit(self, values: np.ndarray) -> Scaler:
        """Learn column means and scales from ``values`` ``(N,)`` or ``(N, F)``; returns self."""
        v = np.asarray(values, dtype=np.float64)
        v2 = v.reshape(-1, 1) if v.ndim == 1 else v.reshape(-1, v.shape[-1])
        n = len(v2)
        blocks = range(0, n, BLOCK_ROWS)  # a long series (a memory map) a block at a time
        bad = sum(np.count_nonzero(~np.isfinite(v2[i : i + BLOCK_ROWS])) for i in blocks)
        if n == 0 or bad:
            raise DataError(
                f"Scaler.fit: expected finite values with at least one row, "
                f"got shape {v.shape} with {bad} "
                "non-finite"
            )
        for i0 in blocks:
            big = np.abs(v2[i0 : i0 + BLOCK_ROWS]) > MAX_ABS
            if big.any():
                i, j = np.argwhere(big)[0]
                raise DataError(
                    f"Scaler.fit: value {v2[i0 + i, j]:.6g} (row {i0 + i}, column {j}) is too "
                    f"large: rnnkit squares errors in float64, so values beyond ±{MAX_ABS:.0e} "
                    "are refused; divide the column by a large power of ten first"
                )
        if n <= BLOCK_ROWS or not v2.flags.c_contiguous:
            self.mean_ = v2.mean(axis=0)
            std = v2.std(axis=0)
        else:  # NumPy's mean and std, summed a block at a time (equal bit for bit)
            one = v2.shape[1] == 1
            self.mean_ = column_sum(lambda lo, hi: v2[lo:hi], n, one) / n
            sq = column_sum(lambda lo, hi: _squared(v2[lo:hi] - self.mean_), n, one)
            std = np.sqrt(sq / n)
        self.scale_ = np.where(std > 0, std, 1.0)
        return self

    def transform(self, values: np.ndarray, *, column: int | None = None) -> np.ndarray:
        """Scale ``values``; with ``column``, scale every entry by that one column's stats.

        ``column`` is for arrays of target values only, such as ``y`` ``(N, H)``.
        """
        mean, scale = self._stats(values, column)
        v = np.asarray(values)
        big = np.abs(v) > MAX_ABS  # NaN compares False: missing values are not called large
        if big.any():
            raise DataError(
                f"Scaler.transform: value {v[tuple(np.argwhere(big)[0])]:.6g} is too large: "
                f"values beyond ±{MAX_ABS:.0e} are refused (their squared errors overflow)"
            )
        return (v - mean) / scale

    def inverse_transform(self, values: np.ndarray, *, column: int | None = None) -> np.ndarray:
        """Undo ``transform``; use ``column=target_col`` on forecasts ``(N, H)``."""
        mean, scale = self._stats(values, column)
        return np.asarray(values) * scale + mean

    def to_dict(self) -> dict[str, Any]:
        """JSON-able state: ``{"mean": [...], "scale": [...]}``."""
        mean, scale = self._fitted()
        return {"mean": mean.tolist(), "scale": scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scaler:
        """Rebuild a fitted scaler from ``to_dict()`` output."""
        try:
            mean = np.asarray(d["mean"], dtype=np.float64).reshape(-1)
            scale = np.asarray(d["scale"], dtype=np.float64).reshape(-1)
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(
                f"Scaler.from_dict: expected lists 'mean' and 'scale', got {d!r}"
            ) from e
        if mean.shape != scale.shape or not (np.isfinite(scale).all() and (scale > 0).all()):
            raise DataError(
                "Scaler.from_dict: expected 'mean' and 'scale' of one length "
                f"with positive scales, got {d!r}"
            )
        s = cls()
        s.mean_, s.scale_ = mean, scale
        return s

    def _fitted(self) -> tuple[np.ndarray, np.ndarray]:
        if self.mean_ is None or self.scale_ is None:
            raise DataError("Scaler is not fitted: call fit(train_values) first")
        return self.mean_, self.scale_

    def _stats(self, values: np.ndarray, column: int | None) -> tuple[Any, Any]:
        mean, scale = self._fitted()
        if column is not None:
            if not -len(mean) <= column < len(mean):
                raise DataError(
                    f"Scaler: column {column} is out of range for {len(mean)} fitted column(s)"
                )
            return mean[column], scale[column]
        shape = np.shape(values)
        if len(shape) <= 1 and len(mean) == 1:
            return mean[0], scale[0]
        if len(shape) <= 1 or shape[-1] != len(mean):
            raise DataError(
                f"Scaler: fitted on {len(mean)} column(s), got values of shape "
                f"{shape}; pass column= to scale target values"
            )
        return mean, scale


def _squared(d: np.ndarray) -> np.ndarray:
    return np.multiply(d, d, out=d)  # as np.std squares the deviations
