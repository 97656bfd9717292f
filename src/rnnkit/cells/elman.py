"""The spec's standard (Elman) layer, one step.

Forward (spec, "Generating hidden states and outputs")::

    a = xz + h_prev @ W_h.T          # f(h_{t-1}, x_t) = W_x x_t + W_h h_{t-1} + b; xz = x W_x^T + b
    h = σ(a)                         # h_t = σ(f(h_{t-1}, x_t))

Backward, given dh = ∂L/∂h_t::

    da = dh * σ'(a)                  # σ' from (a, h): tanh' = 1 - h², relu' = (a > 0), ...
    dxz = dhz = da                   # W_x and W_h feed the same sum
    dh_prev = da @ W_h               # J_t^T dh with J_t = diag(σ'(a)) W_h
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

    def step(self, p: dict[str, np.ndarray], xz: np.ndarray, state: State):
        (h_prev,) = state
        a = xz + h_prev @ p["W_h"].T  # (B, H)
        h = self.act.f(a)
        return (h,), (a, h)

    def step_back(self, p: dict[str, np.ndarray], d_state: State, cache):
        (dh,) = d_state
        a, h = cache
        da = dh * self.act.df(a, h)
        return da, da, (da @ p["W_h"],)
