"""Compiled time loop of the GRU layer (the equations of ``cells/gru.py``), "reset after",
gates r, z (here u), n.

Forward, per step ``t`` and unmasked row ``b``, γ the gate and φ the candidate activation::

    xz = x_t @ W_x.T + b;  hz = h_prev @ W_h.T       # the micro-kernel of _gemm.py
    hz_n = hz[2H:] + b_hn
    r = γ(xz_r + hz_r);  u = γ(xz_u + hz_u)
    n = φ(xz_n + r * hz_n)
    h = (1 - u) * n + u * h_prev                     # a masked row carries h_prev

Backward, given ``dh``::

    dan = dh * (1 - u) * φ'(n)
    dar = dan * hz_n * γ'(r);  dau = dh * (h_prev - n) * γ'(u)
    dxz[t] = [dar, dau, dan];  dhz[t] = [dar, dau, dan * r]
    dh_prev = dh * u + dhz[t] @ W_h

Tape: ``gates (T, B, 3H)`` holding r, u, n and ``hzn (T, B, H)`` besides ``hs``. For memory
(a training step's peak, measured against PyTorch's): the input projection is made step by
step (no array of it over all steps), the backward writes ``dxz[t]`` over ``gates[t]`` once
read, and keeps of ``dhz`` only its n part (the r and u parts equal ``dxz``'s), written over
``hzn[t]`` once read (``dhzn`` may be ``hzn``). The loops run the batch rows ``b0:b1``
(independent sequences: parts of the batch run on separate threads).

Recurrent dropout (``r (B, H)``, ``has_r``; cells/base.py): the product is made of
``hd = h_prev * r`` (scratch ``hd (B, H)``), and the backward's ``dhz @ W_h`` goes through
``sd (B, H)`` into ``dh += sd * r``; the layer makes ``dW_h`` from ``h * r``.

Zoneout (``zh (T or 1, B or 1, H)``: a mask per step, or the rate at inference; ``has_zh``):
``h = zh * h_prev + (1 - zh) * h_cell``; backward ``(1 - zh) * dh`` goes through the cell and
``zh * dh`` straight to ``h_prev`` (scratch ``kh (B, H)``).

Layer norm (``has_ln``; cells/gru.py): the step's products come without ``b``; each row's
``xz = g_x * LN(xz) + b`` and ``hz = g_h * LN(hz)`` are made in place before the step above,
the normalised parts kept in ``xh``, ``hh (T, B, 3H)``, their ``1 / std`` in ``iv (T, B,
2)``. Backward: ``db += dxz``, ``db_hn += dhz_n``, then ``LN_back`` of ``dxz`` over ``xh[t]``
and of ``dhz`` over ``hh[t]``, which makes ``dh_prev``'s product with ``W_h``; the gains' and
biases' gradients summed into ``acc``, one per part of the batch.
"""

from __future__ import annotations

import numpy as np

from ._gemm import matmul, matvec
from ._jit import (
    act_inplace,
    add_dropped,
    borrowed,
    copy,
    dact_mul,
    dropped,
    inline,
    jit,
    ln_back_row,
    ln_row,
    nonneg,
    zone_mix,
    zone_split,
)


@inline
def fwd_step(t, b0, b1, xz, hz, h0, b_hn, has_bhn, hs, gates, hzn, mask, has_mask, ca, cg, zh,
             has_zh, xh, hh, iv, lnp, has_ln):
    """Step ``t`` for the rows ``b0:b1``; ``xz[b]`` and ``hz[b]`` hold row ``b``'s input and
    hidden projections (``has_ln``: without ``b``, normalised here in place, ``lnp``: g_x,
    g_h, b, the normalised parts kept in ``xh``, ``hh``, their ``1 / std`` in ``iv``)."""
    one = xz.dtype.type(1)
    h_prev = h0 if t == 0 else hs[t - 1]
    tg = t % gates.shape[0]  # gates and hzn hold all steps for a backward, or just this one
    tl = t % xh.shape[0]
    H = nonneg(hs.shape[2])
    for b in range(b0, b1):
        if has_mask and not mask[t, b]:
            copy(h_prev[b], hs[t, b])
            continue
        # 1-D views, gate k of unit j at k*H + j, loops from 0: they vectorize (3-D
        # indexing, an index that might be negative, or many arrays that might alias, do not)
        x, z, gt = xz[b], hz[b], gates[tg, b]
        hp, h, hn = h_prev[b], hs[t, b], hzn[tg, b]
        if has_ln:
            G, x_hat, h_hat = 3 * H, xh[tl, b], hh[tl, b]
            iv[tl, b, 0] = ln_row(x, x_hat)
            iv[tl, b, 1] = ln_row(z, h_hat)
            gx, gh, bl = lnp[:G], lnp[G : 2 * G], lnp[2 * G :]
            for j in range(G):
                x[j] = gx[j] * x_hat[j] + bl[j]
            for j in range(G):
                z[j] = gh[j] * h_hat[j]
        for j in range(2 * H):
            gt[j] = x[j] + z[j]
        act_inplace(gt[: 2 * H], cg)  # r, u
        if has_bhn:
            for j in range(H):
                hn[j] = z[2 * H + j] + b_hn[j]
        else:
            for j in range(H):
                hn[j] = z[2 * H + j]
        for j in range(H):
            gt[2 * H + j] = x[2 * H + j] + gt[j] * hn[j]
        act_inplace(gt[2 * H :], ca)  # n
        for j in range(H):
            u = gt[H + j]
            h[j] = (one - u) * gt[2 * H + j] + u * hp[j]
        if has_zh:
            zone_mix(zh[t % zh.shape[0], b % zh.shape[1]], hp, h, h)


