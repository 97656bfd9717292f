"""Compiled time loop of the LSTM layer (the equations of ``cells/lstm.py``), gates i, f, g, o.

Forward, per step ``t`` and unmasked row ``b``, γ the gate and φ the cell activation::

    z = xz[t] + h_prev @ W_h.T                       # (4H,); the micro-kernel of _gemm.py
    i, f, g, o = γ(z_i), γ(z_f), φ(z_g), γ(z_o)      # over xz[t], which becomes gates[t]
    c = f * c_prev + i * g;  tc = φ(c);  h = o * tc  # stored in cs[t], tcs[t], hs[t]

A masked row carries ``(h_prev, c_prev)``. Backward, given ``dh`` and ``dc``::

    do = dh * tc
    dc = dc + dh * o * φ'(tc)
    dz = [dc * g * γ'(i), dc * c_prev * γ'(f), dc * i * φ'(g), do * γ'(o)]
    dxz[t] = dhz[t] = dz;  dh_prev = dz @ W_h;  dc_prev = dc * f

Derivatives come from the stored outputs (γ'(i) = i (1 - i) for a sigmoid), so the tape is
``gates (T, B, 4H)``, ``cs`` and ``tcs (T, B, H)`` besides ``hs``. The backward writes
``dxz[t]`` over ``gates[t]`` once read, as the GRU's does: no array of ``∂L/∂z`` of its own
(a training step's peak memory: B=64, T=100, H=512 153 -> 104 MB, B=32, H=128 18.5 -> 12.2
MB; time the same or 1-3% less). The loops run the batch rows ``b0:b1`` (independent
sequences: parts of the batch run on separate threads).

Recurrent dropout (``r (B, H)``, ``has_r``; cells/base.py): the product is made of
``hd = h_prev * r`` (scratch ``hd (B, H)``), and the backward's ``dhz @ W_h`` goes through
``sd (B, H)`` into ``dh += sd * r``; the layer makes ``dW_h`` from ``h * r``.

Peepholes (``P (3H,)``, order i, o, f, ``has_p``)::

    z_i += P_i * c_prev;  z_f += P_f * c_prev;  z_o += P_o * c    # o activated after c
    dc += dz_o * P_o (before dz_i, dz_f, dz_g);  dc_prev += dz_i * P_i + dz_f * P_f

``dP`` is summed after the loop from ``dxz`` (the layer: ``peephole_grad``). Zoneout
(``zh``, ``zc`` of shape ``(T or 1, B or 1, H)``: a mask per step, or the rate at inference;
``has_zh``, ``has_zc``): the cell's ``c`` goes into ``cc`` (``cs`` itself without zoneout of
``c``), then ``c = zc * c_prev + (1 - zc) * cc`` and ``h = zh * h_prev + (1 - zh) * o * tc``;
backward ``dc_prev += zc * dc`` with ``(1 - zc) * dc`` through the cell, the same for ``h``
(scratch ``kh``, ``kc (B, H)``).

Projection (``proj_size`` P, ``has_proj``; ``W_hr (P, H)``): the step's ``m = o * tc`` goes
into ``ms (T, B, H)`` (a masked row gets 0), then ``hs[t] = ms[t] @ W_hr.T`` by the
micro-kernel, then ``proj_finish`` carries the masked rows and mixes the zoned-out ones;
``h (B, P)`` feeds ``W_h (4H, P)``. Backward: ``proj_start`` puts the cell's part of ``dh``
(``(1 - zh) * dh``, 0 on a masked row) into ``dhp[t]``, the micro-kernel makes
``dm = dhp[t] @ W_hr (B, H)``, the step runs on ``dm``; the layer takes ``dW_hr = dhp.T @ ms``
over all steps after the loop.

Layer norm (``has_ln``; cells/lstm.py): the input projection comes without ``b``, the step's
``h_prev @ W_h.T`` goes into the tape's row ``hh[t]``, and ``z = g_x * LN(xz) + g_h *
LN(hz) + b`` is made in ``gates`` for all the step's rows in one call before the peepholes
(``_jit.ln_pairs``: both norms in three passes over a row); ``tc = φ(g_c * LN(c) + b_c)``,
the norms of all the step's ``c`` in one call (``_jit.ln_cells``) between each row's ``c``
and the rest of its step (``fwd_out``). The tape keeps the normalised ``hh (T, B, 4H)``
and, per row, the three ``1 / std`` and the means of ``xz`` and ``c`` in ``iv (T, B, 5)``,
not their normalised rows: writing those cost the forward more than making them again costs
the backward (B=16, H=64, float32: tape 64 -> 44 KiB a step, forward loop 1.48-1.67x ->
1.33-1.39x the plain one's, backward loop the same; docs/regularisation.md). The input part
``xz`` itself: with fewer than ``kernels.LN_KEEP_MIN_D`` inputs the backward makes each
step's again (``x[t] @ W_x.T`` into ``xd[t]``, D/H of the recurrent product's work); from
it on, ``ln_pairs`` copies each row as it comes into ``xk (T, B, 4H)``, which the backward
reads instead (``xd`` is ``xk``): at D=128, H=512 the product made again cost more than the
tape's write and read (training step 1.13-1.16x -> 1.03-1.05x the plain one's), at D=16,
H=64 less (1.38x made again, 1.41x kept). Backward: each row's ``dh * o * φ'``, then ``dc``
gets ``LN_back`` of all of them in one call (``_jit.ln_cells_back``), then the rest of each
row (``bwd_out``); each row's ``dz`` stays in ``rows`` (over the gates only for ``dP``),
and after the rows ``_jit.ln_pairs_back`` writes ``LN_back`` of it over ``xd[t]`` (``dxz``:
the gates themselves, an array of its own with peepholes, or ``xk``) and ``hh[t]``
(``dhz``, which makes ``dh_prev = dhz @ W_h``) in two passes a row; the gains' and biases'
gradients are summed into ``acc``, one per part of the batch. The backward's means are
products by ``1 / n``: LLVM's reassociation turned ``a * (s / n)`` in a loop into a vector
division per element (``ln_pairs_back`` 2.0 -> 1.7 µs a step in cache). The training step
over the plain one's (benchmarks/lstm_layer_norm_loops.py, float32, docs/regularisation.md,
2026-12-03): B=16, H=64 1.28-1.31x at one thread, 1.22-1.32x at two (1.33-1.39x and
1.25-1.36x before these changes); B=32, H=128 1.12-1.16x; B=64, D=128, H=512 1.04-1.05x."""

