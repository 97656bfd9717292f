"""Losses. Each returns ``(value, d_outputs)``: the mean loss as a float and its exact gradient.

Every loss has the signature ``loss(outputs, targets, mask=None)``. Shapes:

- sequence outputs ``(B, T, O)`` with one target per step ``(B, T, ...)``;
- last-step outputs ``(B, O)`` with targets ``(B, ...)``;
- mse/mae/huber/bce targets have the outputs' shape, or omit a trailing ``O = 1`` axis;
- ``mask`` (only with sequence outputs) is a boolean ``(B, T)``: ``False`` marks a padded step,
  which is left out of the sum and of the mean's denominator and gets a zero gradient. Targets
  at padded steps are never read, so padding them with NaN or -1 is fine.

Reductions are PyTorch's defaults (``reduction="mean"``). ``d_outputs`` has the shape and dtype
of ``outputs``; float32 outputs are computed in float32.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .registry import lookup

LossFn = Callable[..., tuple[float, np.ndarray]]

__all__ = [
    "LOSSES",
    "binary_cross_entropy",
    "cross_entropy",
    "gaussian_nll",
    "get_loss",
    "huber",
    "mae",
    "mse",
    "pinball",
    "quantile_loss",
]


def _where(index: tuple[int, ...]) -> str:
    """Formats an array index as ``3`` or ``(1, 2)`` for error messages."""
    if len(index) <= 1:
        return str(int(index[0]) if index else 0)
    return str(tuple(int(i) for i in index))


def _as_outputs(outputs: np.ndarray) -> np.ndarray:
    out = np.asarray(outputs)
    if not np.issubdtype(out.dtype, np.floating):
        out = out.astype(np.float64)
    if out.size == 0:
        raise ValueError(f"outputs: expected a non-empty array, got shape {out.shape}")
    return out


def _as_mask(mask: np.ndarray | None, outputs: np.ndarray) -> np.ndarray | None:
    """Checks a ``(B, T)`` step mask against sequence outputs ``(B, T, O)``."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if outputs.ndim != 3:
        raise ValueError(
            f"mask: only for sequence outputs (B, T, O), got outputs of shape {outputs.shape}"
        )
    if m.shape != outputs.shape[:2]:
        raise ValueError(
            f"mask: expected shape {outputs.shape[:2]} (B, T) to match outputs of shape "
            f"{outputs.shape}, got {m.shape}"
        )
    if m.dtype != bool:
        if not np.isin(m, (0, 1)).all():
            raise ValueError(f"mask: expected booleans (or 0/1), got values of dtype {m.dtype}")
        m = m.astype(bool)
    if not m.any():
        raise ValueError("mask: every step is masked, so the mean loss is undefined")
    return m


def _check_finite(targets: np.ndarray, keep: np.ndarray | None) -> None:
    """Raises on the first NaN/Inf target that is not masked out."""
    bad = ~np.isfinite(targets)
    if keep is not None:
        bad &= keep
    if bad.any():
        index = tuple(np.argwhere(bad)[0])
        raise ValueError(
            f"targets: expected finite values, got {targets[index]} at {_where(index)}"
        )


def _dense_targets(
    outputs: np.ndarray, targets: np.ndarray, mask: np.ndarray | None, fill: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray | None]:
    """Targets shaped like ``outputs`` (a missing trailing ``O = 1`` axis is added).

    Returns the targets in the outputs' dtype and the elementwise keep-mask (or None). Masked
    targets (never read: they may be NaN) are replaced by ``fill``.
    """
    t = np.asarray(targets)
    if t.shape != outputs.shape:
        if outputs.shape[-1] == 1 and t.shape == outputs.shape[:-1]:
            t = t[..., None]
        else:
            raise ValueError(
                f"targets: expected shape {outputs.shape} to match outputs, got {t.shape}"
            )
    if not (np.issubdtype(t.dtype, np.number) or t.dtype == bool):
        raise ValueError(f"targets: expected numbers, got dtype {t.dtype}")
    keep = None if mask is None else np.broadcast_to(mask[..., None], outputs.shape)
    _check_finite(t, keep)
    t = t.astype(outputs.dtype, copy=False)
    if keep is not None:
        t = np.where(keep, t, fill)
    return t, keep