@inline
def bwd_step(t, b0, b1, dh, h0, hs, gates, hzn, dhs, has_seq, dhzn, mask, has_mask, ca, cg,
             rows, zh, has_zh, kh, xh, hh, iv, lnp, acc, has_ln):
    """Writes ``dxz[t]`` over ``gates[t]`` and the n part of ``dhz[t]`` into ``dhzn[t]``, and
    leaves in ``dh`` the part of ``∂L/∂h_{t-1}`` that does not go through ``W_h`` (``dh * u``
    plus the zoned-out part, or all of ``dh`` on a masked row), for the rows ``b0:b1``;
    ``rows (B, 3H)`` is scratch. With ``has_ln`` the gradients of the projections before the
    norms go into ``xh[t]`` and ``hh[t]``, the parameters' into ``acc`` (g_x, g_h, b, b_hn)."""
    one, zero = dh.dtype.type(1), dh.dtype.type(0)
    h_prev = h0 if t == 0 else hs[t - 1]
    H = nonneg(dh.shape[1])
    for b in range(b0, b1):
        d = dh[b]  # 1-D views, loops from 0: they vectorize
        if has_seq:
            s = dhs[t, b]
            for j in range(H):
                d[j] += s[j]
        gt, dn = gates[t, b], dhzn[t, b]  # gate k of unit j at k*H + j
        if has_mask and not mask[t, b]:
            gt[:] = zero
            dn[:] = zero
            if has_ln:
                xh[t, b][:] = zero
                hh[t, b][:] = zero
            continue
        if has_zh:  # zoned out: straight to h_prev; the rest through the cell
            zone_split(zh[t % zh.shape[0], b % zh.shape[1]], d, kh[b], d)
        hn, hp, dx = hzn[t, b], h_prev[b], rows[b]
        for j in range(H):  # dan
            dx[2 * H + j] = d[j] * (one - gt[H + j])
        dact_mul(gt[2 * H :], dx[2 * H :], ca)
        for j in range(H):  # dar; hn is read here, before dn (it may be hn) is written
            dx[j] = dx[2 * H + j] * hn[j]
        for j in range(H):  # dau
            dx[H + j] = d[j] * (hp[j] - gt[2 * H + j])
        dact_mul(gt[: 2 * H], dx[: 2 * H], cg)
        for j in range(H):
            dn[j] = dx[2 * H + j] * gt[j]
        if has_zh:
            k = kh[b]
            for j in range(H):
                d[j] = d[j] * gt[H + j] + k[j]
        else:
            for j in range(H):
                d[j] = d[j] * gt[H + j]
        copy(dx, gt)  # r, u, n are read: dxz in their place
        if has_ln:  # db, db_hn; dxz through its norm; dx becomes dhz, through its own
            G = 3 * H
            ab, an = acc[2 * G : 3 * G], acc[3 * G :]
            for j in range(G):
                ab[j] += dx[j]
            for j in range(H):
                an[j] += dn[j]
            ln_back_row(dx, xh[t, b], iv[t, b, 0], lnp[:G], acc[:G], xh[t, b])
            for j in range(H):
                dx[2 * H + j] = dn[j]
            ln_back_row(dx, hh[t, b], iv[t, b, 1], lnp[G : 2 * G], acc[G : 2 * G], hh[t, b])