from __future__ import annotations

import numpy as np

from ._gemm import matmul, matvec
from ._jit import (
    act_inplace,
    act_into,
    add_dropped,
    borrowed,
    copy,
    dact_mul,
    dropped,
    inline,
    jit,
    ln_cells,
    ln_cells_back,
    ln_pairs,
    ln_pairs_back,
    nonneg,
    zone_mix,
    zone_split,
)


@inline
def fwd_step(t, b0, b1, h0, c0, hs, cs, tcs, gates, mask, has_mask, ca, cg, P, has_p, cc, zh,
             has_zh, zc, has_zc, ms, has_proj, ln, has_ln):
    """Step ``t`` for the rows ``b0:b1``: their ``z`` in ``gates`` is activated in place
    (with ``has_ln``, ``gates`` holds ``xz`` and ``hz`` the recurrent part on entry; ``ln``:
    ``(xk, hh, iv, lnp)``, ``hh[t]`` holding ``hz``, ``xk`` where ``xz`` is kept, or a
    stand-in of one column: a call of over 30 arguments is one numba cannot inline). With
    ``has_ln``, each row's ``c`` first, then the norms of all rows' ``c`` in one call, then
    the rest of each row (``fwd_out``)."""
    xk, hh, iv, lnp = ln
    zero = hs.dtype.type(0)
    h_prev = h0 if t == 0 else hs[t - 1]
    # cs, tcs and gates hold all steps for a backward, or are buffers of 2, 1 and 1 steps
    tk, tt, tg, tl = t % cs.shape[0], t % tcs.shape[0], t % gates.shape[0], t % hh.shape[0]
    c_prev = c0 if t == 0 else cs[(t - 1) % cs.shape[0]]
    H = nonneg(cs.shape[2])
    if has_ln:  # z = g_x * LN(xz) + g_h * LN(hz) + b (lnp: g_x, g_h, b, g_c, b_c)
        ln_pairs(t, b0, b1, gates[tg], hh[tl], iv[tl], lnp, mask, has_mask,
                 xk[t % xk.shape[0]], xk.shape[2] > 1)
    for b in range(b0, b1):
        if has_mask and not mask[t, b]:
            if has_proj:  # h_prev is carried by proj_finish, after the product
                ms[t % ms.shape[0], b][:] = zero
            else:
                copy(h_prev[b], hs[t, b])
            copy(c_prev[b], cs[tk, b])
            continue
        # 1-D views, gate k of unit j at k*H + j, loops from 0: they vectorize (3-D
        # indexing, an index that might be negative, or a test per element do not)
        gt, cp = gates[tg, b], c_prev[b]
        c = cc[t % cc.shape[0], b]  # the cell's c: cs[tk, b] itself without zoneout of c
        if has_p:
            for j in range(H):
                gt[j] += P[j] * cp[j]
            for j in range(H):
                gt[H + j] += P[2 * H + j] * cp[j]
        act_inplace(gt[: 2 * H], cg)  # i, f
        act_inplace(gt[2 * H : 3 * H], ca)  # g
        for j in range(H):
            c[j] = gt[H + j] * cp[j] + gt[j] * gt[2 * H + j]
        if not has_ln:
            fwd_out(t, b, h_prev, c_prev, cs, tcs, gates, cc, ca, cg, P, has_p, zh, has_zh, zc,
                    has_zc, ms, has_proj, hs, False)
    if has_ln:  # φ(LN(c; g_c) + b_c); c's mean and 1 / std kept, not its normalised row
        ln_cells(t, b0, b1, cc[t % cc.shape[0]], tcs[tt], iv[tl], lnp[12 * H : 13 * H],
                 lnp[13 * H :], mask, has_mask)
        for b in range(b0, b1):
            if not (has_mask and not mask[t, b]):
                fwd_out(t, b, h_prev, c_prev, cs, tcs, gates, cc, ca, cg, P, has_p, zh, has_zh,
                        zc, has_zc, ms, has_proj, hs, True)


