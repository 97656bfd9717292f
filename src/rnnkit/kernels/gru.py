"""Compiled time loop of the GRU layer (the equations of ``cells/gru.py``), "reset after",
gates r, z (here u), n.

Forward, per step ``t`` and unmasked row ``b``, γ the gate and φ the candidate activation::

    hz = h_prev @ W_h.T;  hz_n = hz[2H:] + b_hn      # the micro-kernel of _gemm.py
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
from ._jit import act_inplace, dact_mul, jit, nonneg
from ._sync import barrier


@jit
def fwd_step(t, lo, hi, hz, xz, h0, b_hn, has_bhn, hs, gates, hzn, mask, has_mask, ca, cg):
    """Step ``t`` for the hidden units ``lo:hi`` (their three gate columns)."""
    one = xz.dtype.type(1)
    h_prev = h0 if t == 0 else hs[t - 1]
    tg = t % gates.shape[0]  # gates and hzn hold all steps for a backward, or just this one
    H, n, lo = nonneg(hs.shape[2], hi - lo, lo)
    bn = b_hn[lo:] if has_bhn else b_hn
    for b in range(hs.shape[1]):
        if has_mask and not mask[t, b]:
            hs[t, b, lo:hi] = h_prev[b, lo:hi]
            continue
        # 1-D views that start at unit lo, indices k*H + j with j from 0 (gate k of unit
        # lo + j): such loops vectorize (3-D indexing, an index that might be negative, or
        # many arrays that might alias, do not)
        x, z, gt = xz[t, b, lo:], hz[b], gates[tg, b, lo:]  # hz: this slice's own
        hp, h, hn = h_prev[b, lo:hi], hs[t, b, lo:hi], hzn[tg, b, lo:hi]
        for k in range(2):
            o, q = k * H, k * n
            for j in range(n):
                gt[o + j] = x[o + j] + z[q + j]
        act_inplace(gt[:n], cg)  # r
        act_inplace(gt[H : H + n], cg)  # u
        if has_bhn:
            for j in range(n):
                hn[j] = z[2 * n + j] + bn[j]
        else:
            for j in range(n):
                hn[j] = z[2 * n + j]
        for j in range(n):
            gt[2 * H + j] = x[2 * H + j] + gt[j] * hn[j]
        act_inplace(gt[2 * H : 2 * H + n], ca)  # n
        for j in range(n):
            u = gt[H + j]
            h[j] = (one - u) * gt[2 * H + j] + u * hp[j]


@jit
def bwd_step(t, lo, hi, dh, h0, hs, gates, hzn, dhs, has_seq, dxz, dhz, mask, has_mask, ca,
             cg):
    """Writes ``dxz[t]``, ``dhz[t]`` and leaves in ``dh`` the part of ``∂L/∂h_{t-1}`` that
    does not go through ``W_h`` (``dh * u``, or all of ``dh`` on a masked row), for the units
    ``lo:hi``."""
    one, zero = dh.dtype.type(1), dh.dtype.type(0)
    h_prev = h0 if t == 0 else hs[t - 1]
    H, n, lo = nonneg(dh.shape[1], hi - lo, lo)
    for b in range(dh.shape[0]):
        d = dh[b, lo:hi]  # views from unit lo, loops from 0: they vectorize
        if has_seq:
            s = dhs[t, b, lo:hi]
            for j in range(n):
                d[j] += s[j]
        dx, dz = dxz[t, b, lo:], dhz[t, b, lo:]  # gate k of unit lo + j at k*H + j
        if has_mask and not mask[t, b]:
            for k in range(3):
                dx[k * H : k * H + n] = zero
                dz[k * H : k * H + n] = zero
            continue
        gt, hn, hp = gates[t, b, lo:], hzn[t, b, lo:hi], h_prev[b, lo:hi]
        for j in range(n):  # dan
            dx[2 * H + j] = d[j] * (one - gt[H + j])
        dact_mul(gt[2 * H : 2 * H + n], dx[2 * H : 2 * H + n], ca)
        for j in range(n):  # dar
            dx[j] = dx[2 * H + j] * hn[j]
        dact_mul(gt[:n], dx[:n], cg)
        for j in range(n):  # dau
            dx[H + j] = d[j] * (hp[j] - gt[2 * H + j])
        dact_mul(gt[H : H + n], dx[H : H + n], cg)
        for k in range(2):
            o = k * H
            for j in range(n):
                dz[o + j] = dx[o + j]
        for j in range(n):
            dz[2 * H + j] = dx[2 * H + j] * gt[j]
        for j in range(n):
            d[j] = d[j] * gt[H + j]


@jit
def forward_loop(xz, WhT, h0, b_hn, has_bhn, hs, gates, hzn, mask, has_mask, ca, cg, lo, hi,
                 sync, party):
    none = np.empty(0, xz.dtype)  # no bias
    hz = np.empty((hs.shape[1], WhT.shape[1]), hs.dtype)
    w, z = WhT[:, :], hz[:, :]  # typed as the backward's column slices: one compiled product
    for t in range(hs.shape[0]):
        matmul(h0 if t == 0 else hs[t - 1], w, z, False, none)
        fwd_step(t, lo, hi, hz, xz, h0, b_hn, has_bhn, hs, gates, hzn, mask, has_mask, ca, cg)
        if not barrier(sync, party, t):
            return


@jit
def backward_loop(W_h, dh, h0, hs, gates, hzn, dhs, has_seq, dxz, dhz, mask, has_mask, ca, cg,
                  lo, hi, sync, party):
    none = np.empty(0, W_h.dtype)  # no bias
    w, d = W_h[:, lo:hi], dh[:, lo:hi]  # this slice's columns
    T = hs.shape[0]
    for t in range(T - 1, -1, -1):
        bwd_step(t, lo, hi, dh, h0, hs, gates, hzn, dhs, has_seq, dxz, dhz, mask, has_mask, ca,
                 cg)
        if not barrier(sync, party, T - 1 - t):
            return
        matmul(dhz[t], w, d, True, none)
