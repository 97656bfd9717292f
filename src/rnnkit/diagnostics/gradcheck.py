"""Gradient check: backpropagation through time against float64 central differences."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import GradcheckError


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
    tol: float = 1e-6,
    raise_exception: bool = True,
) -> dict[str, float]:
    """Compare every analytic gradient with central differences, in float64.

    The model is copied to float64 first (the original is untouched). For each parameter,
    and for the input ``X`` when it is real-valued (an array, or a list of ``(T_i, D)``
    sequences: every valid step of each), the error reported is::

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
        tol: errors above this raise ``GradcheckError`` (central differences in float64 with
            ``eps = 1e-5`` agree to about 1e-9 with a right gradient).
        raise_exception: ``False`` returns the errors without raising, whatever they are.

    Returns:
        ``{"<parameter name>": error, ..., "X": error}``.

    Raises:
        GradcheckError: an error above ``tol`` (unless ``raise_exception=False``), naming
            every array above it.
    """
    from ..losses import get_loss

    if not (isinstance(tol, (int, float)) and tol > 0):
        raise ValueError(f"gradcheck: tol must be a positive number, got {tol!r}")
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
        errors[name] = _error(*_compare(grads[name], p, lambda: value(X), eps, rng, max_entries))
    if dX is not None:
        if isinstance(X, (list, tuple)):  # dX is padded (B, T_max, D): each sequence's steps
            Xs = [np.array(x, dtype=np.float64) for x in X]
            pairs = [_compare(dX[b, : len(x)], x, lambda: value(Xs), eps, rng, max_entries)
                     for b, x in enumerate(Xs)]
            errors["X"] = _error(*(np.concatenate(v) for v in zip(*pairs)))
        else:
            Xa = np.array(X, dtype=np.float64)
            errors["X"] = _error(*_compare(dX, Xa, lambda: value(Xa), eps, rng, max_entries))
    bad = {k: e for k, e in errors.items() if not e <= tol}
    if bad and raise_exception:
        listed = ", ".join(f"{k} {e:.2e}" for k, e in bad.items())
        raise GradcheckError(f"gradcheck: analytic gradients differ from central differences "
                             f"by more than tol={tol:g}: {listed} (raise_exception=False "
                             f"returns the errors instead)")
    return errors


def _compare(analytic, array, value, eps, rng, max_entries) -> tuple[np.ndarray, np.ndarray]:
    """The analytic and the central-difference gradient at the checked entries of ``array``
    (changed in place and restored)."""
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
    a = np.array([analytic[i] for i in idx], dtype=np.float64)
    n = np.array([numeric[i] for i in idx], dtype=np.float64)
    return a, n


def _error(a: np.ndarray, n: np.ndarray) -> float:
    scale = max(np.abs(a).max(initial=0), np.abs(n).max(initial=0))
    return 0.0 if scale == 0 else float(np.abs(a - n).max() / scale)