@inline
def fwd_out(t, b, h_prev, c_prev, cs, tcs, gates, cc, ca, cg, P, has_p, zh, has_zh, zc, has_zc,
            ms, has_proj, hs, has_ln):
    """The rest of row ``b``'s step once its ``c`` is made: ``tc`` (with ``has_ln``, ``tcs``
    holds the norm of ``c`` on entry), ``o``, zoneout, ``h`` (or ``m``)."""
    one = hs.dtype.type(1)
    H = nonneg(cs.shape[2])
    tk = t % cs.shape[0]
    gt, tc = gates[t % gates.shape[0], b], tcs[t % tcs.shape[0], b]
    h = ms[t % ms.shape[0], b] if has_proj else hs[t, b]  # m, before the projection
    c = cc[t % cc.shape[0], b]
    if has_ln:
        act_inplace(tc, ca)
    else:
        act_into(c, tc, ca)
    if has_p:
        for j in range(H):
            gt[3 * H + j] += P[H + j] * c[j]
    act_inplace(gt[3 * H :], cg)  # o
    if has_zc:
        zone_mix(zc[t % zc.shape[0], b % zc.shape[1]], c_prev[b], c, cs[tk, b])
    if has_zh and not has_proj:
        zr, hp = zh[t % zh.shape[0], b % zh.shape[1]], h_prev[b]
        for j in range(H):
            h[j] = zr[j] * hp[j] + (one - zr[j]) * (gt[3 * H + j] * tc[j])
    else:
        for j in range(H):
            h[j] = gt[3 * H + j] * tc[j]


@inline
def proj_finish(t, b0, b1, h0, hs, mask, has_mask, zh, has_zh):
    """After ``hs[t] = ms[t] @ W_hr.T``: a masked row carries ``h_prev``, a zoned-out one is
    mixed with it."""
    h_prev = h0 if t == 0 else hs[t - 1]
    for b in range(b0, b1):
        if has_mask and not mask[t, b]:
            copy(h_prev[b], hs[t, b])
        elif has_zh:
            zone_mix(zh[t % zh.shape[0], b % zh.shape[1]], h_prev[b], hs[t, b], hs[t, b])


