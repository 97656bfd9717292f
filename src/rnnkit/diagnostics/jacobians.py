"""Step Jacobians ``J_t = ∂s_t/∂s_{t-1}`` of each cell, derived from the cell equations.

Spec, "Vanishing / exploding gradients": ``∇_{h_1} L = ∏_{i=2}^{T} J_i^T ∇_{h_T} L``. This
module computes every ``J_t`` explicitly, for a batch, from the parameters and the state
sequence alone. It re-runs the cell equations itself instead of reading the time loop's caches,
so it does not depend on how the layer (or a compiled kernel) stores them, and it gives the
tests an independent derivation to compare with backpropagation through time.

The state ``s`` is a row vector per sequence: ``h`` for the Elman cell and the GRU
(``n = H``), ``[h, c]`` for the LSTM (``n = 2H``), so that ``J_t`` is ``(B, n, n)`` and
``∂L/∂s_{t-1} = J_t^T ∂L/∂s_t`` (plus the direct loss term at ``t-1``).

Saturation criteria (documented thresholds, see ``SATURATED`` and ``STUCK``): an activation is
saturated where its derivative is below 0.01 (``tanh'(a) < 0.01`` ⇔ ``|a| > 3.8``); a gate is
stuck where its value is below 0.01 or above 0.99; a relu unit is dead when ``a <= 0`` at every
step of a sequence.
"""

from __future__ import annotations

import numpy as np

from ..cells import Cell, ElmanCell, GRUCell, LSTMCell

SATURATED = 0.01  # σ'(a) below this: the unit passes < 1% of the gradient
STUCK = 0.01  # gate value below STUCK or above 1 - STUCK: closed or open regardless of input
Masks = dict[str, np.ndarray]


