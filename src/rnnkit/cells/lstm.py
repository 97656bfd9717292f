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

Variants (any combination), each a few lines in the code below, in this order:

- recurrent dropout ``r (B, P)``: ``hz = (h_prev * r) @ W_h.T``; ``dh_prev = (dhz @ W_h) * r``.
- ``layer_norm`` (Ba, Kiros & Hinton 2016, their eq. 20-22): the input and the recurrent
  parts are normalised separately over all 4H pre-activations, then the bias is added;
  the cell state is normalised before φ::

      z = LN(xz; g_x) + LN(hz; g_h) + b          # xz = x @ W_x.T, without b
      h = o * φ(LN(c; g_c) + b_c)

  ``LN(a; g) = g * (a - mean(a)) / sqrt(var(a) + 1e-5)`` per row; LN's own shifts would add
  up with ``b``, which stands for them.
- ``peepholes`` (Gers & Schmidhuber 2000), ``P (3H,)`` in ONNX's order i, o, f::

      z_i += P_i * c_prev;  z_f += P_f * c_prev;  z_o += P_o * c     # z_o after c is made
      dc += dz_o * P_o  (before dc_prev);  dc_prev += dz_i * P_i + dz_f * P_f

- ``proj_size`` P (Sak, Senior & Beaufays 2014; PyTorch's ``proj_size``): ``W_hr (P, H)``,
  ``h = (o * φ(c)) @ W_hr.T`` of size P, which feeds ``W_h (4H, P)``; backward
  ``dm = dh @ W_hr``, ``dW_hr = dh.T @ m`` with ``m = o * φ(c)``.
"""

from __future__ import annotations

import numpy as np

from ..functional import get_activation
from .base import Cell, State, layer_norm, layer_norm_back


class LSTMCell(Cell):
    gates = 4
    state_names = ("h", "c")

    def __init__(self, hidden: int, activation: str = "tanh", gate_activation: str = "sigmoid",
                 *, layer_norm: bool = False, peepholes: bool = False, proj_size: int = 0):
        super().__init__(hidden)
        self.act = get_activation(activation, owner="LSTM")
        self.gate = get_activation(gate_activation, owner="LSTM", arg="gate_activation")
        self.layer_norm, self.peepholes, self.proj_size = layer_norm, peepholes, proj_size
        self.bias_inside = self.separate_dhz = layer_norm

    @property
    def out_size(self) -> int:
        return self.proj_size or self.hidden

    @property
    def plain(self) -> bool:
        return not (self.layer_norm or self.peepholes or self.proj_size)

    def param_shapes(self, input_size: int, bias: bool) -> dict[str, tuple[int, ...]]:
        H, P = self.hidden, self.out_size
        shapes = {"W_x": (4 * H, input_size), "W_h": (4 * H, P)}
        if bias:
            shapes["b"] = (4 * H,)
        if self.peepholes:
            shapes["P"] = (3 * H,)
        if self.proj_size:
            shapes["W_hr"] = (P, H)
        if self.layer_norm:
            shapes.update(g_x=(4 * H,), g_h=(4 * H,), g_c=(H,), b_c=(H,))
        return shapes

    def step(self, p: dict[str, np.ndarray], xz: np.ndarray, state: State, r=None):
        h_prev, c_prev = state
        H = self.hidden
        hz = (h_prev if r is None else h_prev * r) @ p["W_h"].T  # (B, 4H)
        ln = None
        if self.layer_norm:
            (x_n, ln_x), (h_n, ln_h) = layer_norm(xz, p["g_x"]), layer_norm(hz, p["g_h"])
            z = x_n + h_n + p["b"] if "b" in p else x_n + h_n
        else:
            z = xz + hz
        if self.peepholes:
            z[:, :H] += p["P"][:H] * c_prev
            z[:, H : 2 * H] += p["P"][2 * H :] * c_prev
        zi, zf, zg = z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H]
        i, f, g = self.gate.f(zi), self.gate.f(zf), self.act.f(zg)
        c = f * c_prev + i * g
        if self.peepholes:
            z[:, 3 * H :] += p["P"][H : 2 * H] * c
        o = self.gate.f(z[:, 3 * H :])
        c_n = c
        if self.layer_norm:
            c_n, ln_c = layer_norm(c, p["g_c"])
            c_n = c_n + p["b_c"]
            ln = (ln_x, ln_h, ln_c)
        tc = self.act.f(c_n)
        m = o * tc
        h = m @ p["W_hr"].T if self.proj_size else m
        return (h, c), (z, i, f, g, o, c_prev, c, c_n, tc, m, r, ln)

    def step_back(self, p: dict[str, np.ndarray], d_state: State, cache):
        dh, dc = d_state
        z, i, f, g, o, c_prev, c, c_n, tc, m, r, ln = cache
        H, extra = self.hidden, {}
        if self.proj_size:
            extra["W_hr"] = dh.T @ m
            dh = dh @ p["W_hr"]  # dm
        do = dh * tc
        dcn = dh * o * self.act.df(c_n, tc)
        if self.layer_norm:
            extra["b_c"] = dcn.sum(axis=0)
            dcn, extra["g_c"] = layer_norm_back(dcn, ln[2])
        dc = dc + dcn
        dz = np.empty_like(z)
        dz[:, 3 * H :] = do * self.gate.df(z[:, 3 * H :], o)
        if self.peepholes:
            dc = dc + dz[:, 3 * H :] * p["P"][H : 2 * H]
        dz[:, :H] = dc * g * self.gate.df(z[:, :H], i)
        dz[:, H : 2 * H] = dc * c_prev * self.gate.df(z[:, H : 2 * H], f)
        dz[:, 2 * H : 3 * H] = dc * i * self.act.df(z[:, 2 * H : 3 * H], g)
        dc_prev = dc * f
        if self.peepholes:
            dzi, dzf, dzo = dz[:, :H], dz[:, H : 2 * H], dz[:, 3 * H :]
            dc_prev = dc_prev + dzi * p["P"][:H] + dzf * p["P"][2 * H :]
            extra["P"] = np.concatenate([(dzi * c_prev).sum(axis=0), (dzo * c).sum(axis=0),
                                         (dzf * c_prev).sum(axis=0)])
        dxz = dhz = dz
        if self.layer_norm:
            if "b" in p:
                extra["b"] = dz.sum(axis=0)
            dxz, extra["g_x"] = layer_norm_back(dz, ln[0])
            dhz, extra["g_h"] = layer_norm_back(dz, ln[1])
        dh_prev = dhz @ p["W_h"]
        if r is not None:
            dh_prev *= r
        if extra:
            return dxz, dhz, (dh_prev, dc_prev), extra
        return dxz, dhz, (dh_prev, dc_prev)
