"""``gradient_flow``: how much of the loss gradient reaches each time step, and why.

For every recurrent layer and direction it runs the layer's cell equations again in float64
(``jacobians.py``), then walks backward through time once, computing at each step ``t``:

- the total gradient ``∂L/∂h_t`` (the direct loss term at ``t`` plus ``J_{t+1}^T ∂L/∂s_{t+1}``),
  and the gradient of the loss at the last step alone, which defines the horizon;
- ``‖J_t‖_2`` and ``‖∂s_T/∂s_t‖_2 = ‖J_T ⋯ J_{t+1}‖_2``;
- the Lyapunov exponents of the product ``J_1^T ⋯ J_T^T`` by the QR method:
  ``Z = J_t^T Q``, ``Q, R = qr(Z)``, ``λ_i = mean_t log|R_ii|``.

Gradients over thousands of steps leave float64's range (``0.5^2000 = 1e-602``), so every
running vector or matrix is kept as ``exp(scale) × (unit-norm part)`` with the log scale summed
separately; every norm is reported as a log. The Jacobian matrices are formed for the whole
batch (the gradient needs them), but the SVDs and QRs run on the first ``max_samples``
live sequences only (a dead one's product is zero), since they cost O(n³) per step each.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from ..layers.recurrent import Recurrent, reverse_padded
from .jacobians import CellFlow, cell_flow
from .report import DirectionFlow, GradientFlowReport, summarise


def lognorm(v: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log ‖v‖`` along ``axis`` with ``-inf`` for zero vectors and no under/overflow:
    the vector is divided by its largest entry before squaring."""
    big = np.max(np.abs(v), axis=axis)
    out = np.full(big.shape, -np.inf)
    pos = big > 0
    safe = np.where(pos, big, 1.0)
    scaled = v / np.expand_dims(safe, axis)
    out[pos] = np.log(big[pos]) + 0.5 * np.log(np.sum(scaled * scaled, axis=axis)[pos])
    return out


