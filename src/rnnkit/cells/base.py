"""The contract between a one-step cell and the one generic time loop (layers/recurrent.py).

A cell knows one time step and nothing about time, batches of time, masks or directions.

Parameters, shared by every cell (``G`` gates, ``H`` hidden units, ``D`` inputs)::

    W_x (G*H, D)   W_h (G*H, H)   b (G*H,)        GRU adds b_hn (H,)

The time loop computes the input projection for all steps at once, before the loop::

    xz = X @ W_x.T + b                            # (T, B, G*H)

and then, for each step, calls::

    state, cache = cell.step(p, xz[t], state)     # state: tuple of (B, H) arrays, h first
    dxz, dhz, d_prev = cell.step_back(p, d_state, cache)

``step_back`` receives the gradient of the loss w.r.t. the new state (a tuple like ``state``)
and returns:

- ``dxz (B, G*H)``: gradient w.r.t. ``xz[t]``; the loop turns the stack of these into
  ``dW_x``, ``db`` and ``dX`` with one matrix product each, after the loop;
- ``dhz (B, G*H)``: gradient w.r.t. the hidden projection ``h_{t-1} @ W_h.T (+ b_hn)``; the
  loop turns the stack into ``dW_h`` (and ``db_hn``) after the loop. For the Elman cell and
  the LSTM this is the same array as ``dxz``; the GRU's reset gate makes them differ;
- ``d_prev``: gradient w.r.t. the previous state (a tuple), including the path through
  ``W_h``.

A cell's ``step`` stores nothing on ``self``; ``step_back`` reuses what ``step`` cached and
recomputes nothing.

Variants (``layer_norm``, ``peepholes``, ``proj_size``) have parameters of their own; their
``step_back`` returns a fourth item, ``{name: gradient}`` of this step summed over the batch,
which the loop adds up. A layer-normalised cell (``bias_inside``) adds the bias ``b`` itself,
after the normalisation, so ``xz`` reaches it without ``b`` and its gradient is in that dict.
Recurrent dropout (Gal & Ghahramani 2016) is ``r (B, H)``, the same at every step: the cell
uses ``h_prev * r`` in its product with ``W_h`` (and ``h_prev`` elsewhere, as the GRU's
``u * h_prev``); ``None`` means no mask.
"""

from __future__ import annotations

from typing import Any

import numpy as np

State = tuple[np.ndarray, ...]

#: layer normalisation's epsilon, as torch.nn.LayerNorm
LN_EPS = 1e-5


def layer_norm(a: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, tuple]:
    """``g * (a - mean(a)) / sqrt(var(a) + LN_EPS)`` over the last axis (Ba et al. 2016); the
    shift is left to the bias that follows it. Returns ``(y, cache)``."""
    mu = a.mean(axis=-1, keepdims=True)
    inv = 1 / np.sqrt(((a - mu) ** 2).mean(axis=-1, keepdims=True) + LN_EPS)
    a_hat = (a - mu) * inv
    return g * a_hat, (a_hat, inv, g)


def layer_norm_back(dy: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray]:
    """``(da, dg)`` from ``dy``: ``da = inv * (dâ - mean(dâ) - â * mean(dâ * â))`` with
    ``dâ = dy * g``; ``dg = sum over rows of dy * â``."""
    a_hat, inv, g = cache
    d_hat = dy * g
    da = inv * (d_hat - d_hat.mean(axis=-1, keepdims=True)
                - a_hat * (d_hat * a_hat).mean(axis=-1, keepdims=True))
    return da, (dy * a_hat).sum(axis=0)


class Cell:
    """Base class: holds the sizes and activation choices, never per-call data."""

    #: number of gate blocks G in W_x, W_h and b
    gates: int = 1
    #: names of the state vectors carried from step to step, hidden state first
    state_names: tuple[str, ...] = ("h",)
    #: True when the gradient w.r.t. the hidden projection differs from the input one (GRU)
    separate_dhz: bool = False
    #: True when the cell adds the bias ``b`` itself (after a layer normalisation)
    bias_inside: bool = False

    def __init__(self, hidden: int) -> None:
        self.hidden = hidden

    def param_shapes(self, input_size: int, bias: bool) -> dict[str, tuple[int, ...]]:
        gh = self.gates * self.hidden
        shapes = {"W_x": (gh, input_size), "W_h": (gh, self.hidden)}
        if bias:
            shapes["b"] = (gh,)
        return shapes

    @property
    def out_size(self) -> int:
        """Size of the emitted ``h`` (the LSTM's ``proj_size`` when it projects)."""
        return self.hidden

    @property
    def plain(self) -> bool:
        """Whether the cell is the plain one that the compiled loops run."""
        return True

    def step(self, p: dict[str, np.ndarray], xz: np.ndarray, state: State,
             r: np.ndarray | None = None) -> tuple[State, Any]:
        raise NotImplementedError

    def step_back(
        self, p: dict[str, np.ndarray], d_state: State, cache: Any
    ) -> tuple[np.ndarray, np.ndarray, State]:
        raise NotImplementedError
