"""Gradient check: backpropagation through time against float64 central differences."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def gradcheck(
    model: Any,
    X: Any,
    y: Any,
    *,
    loss: str | Callable = "mse",
    lengths: Any = None,
    eps: float = 1e-5,
    max_entries: int | None = None,
    seed: int = 0,
    noise: Any = None,
) -> dict[str, float]:
    """Compare every analytic gradient with central differences, in float64.

    The model is copied to float64 first (the original is untouched). For each parameter,
    and for the input ``X`` when it is real-valued, the error reported is::

        max |analytic - numeric| / max(max |analytic|, max |numeric|)

    i.e. the worst entry's error relative to that array's gradient scale (entries whose
    gradient is ~0 would make an entrywise ratio meaningless). Below 1e-7 means the
    hand-derived backward pass is right.

    Args:
        model: a ``Sequential``.
        X, y: a batch and its targets; ``lengths`` for padded batches.
        loss: a loss name or a callable ``(outputs, targets) -> (value, d_outputs)``.
        eps: the finite-difference step.
        max_entries: check at most this many randomly chosen entries per array (all if None).
        seed: chooses those entries.
        noise: an ``rnnkit.noise.Noise``: check the training-time forward with its masks
            (drawn from its key, or its ``given`` ones), the same in every evaluation; None
            (default): the deterministic forward (no dropout, zoneout's expectation).

    Returns:
        ``{"<parameter name>": error, ..., "X": error}``.
    """
    from ..losses import get_loss

    loss_fn = get_loss(loss)
    model.prepare(X, lengths)  # checks X and builds the model if this is its first data
    m = model.copy(np.float64)
    rng = np.random.default_rng(seed)

    def value(inputs: Any) -> float:
        out = m.predict(inputs, lengths) if noise is None else m.forward(inputs, lengths,
                                                                         noise=noise)
        return float(loss_fn(out, y)[0])

    m.zero_grad()
    out = m.forward(X, lengths, noise=noise)
    _, d_out = loss_fn(out, y)
    dX = m.backward(d_out)
    grads = m.gradients()
    errors = {}
    for name, p in m.parameters().items():
        errors[name] = _compare(grads[name], p, lambda: value(X), eps, rng, max_entries)
    Xa = np.asarray(X, dtype=np.float64) if not isinstance(X, list) else None
    if dX is not None and Xa is not None:
        errors["X"] = _compare(dX, Xa, lambda: value(Xa), eps, rng, max_entries)
    return errors


def _compare(analytic, array, value, eps, rng, max_entries) -> float:
    idx = list(np.ndindex(array.shape))
    if max_entries is not None and len(idx) > max_entries:
        idx = [idx[i] for i in rng.choice(len(idx), max_entries, replace=False)]
    numeric = np.zeros_like(array)
    for i in idx:
        orig = array[i]
        array[i] = orig + eps
        plus = value()
        array[i] = orig - eps
        minus = value()
        array[i] = orig
        numeric[i] = (plus - minus) / (2 * eps)
    a = np.array([analytic[i] for i in idx])
    n = np.array([numeric[i] for i in idx])
    scale = max(np.abs(a).max(initial=0), np.abs(n).max(initial=0))
    return 0.0 if scale == 0 else float(np.abs(a - n).max() / scale)