@jit
def one_step(W_x, x, b, W_h, h0, b_hn, has_bhn, hs, mask, has_mask, ca, cg):
    """One step of one sequence without a tape (streaming: ``x (D,)``, ``hs (1, 1, H)``),
    products and step in one call. ``b`` empty: no bias."""
    GH, dt = W_h.shape[0], hs.dtype
    xz, hz = np.empty((1, GH), dt), np.empty((1, GH), dt)
    gates, hzn = np.empty((1, 1, GH), dt), np.empty(hs.shape, dt)
    matvec(W_x, x, b, xz[0])
    matvec(W_h, h0[0], b[:0], hz[0])
    none = np.zeros((1, 1, 1), dt)
    fwd_step(0, 0, 1, xz, hz, h0, b_hn, has_bhn, hs, gates, hzn, mask, has_mask, ca, cg,
             none, False, none, none, none, b[:0], False)


@jit(any_layout=("WxT", "WhT"))
def forward_loop(x, WxT, bias, xz, hz, WhT, h0, b_hn, has_bhn, hs, gates, hzn, mask, has_mask,
                 ca, cg, r, hd, has_r, zh, has_zh, xh, hh, iv, lnp, has_ln, b0, b1):
    """``xz``, ``hz (B, 3H)``: scratch for the step's two products."""
    x, WxT, bias, xz, hz, WhT, h0, b_hn, hs, gates, hzn, mask, r, hd, zh = borrowed(
        x, WxT, bias, xz, hz, WhT, h0, b_hn, hs, gates, hzn, mask, r, hd, zh)
    xh, hh, iv, lnp = borrowed(xh, hh, iv, lnp)
    none = bias[:0]
    for t in range(hs.shape[0]):
        matmul(x[t, b0:b1], WxT, xz[b0:b1], False, bias)
        h_prev = h0[b0:b1] if t == 0 else hs[t - 1, b0:b1]
        if has_r:  # u * h_prev keeps the whole state (fwd_step reads hs)
            dropped(h_prev, r[b0:b1], hd[b0:b1])
            h_prev = hd[b0:b1]
        matmul(h_prev, WhT, hz[b0:b1], False, none)
        fwd_step(t, b0, b1, xz, hz, h0, b_hn, has_bhn, hs, gates, hzn, mask, has_mask, ca, cg,
                 zh, has_zh, xh, hh, iv, lnp, has_ln)


@jit(any_layout=("W_h", "dhs"))
def backward_loop(W_h, dh, h0, hs, gates, hzn, dhs, has_seq, dhzn, mask, has_mask, ca, cg, rows,
                  r, sd, has_r, zh, has_zh, kh, xh, hh, iv, lnp, acc, has_ln, b0, b1):
    """With ``has_ln``: ``dh_prev`` from ``hh[t]``, the gradient of ``hz`` (bwd_step)."""
    W_h, dh, h0, hs, gates, hzn, dhs, dhzn, mask, rows, r, sd, zh, kh = borrowed(
        W_h, dh, h0, hs, gates, hzn, dhs, dhzn, mask, rows, r, sd, zh, kh)
    xh, hh, iv, lnp, acc = borrowed(xh, hh, iv, lnp, acc)
    none = np.empty(0, W_h.dtype)  # no bias
    H = hs.shape[2]
    w_ru, w_n = W_h[..., : 2 * H, :], W_h[..., 2 * H :, :]  # rows of W_h, or of its panels
    for t in range(hs.shape[0] - 1, -1, -1):
        bwd_step(t, b0, b1, dh, h0, hs, gates, hzn, dhs, has_seq, dhzn, mask, has_mask, ca, cg,
                 rows, zh, has_zh, kh, xh, hh, iv, lnp, acc, has_ln)
        if has_ln:
            if has_r:
                matmul(hh[t, b0:b1], W_h, sd[b0:b1], False, none)
                add_dropped(sd[b0:b1], r[b0:b1], dh[b0:b1])
            else:
                matmul(hh[t, b0:b1], W_h, dh[b0:b1], True, none)
        elif has_r:
            matmul(gates[t, b0:b1, : 2 * H], w_ru, sd[b0:b1], False, none)
            matmul(dhzn[t, b0:b1], w_n, sd[b0:b1], True, none)
            add_dropped(sd[b0:b1], r[b0:b1], dh[b0:b1])
        else:
            matmul(gates[t, b0:b1, : 2 * H], w_ru, dh[b0:b1], True, none)
            matmul(dhzn[t, b0:b1], w_n, dh[b0:b1], True, none)