def mean_valid(x: np.ndarray) -> np.ndarray:
    """Row means over the non-NaN entries; NaN for a row with none (no empty-slice warning)."""
    ok = ~np.isnan(x)
    count = ok.sum(axis=1)
    total = np.where(ok, x, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def log_or_neginf(x: np.ndarray) -> np.ndarray:
    """``log x`` for ``x >= 0`` with ``log 0 = -inf`` and no divide warning."""
    out = np.full(np.shape(x), -np.inf)
    pos = x > 0
    out[pos] = np.log(x[pos])
    return out


class ScaledRows:
    """Rows ``v_b = exp(s_b) u_b`` with ``‖u_b‖ = 1`` (or ``u_b = 0``, ``s_b = -inf``)."""

    def __init__(self, batch: int, n: int) -> None:
        self.u = np.zeros((batch, n))
        self.s = np.full(batch, -np.inf)

    def _set(self, w: np.ndarray, shift: np.ndarray) -> None:
        ln = lognorm(w)
        self.u = w / np.exp(np.where(np.isfinite(ln), ln, 0.0))[:, None]
        self.s = shift + ln

    def add(self, w: np.ndarray) -> None:
        """``v ← v + w``, rescaled by the larger of the two norms so neither overflows."""
        lw = lognorm(w)
        m = np.maximum(self.s, lw)
        m0 = np.where(np.isfinite(m), m, 0.0)
        unit_w = w / np.exp(np.where(np.isfinite(lw), lw, 0.0))[:, None]
        # exponents clipped at -700: a part below 1e-304 of the other adds nothing, and the
        # clip keeps exp from underflowing
        keep_v, keep_w = (np.exp(np.maximum(e, -700.0))[:, None] for e in (self.s - m0, lw - m0))
        self._set(self.u * keep_v + unit_w * keep_w, m0)

    def vjp(self, J: np.ndarray) -> None:
        """``v ← J^T v`` for each row, ``J (B, n, n)``."""
        self._set(np.einsum("bij,bi->bj", J, self.u), self.s)

    def log_norm(self, sl: slice = slice(None)) -> np.ndarray:
        return self.s + lognorm(self.u[:, sl])


def gradient_flow(model: Any, X: Any, y: Any, *, loss: Any = "mse", lengths: Any = None,
                  max_samples: int = 4) -> GradientFlowReport:
    """Gradient flow through every recurrent layer of ``model`` on the batch ``(X, y)``.

    Args:
        model: a ``Sequential`` (copied to float64; the original is untouched).
        X, y: a batch and its targets, as ``fit`` takes them; the loss is on the last step or
            on every step, as the model's output is.
        loss: a loss name or callable, as in ``fit``.
        lengths: per-sequence lengths for a padded batch.
        max_samples: sequences used for Jacobian norms, product norms and Lyapunov exponents
            (the first live ones).

    Returns:
        A ``GradientFlowReport``: one ``DirectionFlow`` per layer and direction, with a verdict
        (``vanishing``, ``exploding``, ``healthy``), ``to_dict``, ``summary`` and ``plot``.
    """
    from ..losses import get_loss

    if not (isinstance(max_samples, int) and max_samples >= 1):
        raise ValueError(f"gradient_flow: max_samples must be a positive int, got {max_samples!r}")
    if not model.built:
        model.prepare(X, lengths)  # builds it, as predict would
    m = model.copy("float64")
    if not any(isinstance(layer, Recurrent) for layer in m.layers):
        raise ValueError("gradient_flow: the model has no recurrent layer")
    x, mask, single = m.prepare(X, lengths)
    target = np.asarray(y)[None] if single else np.asarray(y)
    if target.ndim == 0 or target.shape[0] != x.shape[1]:
        raise ValueError(f"gradient_flow: X has {x.shape[1]} sequences but y has shape "
                         f"{np.shape(y)}")
    inputs, tape, h = [], [], x
    for layer in m.layers:
        inputs.append(h)
        h, cache, _ = layer.forward(h, mask, None)
        tape.append(cache)
    out_bf = h.swapaxes(0, 1) if h.ndim == 3 else h
    mask_bf = None if mask is None or h.ndim != 3 else mask.T
    value, d = get_loss(loss)(out_bf, target, mask_bf)
    d = np.asarray(d, np.float64)
    d = d.swapaxes(0, 1) if d.ndim == 3 else d
    lowest = min(i for i, layer in enumerate(m.layers) if isinstance(layer, Recurrent))
    d_outs: list[np.ndarray | None] = [None] * len(m.layers)
    for i in range(len(m.layers) - 1, lowest - 1, -1):
        d_outs[i] = d
        if i > lowest:  # the library's BPTT is needed only to reach the layers below
            d = m.layers[i].backward(d, tape[i])
    flows = []
    # One BLAS thread: the walk makes thousands of small SVDs, QRs and products, and
    # OpenBLAS's threads spin between them, fighting rnnkit's (and other processes') for the
    # cores: `rnnkit diagnose --cell lstm` took about 250 s with them on a loaded 2-core
    # machine, 26 s without.
    with threadpool_limits(1, user_api="blas"):
        for i, layer in enumerate(m.layers):
            if isinstance(layer, Recurrent) and d_outs[i] is not None:
                flows.extend(layer_flows(i, layer, inputs[i], mask, d_outs[i], max_samples))
    every_step = h.ndim == 3
    return GradientFlowReport(flows, loss=float(value), every_step=every_step)


def layer_flows(index: int, layer: Recurrent, x: np.ndarray, mask: np.ndarray | None,
                d_out: np.ndarray, max_samples: int) -> list[DirectionFlow]:
    """The flows of one recurrent layer, given its input ``x (T, B, D)`` and the gradient
    ``d_out`` of the loss w.r.t. its output."""
    T, B, _ = x.shape
    H = layer.out_hidden  # h's size (proj_size when the LSTM projects)
    lengths = None if mask is None else mask.sum(axis=0)
    runs = []
    for k, sfx in enumerate(layer.directions):
        p = {key: layer.params[key + sfx] for key in layer.cell.param_shapes(1, layer.bias)}
        flow = cell_flow(layer.cell, p, layer.zoneout)
        xd = x if k == 0 else reverse_padded(x, lengths)
        s0 = np.concatenate(layer.initial_state(B, sfx, np.float64), axis=1)
        runs.append((flow, flow.input_projection(xd), forward_states(flow, xd, s0, mask)))
    dh_out = d_out
    if layer.output == "y":  # back through the readout g, re-run on our own h sequence
        seqs = [S[1:, :, :H] if k == 0 else reverse_padded(S[1:, :, :H], lengths)
                for k, (_, _, (S, _)) in enumerate(runs)]
        h_seq = np.concatenate(seqs, axis=-1)
        if mask is not None:
            h_seq = h_seq * mask[..., None]
        last = np.concatenate([S[-1, :, :H] for _, _, (S, _) in runs], axis=-1)
        h_out = h_seq if layer.return_sequences else last
        _, rcache, _ = layer.readout.forward(h_out, mask if h_out.ndim == 3 else None)
        dh_out = layer.readout.backward(d_out, rcache)
    if mask is not None and dh_out.ndim == 3:
        dh_out = dh_out * mask[..., None]
    out = []
    for k, (flow, xz, (S, sat)) in enumerate(runs):
        part = dh_out[..., k * H : (k + 1) * H]
        if layer.return_sequences:
            direct = part if k == 0 else reverse_padded(part, lengths)
        else:
            direct = np.zeros((T, B, H))  # at each sequence's own last step, not at T
            direct[(T if lengths is None else lengths) - 1, np.arange(B)] = part
        name = f"RNN({layer.cell.act.name})" if layer.kind == "RNN" else layer.kind
        arrays = backward_flow(flow, xz, S, mask, direct, max_samples)
        out.append(summarise(
            layer=index, direction="forward" if k == 0 else "reverse", cell=name,
            hidden=layer.hidden, saturation=sat, **arrays, **w_spectrum(flow)))
    return out


def forward_states(flow: CellFlow, x: np.ndarray, s0: np.ndarray,
                   mask: np.ndarray | None) -> tuple[np.ndarray, dict[str, float]]:
    """``states (T+1, B, n)`` (a padded step carries the state) and saturation fractions over
    the valid steps."""
    xz = flow.input_projection(x)
    T, B = x.shape[:2]
    valid = np.ones((T, B), bool) if mask is None else mask
    S = np.empty((T + 1, B, s0.shape[1]))
    S[0] = s0
    counts: dict[str, float] = {}
    dead: dict[str, np.ndarray] = {}
    for t in range(T):
        new, aux = flow.step(xz[t], S[t])
        S[t + 1] = np.where(valid[t][:, None], new, S[t])
        per_step, always = flow.saturation(aux)
        for key, v in per_step.items():
            counts[key] = counts.get(key, 0.0) + float(v[valid[t]].sum())
        for key, v in always.items():  # a padded step does not revive a dead unit
            dead[key] = dead.get(key, np.ones_like(v)) & (v | ~valid[t][:, None])
    total = valid.sum() * flow.H
    fractions = {key: c / total for key, c in counts.items()}
    fractions.update({key: float(v.mean()) for key, v in dead.items()})
    return S, fractions


def backward_flow(flow: CellFlow, xz: np.ndarray, S: np.ndarray, mask: np.ndarray | None,
                  direct: np.ndarray, max_samples: int) -> dict[str, np.ndarray]:
    """One backward walk over time; every returned series is indexed by step ``t = 1..T``
    (position ``t - 1``), natural logs unless named ``log10``."""
    T, B, H = direct.shape
    n = S.shape[2]
    valid = np.ones((T, B), bool) if mask is None else mask
    last = valid.sum(axis=0) - 1  # each sequence's own last step (0-based)
    eye = np.eye(n)
    total, from_end = ScaledRows(B, n), ScaledRows(B, n)
    log_tot = np.empty((T, B))
    log_end = np.empty((T, B))
    rows = np.arange(min(max_samples, B))
    sample = Products(T, rows, n)
    for t in range(T - 1, -1, -1):
        u = np.zeros((B, n))
        u[:, :H] = direct[t]
        total.add(u)
        from_end.add(np.where((t == last)[:, None], u, 0.0))
        log_tot[t], log_end[t] = total.log_norm(slice(0, H)), from_end.log_norm(slice(0, H))
        _, aux = flow.step(xz[t], S[t])
        J = flow.jacobian(aux, S[t])
        J = np.where(valid[t][:, None, None], J, eye)  # a padded step carries the state
        total.vjp(J)
        from_end.vjp(J)
        sample.step(t, J[rows], valid[t, rows])
    # A dead sequence (its gradient exactly zero some steps back, down to s_0: every relu
    # unit off at one step) has a zero product and λ1 = -inf, which says nothing about the
    # others: when the sample holds one and live sequences are left, it is walked again
    # with live ones.
    live = np.all(np.isfinite(log_end) | (np.arange(T)[:, None] > last), axis=0)
    live &= np.isfinite(from_end.log_norm())
    if not live[rows].all() and live.sum() > live[rows].sum():
        rows = np.concatenate([np.flatnonzero(live), np.flatnonzero(~live)])[: len(rows)]
        sample = Products(T, rows, n)
        for t in range(T - 1, -1, -1):
            _, aux = flow.step(xz[t, rows], S[t, rows])
            ok = valid[t, rows]
            sample.step(t, np.where(ok[:, None, None], flow.jacobian(aux, S[t, rows]), eye), ok)
    return {"log_grad": log_tot, "log_grad_end": log_end, "last": last, "valid": valid,
            **sample.result(last[rows]), "log_grad_s0": total.log_norm()}


class Products:
    """``‖J_t‖_2``, ``‖J_T ⋯ J_{t+1}‖_2`` and the Lyapunov exponents of the product, for the
    sampled sequences ``rows`` (an SVD and a QR per step and sequence: O(n³) each)."""

    def __init__(self, T: int, rows: np.ndarray, n: int) -> None:
        ns = len(rows)
        self.jac_norm = np.full((T, ns), np.nan)
        self.log_prod = np.empty((T, ns))
        # A generic starting frame, not the identity: a relu step's J^T annihilates e_j for
        # every inactive unit j, which would zero a column of an axis-aligned frame for good.
        start = np.linalg.qr(np.random.default_rng(0).standard_normal((n, n)))[0]
        self.Q = np.broadcast_to(start, (ns, n, n)).copy()
        self.M, self.m_scale = np.broadcast_to(np.eye(n), (ns, n, n)).copy(), np.zeros(ns)
        self.lyap = np.zeros((ns, n))

    def step(self, t: int, Js: np.ndarray, ok: np.ndarray) -> None:
        """Step ``t`` (walking back): ``Js (ns, n, n)``, ``ok`` where the step is valid."""
        self.log_prod[t] = self.m_scale + log_or_neginf(np.linalg.norm(self.M, 2, axis=(1, 2)))
        self.jac_norm[t] = np.where(ok, np.linalg.norm(Js, 2, axis=(1, 2)), np.nan)
        self.Q, R = np.linalg.qr(np.swapaxes(Js, 1, 2) @ self.Q)
        self.lyap += log_or_neginf(np.abs(np.diagonal(R, axis1=1, axis2=2)))
        M = np.swapaxes(Js, 1, 2) @ self.M
        scale = np.max(np.abs(M), axis=(1, 2))
        self.m_scale = self.m_scale + log_or_neginf(scale)
        self.M = M / np.where(scale > 0, scale, 1.0)[:, None, None]

    def result(self, last: np.ndarray) -> dict[str, Any]:
        lyap = -np.sort(-self.lyap / (last + 1)[:, None], axis=1)  # descending, per valid step
        # A sequence whose whole product is exactly zero has λ1 = -inf; one such sequence
        # would make the mean -inf. The others are averaged, and all only when none is left.
        live = np.isfinite(lyap[:, 0])
        use = live if live.any() else np.ones(len(live), bool)
        return {"jacobian_norm": mean_valid(self.jac_norm),
                "log_product_norm": self.log_prod[:, use].mean(axis=1),
                "lyapunov": lyap[use].mean(axis=0), "lyapunov_samples": int(use.sum())}


def w_spectrum(flow: CellFlow) -> dict[str, Any]:
    """Singular values of ``W_h (G·H, H)``, and the spectral radius and singular values of
    each ``(H, H)`` gate block. They differ for gated cells: four orthogonal blocks have
    radius 1 each, but stacked into ``(4H, H)`` every singular value is ``√4 = 2``."""
    radius = {g: float(np.max(np.abs(np.linalg.eigvals(flow.block(k)))))
              for k, g in enumerate(flow.gate_names)}
    blocks = {g: np.linalg.svd(flow.block(k), compute_uv=False)
              for k, g in enumerate(flow.gate_names)}
    return {"singular_values": np.linalg.svd(flow.W, compute_uv=False),
            "gate_singular_values": blocks, "gate_spectral_radius": radius,
            "spectral_radius": max(radius.values())}