@inline
def proj_start(t, b0, b1, dh, dhs, has_seq, mask, has_mask, zh, has_zh, dhp):
    """Before the step's backward: ``dhp[t]`` gets the cell's part of ``∂L/∂h_t`` (0 on a
    masked row), ``dh`` keeps the part carried to ``h_{t-1}`` (all of it on a masked row,
    the zoned-out part, else 0)."""
    zero = dh.dtype.type(0)
    P = nonneg(dh.shape[1])
    for b in range(b0, b1):
        d, dp = dh[b], dhp[t, b]
        if has_seq:
            s = dhs[t, b]
            for j in range(P):
                d[j] += s[j]
        if has_mask and not mask[t, b]:
            dp[:] = zero
        elif has_zh:
            zone_split(zh[t % zh.shape[0], b % zh.shape[1]], d, d, dp)
        else:
            copy(d, dp)
            d[:] = zero


@inline
def bwd_step(t, b0, b1, dh, dc, c0, cs, tcs, gates, dhs, has_seq, mask, has_mask, ca, cg, rows,
             P, has_p, zh, has_zh, zc, has_zc, kh, kc, ln, has_ln):
    """Writes ``dxz[t]`` over ``gates[t]``; leaves in ``dh`` the carried part of
    ``∂L/∂h_{t-1}`` (0 unless masked or zoned out) and in ``dc`` all of ``∂L/∂c_{t-1}``; for
    the rows ``b0:b1``. ``rows (B, 4H)`` is scratch: ``dz`` is made there, then copied over
    the gates, which it needs until its last part. With ``has_ln`` (``ln``: ``(cc, iv, lnp,
    acc)``), each row's ``dh * o * φ'`` first, then the norm's backward of all rows in one
    call, then the rest of each row (``bwd_out``); ``dz`` (after the norms) stays in ``rows``
    for the norms' backward, which the loop runs next (``ln_pairs_back``), and goes over
    ``gates[t]`` only with peepholes (for ``dP``)."""
    cc, iv, lnp, acc = ln
    zero = dh.dtype.type(0)
    c_prev = c0 if t == 0 else cs[t - 1]
    H = nonneg(dh.shape[1])
    for b in range(b0, b1):
        d, dcr = dh[b], dc[b]  # 1-D views, loops from 0: they vectorize
        if has_seq:
            s = dhs[t, b]
            for j in range(H):
                d[j] += s[j]
        gt = gates[t, b]  # gate k of unit j at k*H + j; dz in the same places
        if has_mask and not mask[t, b]:
            gt[:] = zero
            continue
        if has_zh:  # zoned out: straight to h_prev; the rest through the cell
            zone_split(zh[t % zh.shape[0], b % zh.shape[1]], d, kh[b], d)
        if has_zc:
            zone_split(zc[t % zc.shape[0], b % zc.shape[1]], dcr, kc[b], dcr)
        di = rows[b][:H]  # scratch for dh * o * φ'(c) until dz_i is written
        for j in range(H):
            di[j] = d[j] * gt[3 * H + j]
        dact_mul(tcs[t, b], di, ca)
        if not has_ln:
            bwd_out(t, b, dh, dc, c_prev, tcs, gates, rows, cg, ca, P, has_p, has_zc, kc, has_zh,
                    kh, False)
    if has_ln:  # di: ∂L/∂(LN(c) + b_c), through LN's backward
        ln_cells_back(t, b0, b1, rows, cc[t], iv[t], lnp[12 * H : 13 * H], acc[12 * H : 13 * H],
                      acc[13 * H :], mask, has_mask)
        for b in range(b0, b1):
            if not (has_mask and not mask[t, b]):
                bwd_out(t, b, dh, dc, c_prev, tcs, gates, rows, cg, ca, P, has_p, has_zc, kc,
                        has_zh, kh, True)