def _mean(per: np.ndarray, d_per: np.ndarray, keep: np.ndarray | None) -> tuple[float, np.ndarray]:
    """``mean(per[keep])`` and its gradient ``d_per * keep / count`` (in place on ``d_per``)."""
    count = per.size if keep is None else int(np.count_nonzero(keep))
    if keep is not None:  # np.where, not a product: padded outputs may hold anything
        per = np.where(keep, per, 0)
        d_per = np.where(keep, d_per, 0)
    np.divide(d_per, count, out=d_per)
    return float(per.sum() / count), d_per


def mse(
    outputs: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Mean squared error, ``torch.nn.MSELoss()``.

    ``d = outputs - targets``; ``value = mean(d**2)``; ``d_outputs = 2 * d / n`` with ``n`` the
    number of elements (with a mask: unmasked steps × O).
    """
    o = _as_outputs(outputs)
    t, keep = _dense_targets(o, targets, _as_mask(mask, o), fill=o)
    d = o - t
    return _mean(d * d, 2 * d, keep)


def mae(
    outputs: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Mean absolute error, ``torch.nn.L1Loss()``.

    ``value = mean(|d|)``; ``d_outputs = sign(d) / n`` (the subgradient at ``d = 0`` is 0, as in
    torch).
    """
    o = _as_outputs(outputs)
    t, keep = _dense_targets(o, targets, _as_mask(mask, o), fill=o)
    d = o - t
    return _mean(np.abs(d), np.sign(d), keep)


def huber(
    outputs: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None, delta: float = 1.0
) -> tuple[float, np.ndarray]:
    """Huber loss, ``torch.nn.HuberLoss(delta=1.0)``.

    ``per = where(|d| < delta, d**2 / 2, delta * (|d| - delta / 2))``; ``value = mean(per)``;
    ``d_outputs = clip(d, -delta, delta) / n``.
    """
    if not delta > 0:
        raise ValueError(f"delta: expected a number > 0, got {delta}")
    o = _as_outputs(outputs)
    t, keep = _dense_targets(o, targets, _as_mask(mask, o), fill=o)
    d = o - t
    a = np.abs(d)
    per = np.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta))
    return _mean(per, np.clip(d, -delta, delta), keep)


def _labels(targets: np.ndarray, classes: int, mask: np.ndarray | None) -> np.ndarray:
    """Integer class labels; masked steps become label 0 and are never checked."""
    t = targets
    if not np.issubdtype(t.dtype, np.integer):
        if not np.issubdtype(t.dtype, np.floating):
            raise ValueError(f"targets: expected integer class labels, got dtype {t.dtype}")
        _check_finite(t, mask)
        frac = (t != np.round(t)) if mask is None else (t != np.round(t)) & mask
        if frac.any():
            index = tuple(np.argwhere(frac)[0])
            raise ValueError(
                f"targets: expected integer class labels, got {t[index]} at sample {_where(index)}"
            )
    t = np.where(mask, t, 0) if mask is not None else t
    t = t.astype(np.intp)
    bad = (t < 0) | (t >= classes)
    if bad.any():
        index = tuple(np.argwhere(bad)[0]) if t.ndim else (0,)
        raise ValueError(
            f"targets: label {t[index] if t.ndim else int(t)} at sample {_where(index)} "
            f"is out of range for {classes} classes"
        )
    return t


