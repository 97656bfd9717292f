"""Metrics: plain floats for reporting (no gradients). Shapes follow ``rnnkit.losses``.

Every metric takes ``(predictions, targets, mask=None)``; ``mask`` is a boolean ``(B, T)`` for
sequence predictions ``(B, T, ...)`` and drops padded steps from the mean.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .registry import lookup

MetricFn = Callable[..., float]

__all__ = ["METRICS", "accuracy", "get_metric", "mae", "mape", "mse", "rmse"]


def _step_mask(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(mask).astype(bool)
    if len(shape) < 2 or m.shape != shape[:2]:
        raise ValueError(f"mask: expected shape (B, T) = {shape[:2]}, got {m.shape}")
    if not m.any():
        raise ValueError("mask: every step is masked, so the metric is undefined")
    return m


def _pairs(
    predictions: np.ndarray, targets: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Unmasked ``(prediction, target)`` values, flattened, in float64."""
    p = np.asarray(predictions, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    if t.shape != p.shape:
        if p.shape[-1:] == (1,) and t.shape == p.shape[:-1]:
            t = t[..., None]
        else:
            raise ValueError(
                f"targets: expected shape {p.shape} to match predictions, got {t.shape}"
            )
    m = _step_mask(mask, p.shape)
    if m is not None:
        keep = np.broadcast_to(m.reshape(m.shape + (1,) * (p.ndim - 2)), p.shape)
        p, t = p[keep], t[keep]
    if p.size == 0:
        raise ValueError("predictions: expected a non-empty array")
    return p.ravel(), t.ravel()


def accuracy(
    logits_or_labels: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None
) -> float:
    """Fraction of correct predictions, in [0, 1].

    The predicted class is read from ``logits_or_labels`` as follows:

    - shape ``targets.shape + (C,)``: ``argmax(logits, -1)`` against integer labels;
    - same shape as ``targets``, integer dtype: predicted labels, compared directly;
    - same shape, float, last axis ``C > 1``: one-hot / probability targets, ``argmax`` of both;
    - same shape, float, otherwise: binary logits, predicted ``logit > 0`` vs ``target >= 0.5``.
    """
    p = np.asarray(logits_or_labels)
    t = np.asarray(targets)
    if p.shape == t.shape + p.shape[-1:] and p.ndim == t.ndim + 1:
        pred, true = p.argmax(axis=-1), t
    elif p.shape != t.shape:
        raise ValueError(
            f"targets: expected shape {p.shape} or {p.shape[:-1]} to match predictions, "
            f"got {t.shape}"
        )
    elif np.issubdtype(p.dtype, np.integer):
        pred, true = p, t
    elif p.ndim >= 2 and p.shape[-1] > 1:
        pred, true = p.argmax(axis=-1), t.argmax(axis=-1)
    else:
        pred, true = p > 0, t >= 0.5
    correct = pred == true
    m = _step_mask(mask, p.shape)
    if m is not None:
        correct = correct.reshape((*m.shape, -1))[m]
    if correct.size == 0:
        raise ValueError("targets: expected a non-empty array")
    return float(np.mean(correct))


def mse(predictions: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared error ``mean((p - t)**2)``."""
    p, t = _pairs(predictions, targets, mask)
    return float(np.mean((p - t) ** 2))


def rmse(predictions: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Root mean squared error ``sqrt(mean((p - t)**2))``, in the targets' units."""
    return float(np.sqrt(mse(predictions, targets, mask)))


def mae(predictions: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute error ``mean(|p - t|)``."""
    p, t = _pairs(predictions, targets, mask)
    return float(np.mean(np.abs(p - t)))


def mape(predictions: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute percentage error ``100 * mean(|p - t| / |t|)``, in percent.

    Elements whose target is exactly zero are excluded (their percentage error is undefined).

    Raises:
        ValueError: when every (unmasked) target is zero.
    """
    p, t = _pairs(predictions, targets, mask)
    nonzero = t != 0
    if not nonzero.any():
        raise ValueError("targets: every target is zero, so the percentage error is undefined")
    return float(100.0 * np.mean(np.abs(p[nonzero] - t[nonzero]) / np.abs(t[nonzero])))


METRICS: dict[str, MetricFn] = {
    "accuracy": accuracy,
    "mse": mse,
    "rmse": rmse,
    "mae": mae,
    "mape": mape,
}


def get_metric(metric: str | MetricFn) -> MetricFn:
    """Returns the metric named ``metric`` (a callable is returned as is).

    Raises:
        ValueError: for an unknown name; the message lists the known ones.
    """
    return lookup(METRICS, metric, "metric")