@inline
def bwd_out(t, b, dh, dc, c_prev, tcs, gates, rows, cg, ca, P, has_p, has_zc, kc, has_zh, kh,
            has_ln):
    """The rest of row ``b``'s backward once ``rows[b][:H]`` holds ``∂L/∂c`` from ``h``."""
    zero = dh.dtype.type(0)
    H = nonneg(dh.shape[1])
    d, dcr, gt, tc, cp, dz = dh[b], dc[b], gates[t, b], tcs[t, b], c_prev[b], rows[b]
    di = dz[:H]
    for j in range(H):
        dcr[j] = dcr[j] + di[j]
    for j in range(H):  # do = dh * tc
        dz[3 * H + j] = d[j] * tc[j]
    dact_mul(gt[3 * H :], dz[3 * H :], cg)
    if has_p:
        for j in range(H):
            dcr[j] = dcr[j] + dz[3 * H + j] * P[H + j]
    for j in range(H):
        dz[j] = dcr[j] * gt[2 * H + j]
    for j in range(H):
        dz[H + j] = dcr[j] * cp[j]
    dact_mul(gt[: 2 * H], dz[: 2 * H], cg)
    for j in range(H):
        dz[2 * H + j] = dcr[j] * gt[j]
    dact_mul(gt[2 * H : 3 * H], dz[2 * H : 3 * H], ca)
    for j in range(H):
        dcr[j] = dcr[j] * gt[H + j]
    if has_p:
        for j in range(H):
            dcr[j] = dcr[j] + dz[j] * P[j] + dz[H + j] * P[2 * H + j]
    if has_zc:
        k = kc[b]
        for j in range(H):
            dcr[j] = dcr[j] + k[j]
    if not has_ln or has_p:  # the gates are read: dxz in their place (dz for dP)
        copy(dz, gt)
    if has_zh:
        copy(kh[b], d)
    else:
        d[:] = zero


@jit
def one_step(W_x, x, b, W_h, h0, c0, hs, cs, mask, has_mask, ca, cg):
    """One step of one sequence without a tape (streaming: ``x (D,)``, ``hs`` and
    ``cs (1, 1, H)``), products and step in one call. ``b`` empty: no bias."""
    gates = np.empty((1, 1, W_h.shape[0]), hs.dtype)
    tcs = np.empty(hs.shape, hs.dtype)
    z = gates[0, 0]
    matvec(W_x, x, b, z)
    matvec(W_h, h0[0], z, z)
    none = np.zeros((1, 1, 1), hs.dtype)
    fwd_step(0, 0, 1, h0, c0, hs, cs, tcs, gates, mask, has_mask, ca, cg, b[:0], False, cs,
             none, False, none, False, hs, False, (none, none, none, b[:0]), False)


@jit(any_layout=("WxT", "WhT", "WhrT"))
def forward_loop(x, WxT, bias, inside, WhT, h0, c0, hs, cs, tcs, gates, mask, has_mask, ca, cg,
                 r, hd, has_r, P, has_p, zh, has_zh, zc, has_zc, cc, ms, WhrT, has_proj, xk, hh,
                 iv, lnp, has_ln, b0, b1):
    """``inside``: each step makes its input projection ``x_t @ W_x.T + b`` into ``gates`` (a
    one-step buffer without a backward); else ``gates`` holds every step's on entry. It
    becomes ``z``, then the gates, in place. ``has_ln``: the projection comes without ``b``
    and the step's ``h_prev @ W_h.T`` goes into ``hh[t]``, which ``ln_pairs`` normalises;
    ``xk (T, B, 4H)`` gets the projection as it came (a stand-in of one column: made again
    in the backward)."""
    x, WxT, bias, WhT, h0, c0, hs, cs, tcs, gates, mask, r, hd, P, cc, zh, zc, ms, WhrT = \
        borrowed(x, WxT, bias, WhT, h0, c0, hs, cs, tcs, gates, mask, r, hd, P, cc, zh, zc, ms,
                 WhrT)
    ln = borrowed(xk, hh, iv, lnp)
    hh = ln[1]
    none = bias[:0]
    for t in range(hs.shape[0]):
        z = gates[t % gates.shape[0], b0:b1]
        if inside:
            matmul(x[t, b0:b1], WxT, z, False, bias)
        h_prev = h0[b0:b1] if t == 0 else hs[t - 1, b0:b1]
        if has_r:
            dropped(h_prev, r[b0:b1], hd[b0:b1])
            h_prev = hd[b0:b1]
        if has_ln:
            matmul(h_prev, WhT, hh[t % hh.shape[0], b0:b1], False, none)
        else:
            matmul(h_prev, WhT, z, True, none)
        fwd_step(t, b0, b1, h0, c0, hs, cs, tcs, gates, mask, has_mask, ca, cg, P, has_p, cc,
                 zh, has_zh, zc, has_zc, ms, has_proj, ln, has_ln)
        if has_proj:
            matmul(ms[t % ms.shape[0], b0:b1], WhrT, hs[t, b0:b1], False, none)
            proj_finish(t, b0, b1, h0, hs, mask, has_mask, zh, has_zh)