def _rows(d: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``diag(d_b) @ W`` for each row ``d_b`` of ``d (B, H)``: ``(B, H, W.shape[1])``."""
    return d[:, :, None] * W[None]


def _diag(d: np.ndarray) -> np.ndarray:
    """``diag(d_b)`` for each row of ``d (B, H)``: ``(B, H, H)``."""
    out = np.zeros((*d.shape, d.shape[1]), d.dtype)
    idx = np.arange(d.shape[1])
    out[:, idx, idx] = d
    return out


class CellFlow:
    """One cell's step, Jacobian and saturation masks, for the parameters ``p`` of one
    direction. ``step`` returns ``(s_new (B, n), aux)``; ``jacobian(aux, s_prev)`` returns
    ``∂s_new/∂s_prev (B, n, n)``; ``saturation(aux)`` returns ``(per_step, dead)``: boolean
    ``(B, H)`` masks, the first counted per step, the second true only if true at every
    step of a sequence."""

    gate_names: tuple[str, ...] = ("h",)
    state_factor = 1

    def __init__(self, cell: Cell, p: dict[str, np.ndarray]) -> None:
        self.cell, self.p, self.H = cell, p, cell.hidden
        self.W = p["W_h"]

    def input_projection(self, x: np.ndarray) -> np.ndarray:
        """``xz = x W_x^T + b`` for every step at once: ``(T, B, G*H)``."""
        xz = x @ self.p["W_x"].T
        return xz + self.p["b"] if "b" in self.p else xz

    def block(self, k: int) -> np.ndarray:
        """Gate block ``k`` of ``W_h``: ``(H, H)``."""
        return self.W[k * self.H : (k + 1) * self.H]

    def step(self, xz: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, tuple]:
        raise NotImplementedError

    def jacobian(self, aux: tuple, s: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def saturation(self, aux: tuple) -> tuple[Masks, Masks]:
        raise NotImplementedError


class ElmanFlow(CellFlow):
    """``a = xz + h W_h^T``, ``h' = σ(a)``. Then ``∂h'_j/∂h_k = σ'(a_j) W_h[j, k]``, i.e.
    ``J = diag(σ'(a)) W_h`` (the spec's Jacobian)."""

    def step(self, xz, s):
        a = xz + s @ self.W.T
        h = self.cell.act.f(a)
        return h, (a, h)

    def jacobian(self, aux, s):
        a, h = aux
        return _rows(self.cell.act.df(a, h), self.W)

    def saturation(self, aux):
        a, h = aux
        name = self.cell.act.name
        if name == "relu":
            return {}, {"dead": a <= 0}
        if name == "identity":
            return {}, {}
        return {"saturated": self.cell.act.df(a, h) < SATURATED}, {}


class LSTMFlow(CellFlow):
    """State ``s = [h, c]``. With ``z = xz + h W_h^T`` split into ``z_i, z_f, z_g, z_o`` and
    ``W_h`` into the blocks ``W_i, W_f, W_g, W_o`` (H, H)::

        i, f, g, o = γ(z_i), γ(z_f), φ(z_g), γ(z_o);  c' = f c + i g;  h' = o φ(c')

    Each gate depends on ``h`` only through its own block, ``∂z_•/∂h = W_•``, and none on
    ``c``. So by the chain rule::

        ∂c'/∂h = diag(c γ'(z_f)) W_f + diag(g γ'(z_i)) W_i + diag(i φ'(z_g)) W_g
        ∂c'/∂c = diag(f)
        ∂h'/∂h = diag(φ(c') γ'(z_o)) W_o + diag(o φ'(c')) ∂c'/∂h
        ∂h'/∂c = diag(o φ'(c') f)

        J = [[∂h'/∂h, ∂h'/∂c],
             [∂c'/∂h, ∂c'/∂c]]                                       (2H, 2H)

    ``diag(f)`` is the constant error carousel: with forget gates near 1 the ``c → c`` block
    is the identity and the product of Jacobians does not shrink.
    """

    gate_names = ("i", "f", "g", "o")
    state_factor = 2

    def step(self, xz, s):
        H, gate, act = self.H, self.cell.gate, self.cell.act
        h, c = s[:, :H], s[:, H:]
        z = xz + h @ self.W.T  # (B, 4H)
        i, f = gate.f(z[:, :H]), gate.f(z[:, H : 2 * H])
        g, o = act.f(z[:, 2 * H : 3 * H]), gate.f(z[:, 3 * H :])
        c_new = f * c + i * g
        tc = act.f(c_new)
        return np.concatenate([o * tc, c_new], axis=1), (z, i, f, g, o, c, c_new, tc)

    def jacobian(self, aux, s):
        z, i, f, g, o, c, c_new, tc = aux
        H, gate, act = self.H, self.cell.gate, self.cell.act
        d_i, d_f = gate.df(z[:, :H], i), gate.df(z[:, H : 2 * H], f)
        d_g, d_o = act.df(z[:, 2 * H : 3 * H], g), gate.df(z[:, 3 * H :], o)
        d_tc = act.df(c_new, tc)
        dc_dh = (_rows(c * d_f, self.block(1)) + _rows(g * d_i, self.block(0))
                 + _rows(i * d_g, self.block(2)))
        dh_dh = _rows(tc * d_o, self.block(3)) + (o * d_tc)[:, :, None] * dc_dh
        top = np.concatenate([dh_dh, _diag(o * d_tc * f)], axis=2)
        bottom = np.concatenate([dc_dh, _diag(f)], axis=2)
        return np.concatenate([top, bottom], axis=1)  # (B, 2H, 2H)

    def saturation(self, aux):
        z, i, f, g, o, _, c_new, tc = aux
        H, act = self.H, self.cell.act
        masks = {}
        for name, v in (("i", i), ("f", f), ("o", o)):
            masks[f"{name}_closed"] = v < STUCK
            masks[f"{name}_open"] = v > 1 - STUCK
        masks["g_saturated"] = act.df(z[:, 2 * H : 3 * H], g) < SATURATED
        masks["c_saturated"] = act.df(c_new, tc) < SATURATED
        return masks, {}


class GRUFlow(CellFlow):
    """Reset-after GRU. With ``hz = h W_h^T`` (blocks ``W_r, W_u, W_n``), ``hz_n`` its last
    block plus ``b_hn``::

        r = γ(a_r), u = γ(a_u), a_• = xz_• + hz_•;  n = φ(xz_n + r hz_n)
        h' = (1 - u) n + u h

    so ``∂u/∂h = diag(γ'(a_u)) W_u``, ``∂r/∂h = diag(γ'(a_r)) W_r`` and
    ``∂n/∂h = diag(φ'(a_n)) (diag(r) W_n + diag(hz_n) ∂r/∂h)``, and by the product rule::

        J = diag(u) + diag(h - n) ∂u/∂h + diag(1 - u) ∂n/∂h           (H, H)

    ``diag(u)`` is the GRU's leaky path: an update gate near 1 copies the state unchanged.
    """

    gate_names = ("r", "u", "n")

    def step(self, xz, s):
        H, gate, act = self.H, self.cell.gate, self.cell.act
        hz = s @ self.W.T  # (B, 3H)
        hz_n = hz[:, 2 * H :] + self.p["b_hn"] if "b_hn" in self.p else hz[:, 2 * H :]
        a_r, a_u = xz[:, :H] + hz[:, :H], xz[:, H : 2 * H] + hz[:, H : 2 * H]
        r, u = gate.f(a_r), gate.f(a_u)
        a_n = xz[:, 2 * H :] + r * hz_n
        n = act.f(a_n)
        return (1 - u) * n + u * s, (a_r, a_u, a_n, r, u, n, hz_n)

    def jacobian(self, aux, s):
        a_r, a_u, a_n, r, u, n, hz_n = aux
        gate, act = self.cell.gate, self.cell.act
        du_dh = _rows(gate.df(a_u, u), self.block(1))
        dr_dh = _rows(gate.df(a_r, r), self.block(0))
        dn_dh = act.df(a_n, n)[:, :, None] * (_rows(r, self.block(2))
                                              + hz_n[:, :, None] * dr_dh)
        return _diag(u) + (s - n)[:, :, None] * du_dh + (1 - u)[:, :, None] * dn_dh

    def saturation(self, aux):
        _, _, a_n, r, u, n, _ = aux
        masks = {}
        for name, v in (("r", r), ("u", u)):
            masks[f"{name}_closed"] = v < STUCK
            masks[f"{name}_open"] = v > 1 - STUCK
        masks["n_saturated"] = self.cell.act.df(a_n, n) < SATURATED
        return masks, {}


class VariantFlow(CellFlow):
    """A cell with variants (layer norm, peepholes, projection; cells/lstm.py, gru.py) or a
    layer with zoneout. The step is the cell's own, deterministic as at inference (no
    dropout; zoneout's expectation ``s' = p s + (1 - p) cell(s)``, so ``J = p I + (1 - p)
    J_cell``), and ``J`` comes row by row from the cell's exact backward: row ``k`` is
    ``step_back`` of the unit vector ``e_k``, ``n`` backward steps per time step. The state
    is ``[h, c]`` with ``h`` of ``proj_size`` entries when the LSTM projects."""

    def __init__(self, cell: Cell, p: dict[str, np.ndarray], zoneout: tuple = ()) -> None:
        super().__init__(cell, p)
        self.sizes = (cell.out_size,) + (cell.hidden,) * (len(cell.state_names) - 1)
        self.zone = tuple(zoneout) if any(zoneout) else ()
        self.gate_names = {LSTMCell: LSTMFlow, GRUCell: GRUFlow}.get(
            type(cell), ElmanFlow).gate_names
        self.state_factor = len(self.sizes)

    def input_projection(self, x: np.ndarray) -> np.ndarray:
        xz = x @ self.p["W_x"].T
        return xz + self.p["b"] if "b" in self.p and not self.cell.bias_inside else xz

    def block(self, k: int) -> np.ndarray:
        """Gate block ``k`` of ``W_h``, times ``W_hr`` when the LSTM projects (H, H)."""
        w = self.W[k * self.H : (k + 1) * self.H]
        return w @ self.p["W_hr"] if "W_hr" in self.p else w

    def _split(self, s: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(np.split(s, np.cumsum(self.sizes)[:-1], axis=1))

    def _mix(self, new: tuple, old: tuple) -> tuple:
        return tuple(z * o + (1 - z) * n for z, n, o in zip(self.zone, new, old)) \
            if self.zone else new

    def step(self, xz, s):
        old = self._split(s)
        new, cache = self.cell.step(self.p, xz, old)
        return np.concatenate(self._mix(new, old), axis=1), cache

    def jacobian(self, aux, s):
        B, n = s.shape
        J = np.empty((B, n, n))
        for k in range(n):
            e = np.zeros((B, n))
            e[:, k] = 1
            d = self._split(e)
            d_cell = tuple((1 - z) * v for z, v in zip(self.zone, d)) if self.zone else d
            d_prev = np.concatenate(self.cell.step_back(self.p, d_cell, aux)[2], axis=1)
            J[:, k] = d_prev + (np.concatenate([z * v for z, v in zip(self.zone, d)], axis=1)
                                if self.zone else 0)
        return J

    def saturation(self, aux):
        return {}, {}


def cell_flow(cell: Cell, p: dict[str, np.ndarray], zoneout: tuple = ()) -> CellFlow:
    """The ``CellFlow`` for a cell and one direction's parameters (keys without suffix), and
    the layer's zoneout rates (applied as their expectation)."""
    if not cell.plain or any(zoneout):
        return VariantFlow(cell, p, zoneout)
    for kind, flow in ((LSTMCell, LSTMFlow), (GRUCell, GRUFlow), (ElmanCell, ElmanFlow)):
        if isinstance(cell, kind):
            return flow(cell, p)
    raise TypeError(f"gradient_flow: no Jacobian for cell type {type(cell).__name__}")


def state_jacobians(flow: CellFlow, x: np.ndarray, s0: np.ndarray) -> tuple[np.ndarray, ...]:
    """Run one direction over ``x (T, B, D)`` from ``s0 (B, n)``: ``(states (T+1, B, n),
    jacobians (T, B, n, n))`` with ``jacobians[t] = ∂states[t+1]/∂states[t]``. Keeps every
    Jacobian in memory: for tests and short sequences (``gradient_flow`` streams them)."""
    xz = flow.input_projection(x)
    states, jacs = [s0], []
    for t in range(x.shape[0]):
        s, aux = flow.step(xz[t], states[-1])
        jacs.append(flow.jacobian(aux, states[-1]))
        states.append(s)
    return np.stack(states), np.stack(jacs)
