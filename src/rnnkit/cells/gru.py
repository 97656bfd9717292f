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

Variants:

- recurrent dropout ``rd (B, H)``: ``hz = (h_prev * rd) @ W_h.T``, while ``u * h_prev`` keeps
  the whole state; ``dh_prev = dh * u + (dhz @ W_h) * rd``.
- ``layer_norm`` (after Ba, Kiros & Hinton 2016, who normalise the LSTM; the same rule): the
  input and the recurrent projections are normalised separately over all 3H, then the biases
  are added, ``xz = LN(x @ W_x.T; g_x) + b`` and ``hz = LN(h_prev @ W_h.T; g_h)``,
  ``hz_n += b_hn``; the equations above follow unchanged. Backward: ``db = sum(dxz)``,
  ``db_hn = sum(dhz_n)``, then each part through LN's backward (``cells/base.py``).
"""

from __future__ import annotations

import numpy as np

from ..functional import get_activation
from .base import Cell, State, layer_norm, layer_norm_back


class GRUCell(Cell):
    gates = 3
    state_names = ("h",)
    separate_dhz = True

    def __init__(self, hidden: int, activation: str = "tanh", gate_activation: str = "sigmoid",
                 *, layer_norm: bool = False):
        super().__init__(hidden)
        self.act = get_activation(activation, owner="GRU")
        self.gate = get_activation(gate_activation, owner="GRU", arg="gate_activation")
        self.layer_norm = self.bias_inside = layer_norm

    @property
    def plain(self) -> bool:
        return not self.layer_norm

    def param_shapes(self, input_size: int, bias: bool) -> dict[str, tuple[int, ...]]:
        shapes = super().param_shapes(input_size, bias)
        if bias:
            shapes["b_hn"] = (self.hidden,)
        if self.layer_norm:
            shapes.update(g_x=(3 * self.hidden,), g_h=(3 * self.hidden,))
        return shapes

    def step(self, p: dict[str, np.ndarray], xz: np.ndarray, state: State, r=None):
        (h_prev,) = state
        H = self.hidden
        hz = (h_prev if r is None else h_prev * r) @ p["W_h"].T  # (B, 3H)
        ln = None
        if self.layer_norm:
            (xz, ln_x), (hz, ln_h) = layer_norm(xz, p["g_x"]), layer_norm(hz, p["g_h"])
            xz = xz + p["b"] if "b" in p else xz
            ln = (ln_x, ln_h)
        hz_n = hz[:, 2 * H :] + p["b_hn"] if "b_hn" in p else hz[:, 2 * H :]
        a_r = xz[:, :H] + hz[:, :H]
        a_u = xz[:, H : 2 * H] + hz[:, H : 2 * H]
        r_, u = self.gate.f(a_r), self.gate.f(a_u)
        a_n = xz[:, 2 * H :] + r_ * hz_n
        n = self.act.f(a_n)
        h = (1 - u) * n + u * h_prev
        return (h,), (a_r, a_u, a_n, r_, u, n, hz_n, h_prev, r, ln)

    def step_back(self, p: dict[str, np.ndarray], d_state: State, cache):
        (dh,) = d_state
        a_r, a_u, a_n, r_, u, n, hz_n, h_prev, r, ln = cache
        H = self.hidden
        dan = dh * (1 - u) * self.act.df(a_n, n)
        dar = dan * hz_n * self.gate.df(a_r, r_)
        dau = dh * (h_prev - n) * self.gate.df(a_u, u)
        dxz = np.concatenate([dar, dau, dan], axis=1)
        dhz = dxz.copy()
        dhz[:, 2 * H :] *= r_
        extra = {}
        if self.layer_norm:
            if "b" in p:
                extra["b"], extra["b_hn"] = dxz.sum(axis=0), dhz[:, 2 * H :].sum(axis=0)
            dxz, extra["g_x"] = layer_norm_back(dxz, ln[0])
            dhz, extra["g_h"] = layer_norm_back(dhz, ln[1])
        dh_rec = dhz @ p["W_h"]
        d_prev = (dh * u + (dh_rec if r is None else dh_rec * r),)
        return (dxz, dhz, d_prev, extra) if extra else (dxz, dhz, d_prev)
