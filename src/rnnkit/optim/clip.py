"""Gradient clipping against exploding gradients (Pascanu, Mikolov & Bengio 2013).

Both functions return the global L2 norm ``sqrt(sum(sum(g**2) for g in grads))`` measured
BEFORE clipping, so a training loop can log it. A non-finite norm is returned as is and the
gradients are left untouched: whether to skip the step is the caller's decision.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["clip_grad_norm", "clip_grad_value", "global_norm"]


def global_norm(grads: dict[str, np.ndarray]) -> float:
    """The L2 norm of all gradients as one vector, accumulated in float64 (as torch: the norm
    of the per-array norms)."""
    # einsum, not a BLAS dot product (np.linalg.norm): OpenBLAS runs one of 10,000 values or
    # more on its threads, which then keep spinning and take the CPUs from rnnkit's own (a
    # training step of an LSTM with H=128 took 2.5× as long after one); float64 sums
    # without a float64 copy of the gradient
    with np.errstate(over="ignore", invalid="ignore"):  # inf/NaN is an answer, not an error
        norms = [math.sqrt(np.einsum("i,i->", v, v, dtype=np.float64))
                 for v in (np.ravel(g) for g in grads.values())]
        return float(np.linalg.norm(norms)) if norms else 0.0


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Rescales all gradients in place when their global norm exceeds ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: ``norm = global_norm(grads)``;
    ``scale = max_norm / (norm + 1e-6)``; if ``scale < 1``: ``g *= scale`` for every ``g``.

    Returns:
        The global norm before clipping.
    """
    if not (max_norm > 0 and math.isfinite(max_norm)):
        raise ValueError(f"max_norm: expected a finite number > 0, got {max_norm}")
    norm = global_norm(grads)
    scale = max_norm / (norm + 1e-6)
    if math.isfinite(norm) and scale < 1:
        for g in grads.values():
            g *= scale
    return norm


def clip_grad_value(grads: dict[str, np.ndarray], clip_value: float) -> float:
    """Clips every gradient element to ``[-clip_value, clip_value]`` in place.

    Returns:
        The global norm before clipping.
    """
    if not (clip_value > 0 and math.isfinite(clip_value)):
        raise ValueError(f"clip_value: expected a finite number > 0, got {clip_value}")
    norm = global_norm(grads)
    if math.isfinite(norm):
        for g in grads.values():
            np.clip(g, -clip_value, clip_value, out=g)
    return norm
