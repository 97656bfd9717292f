"""Long short-term memory (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al.
2000), one step. Gate order i, f, g, o as PyTorch, so weights map across unchanged.

Forward, with γ the gate activation (sigmoid) and φ the cell activation (tanh)::

    z = xz + h_prev @ W_h.T                      # (B, 4H)
    i, f, g, o = γ(z_i), γ(z_f), φ(z_g), γ(z_o)
    c = f * c_prev + i * g
    h = o * φ(c)

Backward, given dh = ∂L/∂h_t and dc = ∂L/∂c_t from later steps::

    do = dh * φ(c)
    dc = dc + dh * o * φ'(c)
    di, df, dg = dc * g, dc * c_prev, dc * i
    dz = [di * γ'(z_i), df * γ'(z_f), dg * φ'(z_g), do * γ'(z_o)]
    dxz = dhz = dz
    dh_prev, dc_prev = dz @ W_h, dc * f
"""

from __future__ import annotations

import numpy as np

from ..functional import get_activation
from .base import Cell, State


class LSTMCell(Cell):
    gates = 4
    state_names = ("h", "c")

    def __init__(self, hidden: int, activation: str = "tanh", gate_activation: str = "sigmoid"):
        super().__init__(hidden)
        self.act = get_activation(activation, owner="LSTM")
        self.gate = get_activation(gate_activation, owner="LSTM", arg="gate_activation")

    def step(self, p: dict[str, np.ndarray], xz: np.ndarray, state: State):
        h_prev, c_prev = state
        H = self.hidden
        z = xz + h_prev @ p["W_h"].T  # (B, 4H)
        zi, zf, zg, zo = z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]
        i, f, g, o = self.gate.f(zi), self.gate.f(zf), self.act.f(zg), self.gate.f(zo)
        c = f * c_prev + i * g
        tc = self.act.f(c)
        h = o * tc
        return (h, c), (z, i, f, g, o, c_prev, c, tc)

    def step_back(self, p: dict[str, np.ndarray], d_state: State, cache):
        dh, dc = d_state
        z, i, f, g, o, c_prev, c, tc = cache
        H = self.hidden
        do = dh * tc
        dc = dc + dh * o * self.act.df(c, tc)
        dz = np.empty_like(z)
        dz[:, :H] = dc * g * self.gate.df(z[:, :H], i)
        dz[:, H : 2 * H] = dc * c_prev * self.gate.df(z[:, H : 2 * H], f)
        dz[:, 2 * H : 3 * H] = dc * i * self.act.df(z[:, 2 * H : 3 * H], g)
        dz[:, 3 * H :] = do * self.gate.df(z[:, 3 * H :], o)
        return dz, dz, (dz @ p["W_h"], dc * f)