def cross_entropy(
    outputs: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy on logits, ``torch.nn.CrossEntropyLoss()`` (fused log-softmax).

    ``outputs`` are logits ``(..., C)``; ``targets`` are integer labels ``(...)`` or
    probabilities / one-hot rows ``(..., C)``. With ``s = z - z.max(-1)``,
    ``logp = s - log(sum(exp(s), -1))`` and ``p = exp(logp)`` (never overflows):

    - labels ``k``: ``per = -logp[..., k]``; ``d_per = p - onehot(k)``;
    - probabilities ``q``: ``per = -sum(q * logp, -1)``; ``d_per = p * sum(q, -1) - q``.

    ``value = mean(per)`` over samples (unmasked steps); ``d_outputs = d_per / n_samples``.
    """
    z = _as_outputs(outputs)
    m = _as_mask(mask, z)
    t = np.asarray(targets)
    shift = z - z.max(axis=-1, keepdims=True)  # (..., C), max 0
    e = np.exp(shift)
    total = e.sum(axis=-1, keepdims=True)  # (..., 1), in [1, C]
    logp = shift - np.log(total)
    grad = np.divide(e, total, out=e)  # softmax
    if t.shape == z.shape[:-1]:
        k = _labels(t, z.shape[-1], m)[..., None]
        per = -np.take_along_axis(logp, k, axis=-1)[..., 0]
        np.put_along_axis(grad, k, np.take_along_axis(grad, k, axis=-1) - 1, axis=-1)
    elif t.shape == z.shape:
        if not np.issubdtype(t.dtype, np.number):
            raise ValueError(f"targets: expected probabilities, got dtype {t.dtype}")
        _check_finite(t, None if m is None else np.broadcast_to(m[..., None], t.shape))
        q = t.astype(z.dtype, copy=False)
        if m is not None:
            q = np.where(m[..., None], q, 0)
        per = -(q * logp).sum(axis=-1)
        grad *= q.sum(axis=-1, keepdims=True)
        grad -= q
    else:
        raise ValueError(
            f"targets: expected labels of shape {z.shape[:-1]} or probabilities of shape "
            f"{z.shape} to match logits {z.shape}, got {t.shape}"
        )
    count = per.size if m is None else int(np.count_nonzero(m))
    if m is not None:
        per = np.where(m, per, 0)
        grad = np.where(m[..., None], grad, 0)
    grad /= count
    return float(per.sum() / count), grad


def binary_cross_entropy(
    outputs: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Binary cross-entropy on logits, ``torch.nn.BCEWithLogitsLoss()``.

    For logit ``z`` and target ``y`` in [0, 1], written so nothing overflows:
    ``per = max(z, 0) - z * y + log1p(exp(-|z|))``; ``d_per = sigmoid(z) - y``;
    ``value = mean(per)``; ``d_outputs = d_per / n``.
    """
    z = _as_outputs(outputs)
    y, keep = _dense_targets(z, targets, _as_mask(mask, z), fill=0.0)
    e = np.exp(-np.abs(z))  # in (0, 1]
    per = np.maximum(z, 0) - z * y + np.log1p(e)
    sig = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
    return _mean(per, sig - y, keep)


def _per_target(outputs: np.ndarray, targets: np.ndarray, mask: np.ndarray | None, k: int,
                who: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Outputs ``(..., K*k)`` as ``(..., K, k)``, targets ``(..., K)`` beside them, and the
    keep-mask ``(..., K)``: the heads of each target sit together, ``k`` per target."""
    o = _as_outputs(outputs)
    m = _as_mask(mask, o)
    t = np.asarray(targets)
    if o.shape[-1] % k or t.shape != (*o.shape[:-1], o.shape[-1] // k):
        if o.shape[-1] == k and t.shape == o.shape[:-1]:
            t = t[..., None]
        else:
            raise ValueError(
                f"{who}: expected targets of shape {o.shape[:-1]} + (K,) for outputs "
                f"{o.shape} = (..., K*{k}), got {t.shape}"
            )
    if not np.issubdtype(t.dtype, np.number):
        raise ValueError(f"targets: expected numbers, got dtype {t.dtype}")
    keep = None if m is None else np.broadcast_to(m[..., None], t.shape)
    _check_finite(t, keep)
    t = t.astype(o.dtype, copy=False)
    o = o.reshape((*t.shape, k))
    if keep is not None:
        t = np.where(keep, t, o[..., 0])
    return o, t, keep


def _check_quantiles(quantiles: object) -> np.ndarray:
    q = np.asarray(quantiles, dtype=np.float64).reshape(-1)
    if q.size == 0 or not ((q > 0) & (q < 1)).all() or (np.diff(q) <= 0).any():
        raise ValueError(
            f"quantiles: expected increasing levels strictly between 0 and 1, got {quantiles!r}"
        )
    return q


def pinball(
    outputs: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray | None = None,
    quantiles: object = (0.1, 0.5, 0.9),
) -> tuple[float, np.ndarray]:
    """Pinball (quantile) loss: ``outputs (..., K*Q)`` holds ``Q`` quantile forecasts of each
    of the ``K`` targets ``(..., K)``, ``outputs[..., k*Q + j]`` for level ``quantiles[j]``.

    ``d = targets - outputs``; ``per = max(q * d, (q - 1) * d)``; ``value = mean(per)`` over
    every output; ``d_outputs = where(d > 0, -q, 1 - q) / n`` (at ``d = 0`` the subgradient
    ``1 - q``). Its minimiser is the ``q``-quantile of the targets' distribution.
    """
    q = _check_quantiles(quantiles)
    o, t, keep = _per_target(outputs, targets, mask, len(q), "pinball")
    qs = q.astype(o.dtype)
    d = t[..., None] - o  # (..., K, Q)
    per = np.maximum(qs * d, (qs - 1) * d)
    grad = np.where(d > 0, -qs, 1 - qs).astype(o.dtype)
    if keep is not None:
        keep = np.broadcast_to(keep[..., None], per.shape)
    value, grad = _mean(per, grad, keep)
    return value, grad.reshape(np.shape(outputs))


def quantile_loss(quantiles: object) -> LossFn:
    """The ``pinball`` loss at fixed ``quantiles``, as a ``loss(outputs, targets, mask)``."""
    q = tuple(float(v) for v in _check_quantiles(quantiles))

    def quantile(outputs: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None
                 ) -> tuple[float, np.ndarray]:
        return pinball(outputs, targets, mask, q)

    return quantile


def softplus(s: np.ndarray) -> np.ndarray:
    """``log(1 + exp(s))`` without overflow: ``max(s, 0) + log1p(exp(-|s|))``."""
    return np.maximum(s, 0) + np.log1p(np.exp(-np.abs(s)))


SCALE_FLOOR = 1e-6  # sigma never reaches 0: the NLL and its gradient stay finite


def gaussian_nll(
    outputs: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Gaussian negative log-likelihood with a mean head and a scale head per target.

    ``outputs (..., 2K)`` holds ``mu = outputs[..., :K]`` and raw scales ``s = outputs[...,
    K:]`` for targets ``(..., K)``; ``sigma = softplus(s) + 1e-6``. With ``r = (y - mu) /
    sigma``: ``per = log(2 pi) / 2 + log(sigma) + r**2 / 2``; ``value = mean(per)`` over the
    K targets; ``d_mu = -r / sigma / n``; ``d_s = (1 - r**2) / sigma * sigmoid(s) / n``.
    ``torch.nn.GaussianNLLLoss(full=True)`` with ``var = sigma**2`` gives the same value.
    """
    o = _as_outputs(outputs)
    if o.shape[-1] % 2:
        raise ValueError(
            f"gaussian_nll: expected outputs (..., 2K) (K means, then K scales), got {o.shape}"
        )
    k = o.shape[-1] // 2
    mu, s = o[..., :k], o[..., k:]
    t, keep = _dense_targets(mu, targets, _as_mask(mask, o), fill=mu)
    sigma = softplus(s) + SCALE_FLOOR
    r = (t - mu) / sigma
    per = 0.5 * np.log(2 * np.pi) + np.log(sigma) + 0.5 * r * r
    e = np.exp(-np.abs(s))
    sig = np.where(s >= 0, 1 / (1 + e), e / (1 + e))  # d softplus / ds
    grad = np.concatenate([-r / sigma, (1 - r * r) / sigma * sig], axis=-1)
    n = per.size
    if keep is not None:  # np.where, not a product: padded outputs may hold anything
        n = int(np.count_nonzero(keep))
        per = np.where(keep, per, 0)
        grad = np.where(np.concatenate([keep, keep], axis=-1), grad, 0)
    return float(per.sum() / n), (grad / n).astype(o.dtype, copy=False)


LOSSES: dict[str, LossFn] = {
    "mse": mse,
    "mae": mae,
    "huber": huber,
    "cross_entropy": cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
    "pinball": pinball,
    "gaussian_nll": gaussian_nll,
}


def get_loss(loss: str | LossFn) -> LossFn:
    """Returns the loss function named ``loss`` (a callable is returned as is).

    Raises:
        ValueError: for an unknown name; the message lists the known ones.
    """
    return lookup(LOSSES, loss, "loss", "losses")