@jit(any_layout=("W_h", "dhs", "W_hr", "WxT"))
def backward_loop(W_h, dh, dc, c0, cs, tcs, gates, dhs, has_seq, mask, has_mask, ca, cg, rows,
                  r, sd, has_r, P, has_p, zh, has_zh, zc, has_zc, kh, kc, W_hr, dhp, dm,
                  has_proj, x, WxT, remake, xd, hh, cc, iv, lnp, acc, has_ln, b0, b1):
    """With ``has_proj``: ``dh (B, P)``, ``dm (B, H)`` scratch, ``dhp (T, B, P)`` the tape of
    the cells' ``∂L/∂h`` for ``dW_hr``. With ``has_ln``: after the step, with ``remake`` its
    input projection is made again, ``x[t] @ W_x.T`` into ``xd[t]`` (the gates, or an array
    of its own with peepholes; else ``xd`` is the forward's ``xk``, which holds it), and the
    norms' backward makes ``dxz`` of it in place, ``dhz`` over ``hh[t]``, from which
    ``dh_prev`` comes."""
    W_h, dh, dc, c0, cs, tcs, gates, dhs, mask, rows, r, sd, P, zh, zc, kh, kc = borrowed(
        W_h, dh, dc, c0, cs, tcs, gates, dhs, mask, rows, r, sd, P, zh, zc, kh, kc)
    W_hr, dhp, dm, x, WxT = borrowed(W_hr, dhp, dm, x, WxT)
    xd, hh = borrowed(xd, hh)
    ln = borrowed(cc, iv, lnp, acc)
    none = np.empty(0, W_h.dtype)  # no bias
    for t in range(cs.shape[0] - 1, -1, -1):
        if has_proj:
            proj_start(t, b0, b1, dh, dhs, has_seq, mask, has_mask, zh, has_zh, dhp)
            matmul(dhp[t, b0:b1], W_hr, dm[b0:b1], False, none)
            bwd_step(t, b0, b1, dm, dc, c0, cs, tcs, gates, dhs, False, mask, has_mask, ca, cg,
                     rows, P, has_p, zh, False, zc, has_zc, kh, kc, ln, has_ln)
        else:
            bwd_step(t, b0, b1, dh, dc, c0, cs, tcs, gates, dhs, has_seq, mask, has_mask, ca,
                     cg, rows, P, has_p, zh, has_zh, zc, has_zc, kh, kc, ln, has_ln)
        if has_ln:
            if remake:  # the forward's product again (in its loop: the same rows, the same bits)
                matmul(x[t, b0:b1], WxT, xd[t, b0:b1], False, none)
            ln_pairs_back(t, b0, b1, rows, xd[t], hh[t], iv[t], lnp, acc, mask, has_mask)
        dhz = hh[t, b0:b1] if has_ln else gates[t, b0:b1]
        if has_r:
            matmul(dhz, W_h, sd[b0:b1], False, none)
            add_dropped(sd[b0:b1], r[b0:b1], dh[b0:b1])
        else:
            matmul(dhz, W_h, dh[b0:b1], True, none)


@jit
def peephole_grad(dxz, c0, cs, cc, mask, has_mask, dP):
    """``dP += [Σ dz_i * c_prev, Σ dz_o * c, Σ dz_f * c_prev]`` over steps and unmasked rows
    (order i, o, f), from the backward's ``dxz (T, B, 4H)``; ``cc``: the cell's ``c``."""
    H = nonneg(cs.shape[2])
    pi, po, pf = dP[:H], dP[H : 2 * H], dP[2 * H :]
    for t in range(cs.shape[0]):
        c_prev = c0 if t == 0 else cs[t - 1]
        for b in range(cs.shape[1]):
            if has_mask and not mask[t, b]:
                continue  # cc of a masked row was never written
            dz, cp, c = dxz[t, b], c_prev[b], cc[t, b]
            for j in range(H):
                pi[j] += dz[j] * cp[j]
            for j in range(H):
                po[j] += dz[3 * H + j] * c[j]
            for j in range(H):
                pf[j] += dz[H + j] * cp[j]
