"""Gated recurrent unit (Cho et al. 2014) in the "reset after" form that PyTorch and cuDNN use:
the reset gate multiplies ``W_hn h + b_hn`` after the matrix product. Gate order r, z, n.

Forward, with γ the gate activation (sigmoid) and φ the candidate activation (tanh)::

    hz = h_prev @ W_h.T; hz_n += b_hn                # (B, 3H)
    r = γ(xz_r + hz_r)
    u = γ(xz_z + hz_z)                                # the update gate, PyTorch's z
    n = φ(xz_n + r * hz_n)
    h = (1 - u) * n + u * h_prev

Backward, given dh = ∂L/∂h_t::

    dn, du = dh * (1 - u), dh * (h_prev - n)
    dan = dn * φ'(a_n)
    dar = dan * hz_n * γ'(a_r);  dau = du * γ'(a_u)
    dxz = [dar, dau, dan];  dhz = [dar, dau, dan * r]
    dh_prev = dh * u + dhz @ W_h
"""

from __future__ import annotations

import numpy as np

from ..functional import get_activation
from .base import Cell, State


class GRUCell(Cell):
    gates = 3
    state_names = ("h",)
    separate_dhz = True

    def __init__(self, hidden: int, activation: str = "tanh", gate_activation: str = "sigmoid"):
        super().__init__(hidden)
        self.act = get_activation(activation, owner="GRU")
        self.gate = get_activation(gate_activation, owner="GRU", arg="gate_activation")

    def param_shapes(self, input_size: int, bias: bool) -> dict[str, tuple[int, ...]]:
        shapes = super().param_shapes(input_size, bias)
        if bias:
            shapes["b_hn"] = (self.hidden,)
        return shapes

    def step(self, p: dict[str, np.ndarray], xz: np.ndarray, state: State):
        (h_prev,) = state
        H = self.hidden
        hz = h_prev @ p["W_h"].T  # (B, 3H)
        hz_n = hz[:, 2 * H :] + p["b_hn"] if "b_hn" in p else hz[:, 2 * H :]
        a_r = xz[:, :H] + hz[:, :H]
        a_u = xz[:, H : 2 * H] + hz[:, H : 2 * H]
        r, u = self.gate.f(a_r), self.gate.f(a_u)
        a_n = xz[:, 2 * H :] + r * hz_n
        n = self.act.f(a_n)
        h = (1 - u) * n + u * h_prev
        return (h,), (a_r, a_u, a_n, r, u, n, hz_n, h_prev)

    def step_back(self, p: dict[str, np.ndarray], d_state: State, cache):
        (dh,) = d_state
        a_r, a_u, a_n, r, u, n, hz_n, h_prev = cache
        H = self.hidden
        dan = dh * (1 - u) * self.act.df(a_n, n)
        dar = dan * hz_n * self.gate.df(a_r, r)
        dau = dh * (h_prev - n) * self.gate.df(a_u, u)
        dxz = np.concatenate([dar, dau, dan], axis=1)
        dhz = dxz.copy()
        dhz[:, 2 * H :] *= r
        return dxz, dhz, (dh * u + dhz @ p["W_h"],)
