"""Compiled time loop of the GRU layer (the equations of ``cells/gru.py``), "reset after",
gates r, z (here u), n.

Forward, per step ``t`` and unmasked row ``b``, γ the gate and φ the candidate activation::

    hz = h_prev @ W_h.T;  hz_n = hz[2H:] + b_hn      # the GEMM in or outside the loop
    r = γ(xz_r + hz_r);  u = γ(xz_u + hz_u)
    n = φ(xz_n + r * hz_n)
    h = (1 - u) * n + u * h_prev                     # a masked row carries h_prev

Backward, given ``dh``::

    dan = dh * (1 - u) * φ'(n)
    dar = dan * hz_n * γ'(r);  dau = dh * (h_prev - n) * γ'(u)
    dxz[t] = [dar, dau, dan];  dhz[t] = [dar, dau, dan * r]
    dh_prev = dh * u + dhz[t] @ W_h

Tape: ``gates (T, B, 3H)`` holding r, u, n and ``hzn (T, B, H)`` besides ``hs``.
"""

from __future__ import annotations

import numpy as np

from ._gemm import matmul
from ._jit import act_inplace, dact_mul, jit


@jit
def fwd_step(t, hz, xz, h0, b_hn, has_bhn, hs, gates, hzn, mask, has_mask, ca, cg):
    one = xz.dtype.type(1)
    h_prev = h0 if t == 0 else hs[t - 1]
    B, H = hs.shape[1], hs.shape[2]
    for b in range(B):
        if has_mask and not mask[t, b]:
            hs[t, b, :] = h_prev[b, :]
            continue
        # 1-D rows, one array written per loop: such loops vectorize (3-D indexing, or many
        # arrays that might alias, do not)
        x, z, gt, hp, hr, nr = xz[t, b], hz[b], gates[t, b], h_prev[b], hs[t, b], hzn[t, b]
        for k in range(2 * H):
            gt[k] = x[k] + z[k]
        act_inplace(gt[: 2 * H], cg)
        if has_bhn:
            for j in range(H):
                nr[j] = z[2 * H + j] + b_hn[j]
        else:
            for j in range(H):
                nr[j] = z[2 * H + j]
        for j in range(H):
            gt[2 * H + j] = x[2 * H + j] + gt[j] * nr[j]
        act_inplace(gt[2 * H :], ca)
        for j in range(H):
            u, n = gt[H + j], gt[2 * H + j]
            hr[j] = (one - u) * n + u * hp[j]


@jit
def bwd_step(t, dh, h0, hs, gates, hzn, dhs, has_seq, dxz, dhz, mask, has_mask, ca, cg):
    """Writes ``dxz[t]``, ``dhz[t]`` and leaves in ``dh`` the part of ``∂L/∂h_{t-1}`` that
    does not go through ``W_h`` (``dh * u``, or all of ``dh`` on a masked row)."""
    one, zero = dh.dtype.type(1), dh.dtype.type(0)
    h_prev = h0 if t == 0 else hs[t - 1]
    B, H = dh.shape
    for b in range(B):
        d = dh[b]  # 1-D rows: loops over them vectorize
        if has_seq:
            d += dhs[t, b]
        if has_mask and not mask[t, b]:
            dxz[t, b, :] = zero
            dhz[t, b, :] = zero
            continue
        gt, dx, dz, nr, hp = gates[t, b], dxz[t, b], dhz[t, b], hzn[t, b], h_prev[b]
        for j in range(H):  # dan
            dx[2 * H + j] = d[j] * (one - gt[H + j])
        dact_mul(gt[2 * H :], dx[2 * H :], ca)
        for j in range(H):  # dar
            dx[j] = dx[2 * H + j] * nr[j]
        dact_mul(gt[:H], dx[:H], cg)
        for j in range(H):  # dau
            dx[H + j] = d[j] * (hp[j] - gt[2 * H + j])
        dact_mul(gt[H : 2 * H], dx[H : 2 * H], cg)
        for k in range(2 * H):
            dz[k] = dx[k]
        for j in range(H):
            dz[2 * H + j] = dx[2 * H + j] * gt[j]
        for j in range(H):
            d[j] = d[j] * gt[H + j]


@jit
def forward_loop(xz, WhT, h0, b_hn, has_bhn, hs, gates, hzn, mask, has_mask, ca, cg):
    hz = np.empty((hs.shape[1], WhT.shape[1]), hs.dtype)
    for t in range(hs.shape[0]):
        matmul(h0 if t == 0 else hs[t - 1], WhT, hz, False)
        fwd_step(t, hz, xz, h0, b_hn, has_bhn, hs, gates, hzn, mask, has_mask, ca, cg)


@jit
def backward_loop(W_h, dh, h0, hs, gates, hzn, dhs, has_seq, dxz, dhz, mask, has_mask, ca, cg):
    for t in range(hs.shape[0] - 1, -1, -1):
        bwd_step(t, dh, h0, hs, gates, hzn, dhs, has_seq, dxz, dhz, mask, has_mask, ca, cg)
        matmul(dhz[t], W_h, dh, True)
