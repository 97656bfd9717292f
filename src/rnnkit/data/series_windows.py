"""Forecast windows cut from a series on demand, and column sums read a block at a time.

``make_windows`` and ``forecast_windows`` copy every window: ``N`` rows become ``N * W`` rows,
which for a long series is far more than the series. ``SeriesWindows`` keeps the series (an
array or a memory map, unscaled) and the scaler's statistics; ``rows(lo, hi, ...)`` is a
``WindowRows``, an array-like of windows ``lo .. hi - 1`` that builds only the windows it is
asked for: indexing it with an integer array (a batch) returns them as a NumPy array,
slicing it returns another ``WindowRows`` (as slicing a memory map returns a memory map), and
``np.asarray`` builds them all. Every value equals the copied windows' bit for bit: scaling is
elementwise, and the windows are gathers of the scaled rows.

``column_sum`` is ``np.add.reduce(a, axis=0)`` of a long array read ``rows`` at a time, equal
to NumPy's own result bit for bit: NumPy sums one column pairwise (halves rounded down to a
multiple of 8) and several columns row after row, and the blocks follow the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

BLOCK_ROWS = 1 << 16  # rows per block of a column sum: bounds its temporaries


def column_sum(term: Callable[[int, int], np.ndarray], n: int, pairwise: bool,
               rows: int = BLOCK_ROWS) -> np.ndarray:
    """``np.add.reduce(A, axis=0)`` where ``term(lo, hi)`` is ``A[lo:hi]`` (contiguous,
    ``(m,)`` or ``(m, F)``); ``pairwise`` for one column, as NumPy sums it."""
    if pairwise:
        def half(lo: int, m: int) -> np.ndarray:
            if m <= rows:
                return np.add.reduce(term(lo, lo + m), axis=0)
            m2 = m // 2
            m2 -= m2 % 8
            return half(lo, m2) + half(lo + m2, m - m2)

        return half(0, n)
    acc = None
    for lo in range(0, n, rows):
        block = term(lo, min(n, lo + rows))
        acc = np.add.reduce(block if acc is None else np.concatenate([acc[None], block]), axis=0)
    return acc


def relative(X: np.ndarray, K: int, W: int) -> np.ndarray:
    """The targets of windows ``X`` as change from the window's last value: the model then
    learns the shape of the recent past, not its level, and a trend cannot take it out of
    range."""
    out = X.copy()
    out[:, :W, :K] -= X[:, W - 1 : W, :K]
    return out


class SeriesWindows:
    """The forecast windows of a series ``values (N, F)`` (see ``covariates.forecast_windows``
    for their layout), scaled by ``(mean, scale)`` as they are cut.

    Args:
        values: ``(N, F)`` unscaled rows, targets first (an array or a memory map).
        mean, scale: ``(F,)`` the scaler's statistics.
        window, horizon, targets: W, H and K.
        inputs: the columns of ``values`` the windows read (targets and past covariates).
        known: ``(N, C)`` scaled known-future covariates, or ``None``.
        relative: the model's windows and targets relative to each window's last value.
        first_step: the model's targets are the first step of each target (a recursive
            forecaster's).
    """

    def __init__(self, values: Any, mean: np.ndarray, scale: np.ndarray, *, window: int,
                 horizon: int, targets: int, inputs: int, known: np.ndarray | None = None,
                 relative: bool = False, first_step: bool = False) -> None:
        self.values, self.known = values, known
        self.mean, self.scale = np.asarray(mean)[:inputs], np.asarray(scale)[:inputs]
        self.W, self.H, self.K, self.inputs = window, horizon, targets, inputs
        self.relative, self.first_step = relative, first_step
        self.count = len(values) - window - horizon + 1

    def spec(self) -> dict[str, Any]:
        """Everything but the arrays, as JSON (``from_spec`` rebuilds it)."""
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "window": self.W,
                "horizon": self.H, "targets": self.K, "inputs": self.inputs,
                "relative": self.relative, "first_step": self.first_step}

    @classmethod
    def from_spec(cls, spec: dict[str, Any], values: Any, known: Any) -> SeriesWindows:
        return cls(values, np.asarray(spec["mean"], np.float64),
                   np.asarray(spec["scale"], np.float64), window=int(spec["window"]),
                   horizon=int(spec["horizon"]), targets=int(spec["targets"]),
                   inputs=int(spec["inputs"]), known=known, relative=bool(spec["relative"]),
                   first_step=bool(spec["first_step"]))

    def rows(self, lo: int, hi: int, what: str, model: bool = True) -> WindowRows:
        """Windows ``lo .. hi - 1``: their inputs (``what="X"``) or targets (``"y"``), as
        the model trains on them (``model``) or as they are (``False``: for scoring)."""
        return WindowRows(self, lo, max(lo, hi), what, model)

    def scaled(self, starts: np.ndarray, steps: int, offset: int = 0) -> np.ndarray:
        """``(n, steps, inputs)`` the scaled rows ``start + offset ..`` of each start."""
        at = starts[:, None] + offset + np.arange(steps)
        return (self.values[at][..., : self.inputs] - self.mean) / self.scale

    def windows(self, starts: np.ndarray, what: str, model: bool) -> np.ndarray:
        W, H, K = self.W, self.H, self.K
        if what == "y":
            y = self.scaled(starts, H, W)[:, :, :K].transpose(0, 2, 1).reshape(len(starts), K * H)
            if model and self.relative:  # the targets less each window's last value
                y = y - np.repeat(self.scaled(starts, 1, W - 1)[:, 0, :K], H, axis=1)
            if model and self.first_step:
                y = y.reshape(len(y), K, H)[:, :, 0]
            return y  # (n, K*H), or (n, K)
        X = self.scaled(starts, W)  # (n, W, P)
        if self.known is not None:
            n = len(starts)
            at = starts[:, None] + np.arange(W + H)
            cov = np.asarray(self.known[at], dtype=X.dtype)  # (n, W + H, C)
            past = np.concatenate([X, cov[:, :W], np.zeros((n, W, 1), X.dtype)], axis=2)
            future = np.concatenate([np.zeros((n, H, X.shape[2]), X.dtype), cov[:, W:],
                                     np.ones((n, H, 1), X.dtype)], axis=2)
            X = np.concatenate([past, future], axis=1)  # (n, W + H, P + C + 1)
        return relative(X, K, W) if model and self.relative else X

    def shape(self, n: int, what: str, model: bool) -> tuple[int, ...]:
        if what == "y":
            return (n, self.K if model and self.first_step else self.K * self.H)
        if self.known is None:
            return (n, self.W, self.inputs)
        return (n, self.W + self.H, self.inputs + int(self.known.shape[1]) + 1)


class WindowRows:
    """Windows ``lo .. hi - 1`` of a ``SeriesWindows``, built when indexed (see the module
    docstring): an integer or an integer array gives a NumPy array, a slice another
    ``WindowRows``."""

    def __init__(self, src: SeriesWindows, lo: int, hi: int, what: str, model: bool) -> None:
        self.src, self.lo, self.hi, self.what, self.model = src, lo, hi, what, model
        self.dtype = np.dtype(np.float64)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.src.shape(self.hi - self.lo, self.what, self.model)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        """What ``np.asarray`` of these windows would take."""
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.hi - self.lo

    def __getitem__(self, key: Any) -> Any:
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(first, slice) and not rest:
            start, stop, step = first.indices(len(self))
            if step == 1:
                return WindowRows(self.src, self.lo + start, self.lo + max(start, stop),
                                  self.what, self.model)
        if isinstance(first, (int, np.integer)):
            return self.take(self._positions([first]))[0][rest]
        return self.take(self._positions(first))[(slice(None), *rest)]

    def _positions(self, key: Any) -> np.ndarray:
        """Integer positions of ``key`` (integers, negative from the end, a boolean mask or a
        slice), checked as NumPy checks an index."""
        n = len(self)
        if isinstance(key, slice):
            return np.arange(*key.indices(n))
        idx = np.asarray(key)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise IndexError(f"boolean index of shape {idx.shape} for {n} windows")
            return np.flatnonzero(idx)
        if idx.dtype.kind not in "iu":
            raise IndexError(f"windows are indexed by integers, got {idx.dtype}")
        idx = np.where(idx < 0, idx + n, idx).astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"index out of range for {n} windows")
        return idx

    def take(self, idx: np.ndarray) -> np.ndarray:
        """The windows at positions ``idx`` (an integer array) as an array."""
        starts = self.lo + np.asarray(idx, np.int64).reshape(-1)
        return self.src.windows(starts, self.what, self.model)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.take(np.arange(len(self)))
        return a if dtype is None else a.astype(dtype, copy=False)
