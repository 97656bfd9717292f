"""The spec's standard (Elman) layer, one step.

Forward (spec, "Generating hidden states and outputs")::

    a = xz + h_prev @ W_h.T          # f(h_{t-1}, x_t) = W_x x_t + W_h h_{t-1} + b; xz = x W_x^T + b
    h = σ(a)                         # h_t = σ(f(h_{t-1}, x_t))

Backward, given dh = ∂L/∂h_t::

    da = dh * σ'(a)                  # σ' from (a, h): tanh' = 1 - h², relu' = (a > 0), ...
    dxz = dhz = da                   # W_x and W_h feed the same sum
    dh_prev = da @ W_h               # J_t^T dh with J_t = diag(σ'(a)) W_h

Recurrent dropout ``r (B, H)``: ``a = xz + (h_prev * r) @ W_h.T``, ``dh_prev = (da @ W_h) * r``.
No ``layer_norm``: the spec's layer has no gates to normalise, and one normalised sum would
be a different layer.
"""

from __future__ import annotations

import numpy as np

from ..functional import get_activation
from .base import Cell, State


class ElmanCell(Cell):
    gates = 1
    state_names = ("h",)

    def __init__(self, hidden: int, activation: str = "tanh") -> None:
        super().__init__(hidden)
        self.act = get_activation(activation, owner="RNN")

    def step(self, p: dict[str, np.ndarray], xz: np.ndarray, state: State, r=None):
        (h_prev,) = state
        a = xz + (h_prev if r is None else h_prev * r) @ p["W_h"].T  # (B, H)
        h = self.act.f(a)
        return (h,), (a, h, r)

    def step_back(self, p: dict[str, np.ndarray], d_state: State, cache):
        (dh,) = d_state
        a, h, r = cache
        da = dh * self.act.df(a, h)
        dh_prev = da @ p["W_h"]
        return da, da, (dh_prev if r is None else dh_prev * r,)
