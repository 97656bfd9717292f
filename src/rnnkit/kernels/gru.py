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
from ._jit import act_inplace, dact_mul, jit
from ._sync import barrier


@jit
def fwd_step(t, lo, hi, hz, xz, h0, b_hn, has_bhn, hs, gates, hzn, mask, has_mask, ca, cg):
    """Step ``t`` for the hidden units ``lo:hi`` (their three gate columns)."""
    one = xz.dtype.type(1)
    h_prev = h0 if t == 0 else hs[t - 1]
    H, n = hs.shape[2], hi - lo
    bn = b_hn[lo:hi] if has_bhn else b_hn
    for b in range(hs.shape[1]):
        if has_mask and not mask[t, b]:
            hs[t, b, lo:hi] = h_prev[b, lo:hi]
            continue
        # 1-D views of this row's units and loops from 0 over them: such loops vectorize
        # (3-D indexing, an index that might be negative, or many arrays that might alias,
        # do not)
        x, z, gt = xz[t, b], hz[b], gates[t, b]
        r, u, nn = gt[lo:hi], gt[H + lo : H + hi], gt[2 * H + lo : 2 * H + hi]
        xr, xu, xn = x[lo:hi], x[H + lo : H + hi], x[2 * H + lo : 2 * H + hi]
        zr, zu, zn = z[lo:hi], z[H + lo : H + hi], z[2 * H + lo : 2 * H + hi]
        hp, h, hn = h_prev[b, lo:hi], hs[t, b, lo:hi], hzn[t, b, lo:hi]
        for j in range(n):
            r[j] = xr[j] + zr[j]
        for j in range(n):
            u[j] = xu[j] + zu[j]
        act_inplace(r, cg)
        act_inplace(u, cg)
        if has_bhn:
            for j in range(n):
                hn[j] = zn[j] + bn[j]
        else:
            for j in range(n):
                hn[j] = zn[j]
        for j in range(n):
            nn[j] = xn[j] + r[j] * hn[j]
        act_inplace(nn, ca)
        for j in range(n):
            h[j] = (one - u[j]) * nn[j] + u[j] * hp[j]


@jit
def bwd_step(t, lo, hi, dh, h0, hs, gates, hzn, dhs, has_seq, dxz, dhz, mask, has_mask, ca,
             cg):
    """Writes ``dxz[t]``, ``dhz[t]`` and leaves in ``dh`` the part of ``∂L/∂h_{t-1}`` that
    does not go through ``W_h`` (``dh * u``, or all of ``dh`` on a masked row), for the units
    ``lo:hi``."""
    one, zero = dh.dtype.type(1), dh.dtype.type(0)
    h_prev = h0 if t == 0 else hs[t - 1]
    H, n = dh.shape[1], hi - lo
    for b in range(dh.shape[0]):
        d = dh[b, lo:hi]  # 1-D views, loops from 0: they vectorize
        if has_seq:
            s = dhs[t, b, lo:hi]
            for j in range(n):
                d[j] += s[j]
        dx, dz = dxz[t, b], dhz[t, b]
        dxr, dxu, dxn = dx[lo:hi], dx[H + lo : H + hi], dx[2 * H + lo : 2 * H + hi]
        dzr, dzu, dzn = dz[lo:hi], dz[H + lo : H + hi], dz[2 * H + lo : 2 * H + hi]
        if has_mask and not mask[t, b]:
            for v in (dxr, dxu, dxn, dzr, dzu, dzn):
                v[:] = zero
            continue
        gt, hn, hp = gates[t, b], hzn[t, b, lo:hi], h_prev[b, lo:hi]
        r, u, nn = gt[lo:hi], gt[H + lo : H + hi], gt[2 * H + lo : 2 * H + hi]
        for j in range(n):  # dan
            dxn[j] = d[j] * (one - u[j])
        dact_mul(nn, dxn, ca)
        for j in range(n):  # dar
            dxr[j] = dxn[j] * hn[j]
        dact_mul(r, dxr, cg)
        for j in range(n):  # dau
            dxu[j] = d[j] * (hp[j] - nn[j])
        dact_mul(u, dxu, cg)
        for j in range(n):
            dzr[j] = dxr[j]
        for j in range(n):
            dzu[j] = dxu[j]
        for j in range(n):
            dzn[j] = dxn[j] * r[j]
        for j in range(n):
            d[j] = d[j] * u[j]


@jit
def forward_loop(xz, WhT, h0, b_hn, has_bhn, hs, gates, hzn, mask, has_mask, ca, cg, lo, hi,
                 sync, party):
    H = hs.shape[2]
    hz = np.empty((hs.shape[1], 3 * H), hs.dtype)
    for t in range(hs.shape[0]):
        h_prev = h0 if t == 0 else hs[t - 1]
        if hi - lo == H:
            matmul(h_prev, WhT, hz, False)
        else:
            for k in range(3):
                matmul(h_prev, WhT[:, k * H + lo : k * H + hi], hz[:, k * H + lo : k * H + hi],
                       False)
        fwd_step(t, lo, hi, hz, xz, h0, b_hn, has_bhn, hs, gates, hzn, mask, has_mask, ca, cg)
        if not barrier(sync, party, t):
            return


@jit
def backward_loop(W_h, dh, h0, hs, gates, hzn, dhs, has_seq, dxz, dhz, mask, has_mask, ca, cg,
                  lo, hi, sync, party):
    T = hs.shape[0]
    for t in range(T - 1, -1, -1):
        bwd_step(t, lo, hi, dh, h0, hs, gates, hzn, dhs, has_seq, dxz, dhz, mask, has_mask, ca,
                 cg)
        if not barrier(sync, party, T - 1 - t):
            return
        matmul(dhz[t], W_h[:, lo:hi], dh[:, lo:hi], True)
