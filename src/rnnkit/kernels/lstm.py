"""Compiled time loop of the LSTM layer (the equations of ``cells/lstm.py``), gates i, f, g, o.

Forward, per step ``t`` and unmasked row ``b``, γ the gate and φ the cell activation::

    z = xz[t] + h_prev @ W_h.T                       # (4H,); the GEMM in or outside the loop
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
from ._jit import act_inplace, act_into, dact_mul, jit


@jit
def fwd_step(t, hz, xz, h0, c0, hs, cs, tcs, gates, mask, has_mask, ca, cg):
    h_prev = h0 if t == 0 else hs[t - 1]
    c_prev = c0 if t == 0 else cs[t - 1]
    B, H = hs.shape[1], hs.shape[2]
    for b in range(B):
        if has_mask and not mask[t, b]:
            hs[t, b, :] = h_prev[b, :]
            cs[t, b, :] = c_prev[b, :]
            continue
        # 1-D rows, one array written per loop, activations a row at a time: such loops
        # vectorize (3-D indexing, arrays that might alias, or a test per element do not)
        x, z, gt, cp = xz[t, b], hz[b], gates[t, b], c_prev[b]
        hr, cr, tr = hs[t, b], cs[t, b], tcs[t, b]
        for k in range(4 * H):
            gt[k] = x[k] + z[k]
        act_inplace(gt[: 2 * H], cg)
        act_inplace(gt[2 * H : 3 * H], ca)
        act_inplace(gt[3 * H :], cg)
        for j in range(H):
            cr[j] = gt[H + j] * cp[j] + gt[j] * gt[2 * H + j]
        act_into(cr, tr, ca)
        for j in range(H):
            hr[j] = gt[3 * H + j] * tr[j]


@jit
def bwd_step(t, dh, dc, c0, cs, tcs, gates, dhs, has_seq, dxz, mask, has_mask, ca, cg):
    """Writes ``dxz[t]``; leaves in ``dh`` the carried part of ``∂L/∂h_{t-1}`` (0 unless
    masked) and in ``dc`` all of ``∂L/∂c_{t-1}``."""
    zero = dh.dtype.type(0)
    c_prev = c0 if t == 0 else cs[t - 1]
    B, H = dh.shape
    for b in range(B):
        d, dcr = dh[b], dc[b]  # 1-D rows: loops over them vectorize
        if has_seq:
            d += dhs[t, b]
        if has_mask and not mask[t, b]:
            dxz[t, b, :] = zero
            continue
        gt, dz, tr, cp = gates[t, b], dxz[t, b], tcs[t, b], c_prev[b]
        s = dz[:H]  # scratch for dh * o * φ'(c) before dz_i is written
        for j in range(H):
            s[j] = d[j] * gt[3 * H + j]
        dact_mul(tr, s, ca)
        for j in range(H):
            dcr[j] = dcr[j] + s[j]
        for j in range(H):
            dz[j] = dcr[j] * gt[2 * H + j]
        dact_mul(gt[:H], dz[:H], cg)
        for j in range(H):
            dz[H + j] = dcr[j] * cp[j]
        dact_mul(gt[H : 2 * H], dz[H : 2 * H], cg)
        for j in range(H):
            dz[2 * H + j] = dcr[j] * gt[j]
        dact_mul(gt[2 * H : 3 * H], dz[2 * H : 3 * H], ca)
        for j in range(H):  # do = dh * tc
            dz[3 * H + j] = d[j] * tr[j]
        dact_mul(gt[3 * H :], dz[3 * H :], cg)
        for j in range(H):
            dcr[j] = dcr[j] * gt[H + j]
        d[:] = zero


@jit
def forward_loop(xz, WhT, h0, c0, hs, cs, tcs, gates, mask, has_mask, ca, cg):
    hz = np.empty((hs.shape[1], WhT.shape[1]), hs.dtype)
    for t in range(hs.shape[0]):
        matmul(h0 if t == 0 else hs[t - 1], WhT, hz, False)
        fwd_step(t, hz, xz, h0, c0, hs, cs, tcs, gates, mask, has_mask, ca, cg)


@jit
def backward_loop(W_h, dh, dc, c0, cs, tcs, gates, dhs, has_seq, dxz, mask, has_mask, ca, cg):
    for t in range(cs.shape[0] - 1, -1, -1):
        bwd_step(t, dh, dc, c0, cs, tcs, gates, dhs, has_seq, dxz, mask, has_mask, ca, cg)
        matmul(dxz[t], W_h, dh, True)
