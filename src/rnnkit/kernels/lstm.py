"""Compiled time loop of the LSTM layer (the equations of ``cells/lstm.py``), gates i, f, g, o.

Forward, per step ``t`` and unmasked row ``b``, γ the gate and φ the cell activation::

    z = xz[t] + h_prev @ W_h.T                       # (4H,); the micro-kernel of _gemm.py
    i, f, g, o = γ(z_i), γ(z_f), φ(z_g), γ(z_o)      # stored in gates[t]
    c = f * c_prev + i * g;  tc = φ(c);  h = o * tc  # stored in cs[t], tcs[t], hs[t]

A masked row carries ``(h_prev, c_prev)``. Backward, given ``dh`` and ``dc``::

    do = dh * tc
    dc = dc + dh * o * φ'(tc)
    dz = [dc * g * γ'(i), dc * c_prev * γ'(f), dc * i * φ'(g), do * γ'(o)]
    dxz[t] = dhz[t] = dz;  dh_prev = dz @ W_h;  dc_prev = dc * f

Derivatives come from the stored outputs (γ'(i) = i (1 - i) for a sigmoid), so the tape is
``gates (T, B, 4H)``, ``cs`` and ``tcs (T, B, H)`` besides ``hs``.
"""

from __future__ import annotations

import numpy as np

from ._gemm import matmul
from ._jit import act_inplace, act_into, dact_mul, jit, nonneg
from ._sync import barrier


@jit
def fwd_step(t, lo, hi, hz, xz, h0, c0, hs, cs, tcs, gates, mask, has_mask, ca, cg):
    """Step ``t`` for the hidden units ``lo:hi`` (their four gate columns)."""
    h_prev = h0 if t == 0 else hs[t - 1]
    # cs, tcs and gates hold all steps for a backward, or are buffers of 2, 1, 1 steps
    tk, tg = t % cs.shape[0], t % gates.shape[0]
    c_prev = c0 if t == 0 else cs[(t - 1) % cs.shape[0]]
    H, n, lo = nonneg(hs.shape[2], hi - lo, lo)
    for b in range(hs.shape[1]):
        if has_mask and not mask[t, b]:
            hs[t, b, lo:hi] = h_prev[b, lo:hi]
            cs[tk, b, lo:hi] = c_prev[b, lo:hi]
            continue
        # 1-D views that start at unit lo, indices k*H + j with j from 0 (gate k of unit
        # lo + j): such loops vectorize (3-D indexing, an index that might be negative, or
        # a test per element do not)
        x, z, gt = xz[t, b, lo:], hz[b], gates[tg, b, lo:]  # hz: this slice's own
        cp, c, tc, h = c_prev[b, lo:hi], cs[tk, b, lo:hi], tcs[tg, b, lo:hi], hs[t, b, lo:hi]
        for k in range(4):
            o, q = k * H, k * n
            for j in range(n):
                gt[o + j] = x[o + j] + z[q + j]
        act_inplace(gt[:n], cg)  # i
        act_inplace(gt[H : H + n], cg)  # f
        act_inplace(gt[2 * H : 2 * H + n], ca)  # g
        act_inplace(gt[3 * H : 3 * H + n], cg)  # o
        for j in range(n):
            c[j] = gt[H + j] * cp[j] + gt[j] * gt[2 * H + j]
        act_into(c, tc, ca)
        for j in range(n):
            h[j] = gt[3 * H + j] * tc[j]


@jit
def bwd_step(t, lo, hi, dh, dc, c0, cs, tcs, gates, dhs, has_seq, dxz, mask, has_mask, ca, cg):
    """Writes ``dxz[t]``; leaves in ``dh`` the carried part of ``∂L/∂h_{t-1}`` (0 unless
    masked) and in ``dc`` all of ``∂L/∂c_{t-1}``; for the units ``lo:hi``."""
    zero = dh.dtype.type(0)
    c_prev = c0 if t == 0 else cs[t - 1]
    H, n, lo = nonneg(dh.shape[1], hi - lo, lo)
    for b in range(dh.shape[0]):
        d, dcr = dh[b, lo:hi], dc[b, lo:hi]  # views from unit lo, loops from 0: vectorized
        if has_seq:
            s = dhs[t, b, lo:hi]
            for j in range(n):
                d[j] += s[j]
        dz = dxz[t, b, lo:]  # gate k of unit lo + j at k*H + j, as in gt
        if has_mask and not mask[t, b]:
            for k in range(4):
                dz[k * H : k * H + n] = zero
            continue
        gt, tc, cp = gates[t, b, lo:], tcs[t, b, lo:hi], c_prev[b, lo:hi]
        di = dz[:n]  # scratch for dh * o * φ'(c) until dz_i is written
        for j in range(n):
            di[j] = d[j] * gt[3 * H + j]
        dact_mul(tc, di, ca)
        for j in range(n):
            dcr[j] = dcr[j] + di[j]
        for j in range(n):
            dz[j] = dcr[j] * gt[2 * H + j]
        dact_mul(gt[:n], dz[:n], cg)
        for j in range(n):
            dz[H + j] = dcr[j] * cp[j]
        dact_mul(gt[H : H + n], dz[H : H + n], cg)
        for j in range(n):
            dz[2 * H + j] = dcr[j] * gt[j]
        dact_mul(gt[2 * H : 2 * H + n], dz[2 * H : 2 * H + n], ca)
        for j in range(n):  # do = dh * tc
            dz[3 * H + j] = d[j] * tc[j]
        dact_mul(gt[3 * H : 3 * H + n], dz[3 * H : 3 * H + n], cg)
        for j in range(n):
            dcr[j] = dcr[j] * gt[H + j]
        d[:] = zero


@jit
def forward_loop(xz, WhT, h0, c0, hs, cs, tcs, gates, mask, has_mask, ca, cg, lo, hi, sync,
                 party):
    none = np.empty(0, xz.dtype)  # no bias
    hz = np.empty((hs.shape[1], WhT.shape[1]), hs.dtype)
    w, z = WhT[:, :], hz[:, :]  # typed as the backward's column slices: one compiled product
    for t in range(hs.shape[0]):
        matmul(h0 if t == 0 else hs[t - 1], w, z, False, none)
        fwd_step(t, lo, hi, hz, xz, h0, c0, hs, cs, tcs, gates, mask, has_mask, ca, cg)
        if not barrier(sync, party, t):
            return


@jit
def backward_loop(W_h, dh, dc, c0, cs, tcs, gates, dhs, has_seq, dxz, mask, has_mask, ca, cg,
                  lo, hi, sync, party):
    none = np.empty(0, W_h.dtype)  # no bias
    w, d = W_h[:, lo:hi], dh[:, lo:hi]  # this slice's columns
    T = cs.shape[0]
    for t in range(T - 1, -1, -1):
        bwd_step(t, lo, hi, dh, dc, c0, cs, tcs, gates, dhs, has_seq, dxz, mask, has_mask, ca,
                 cg)
        if not barrier(sync, party, T - 1 - t):
            return
        matmul(dxz[t], w, d, True, none)
