"""Compiled time loop of the Elman layer (the equations of ``cells/elman.py``).

Forward, per step ``t`` and unmasked row ``b``::

    hz = h_prev @ W_h.T                  # the micro-kernel of _gemm.py
    h = σ(xz[t] + hz)                    # hs[t] = h; a masked row carries h_prev

``xz[t] = x_t @ W_x.T + b`` is made for all steps before the loop, into ``hs``: each step
reads its row of the projection and writes ``h`` over it: a forward needs one array of
(T, B, H), not two.

Backward, given ``dh = ∂L/∂h_t`` (plus ``dhs[t]`` when the layer emits sequences)::

    da = dh * σ'(h)                      # σ' from the output: tanh' = 1 - h², relu' = h > 0
    dxz[t] = dhz[t] = da                 # a masked row gets 0 and keeps dh for h_prev
    dh_prev = da @ W_h

Tape: only ``hs``, which the layer keeps anyway. The loops run the batch rows ``b0:b1``:
rows are independent sequences, so parts of the batch run on separate threads without
meeting (``rnnkit.kernels``).

Recurrent dropout (``r (B, H)``, ``has_r``; cells/base.py): the product is made of
``hd = h_prev * r`` (scratch ``hd (B, H)``), and the backward's ``dhz @ W_h`` goes through
``sd (B, H)`` into ``dh += sd * r``; the layer makes ``dW_h`` from ``h * r``.

Zoneout (``zh (T or 1, B or 1, H)``: a mask per step, or the rate at inference; ``has_zh``):
the projection goes into ``hc``, where the cell's own ``h`` is made (``hs`` itself without
zoneout), then ``hs[t] = zh * h_prev + (1 - zh) * hc[t]``; backward ``(1 - zh) * dh`` goes
through the cell (σ' from ``hc``) and ``zh * dh`` straight to ``h_prev``.
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
    nonneg,
    zone_mix,
    zone_split,
)


@inline
def fwd_step(t, b0, b1, hz, h0, hs, mask, has_mask, code, hc, zh, has_zh):
    """Step ``t`` for the rows ``b0:b1``: ``hc[t, b]`` holds row ``b``'s ``xz[t]`` and
    ``hz[b]`` its ``h_prev @ W_h.T``."""
    h_prev = h0 if t == 0 else hs[t - 1]
    H = nonneg(hs.shape[2])
    for b in range(b0, b1):
        if has_mask and not mask[t, b]:
            copy(h_prev[b], hs[t, b])
            continue
        # 1-D views and a loop from 0: it vectorizes (3-D indexing, or an index that might be
        # negative, does not)
        z, h = hz[b], hc[t, b]
        for j in range(H):
            h[j] += z[j]
        act_inplace(h, code)  # a row at a time: branch-free, vectorized
        if has_zh:
            zone_mix(zh[t % zh.shape[0], b % zh.shape[1]], h_prev[b], h, hs[t, b])


@inline
def bwd_step(t, b0, b1, dh, hc, dhs, has_seq, dxz, mask, has_mask, code, zh, has_zh):
    """Writes ``dxz[t]`` and leaves in ``dh`` the part of ``∂L/∂h_{t-1}`` that does not go
    through ``W_h`` (the carried gradient of a masked row, the zoned-out part, else 0), for
    the rows ``b0:b1``; ``hc``: the cell's outputs."""
    zero = dh.dtype.type(0)
    H = nonneg(dh.shape[1])
    for b in range(b0, b1):
        d = dh[b]  # 1-D views, loops from 0: they vectorize
        if has_seq:
            s = dhs[t, b]
            for j in range(H):
                d[j] += s[j]
        da = dxz[t, b]
        if has_mask and not mask[t, b]:
            da[:] = zero
            continue
        if has_zh:  # zoned out: straight to h_prev; the rest through the cell
            zone_split(zh[t % zh.shape[0], b % zh.shape[1]], d, d, da)
        else:
            for j in range(H):
                da[j] = d[j]
            d[:] = zero
        dact_mul(hc[t, b], da, code)


@jit
def one_step(W_x, x, b, W_h, h0, hs, mask, has_mask, code):
    """One step of one sequence without a tape (streaming: ``x (D,)``, ``hs (1, 1, H)``),
    products and step in one call. ``b`` empty: no bias."""
    hz = np.empty((1, W_h.shape[0]), hs.dtype)
    matvec(W_x, x, b, hs[0, 0])
    matvec(W_h, h0[0], b[:0], hz[0])
    fwd_step(0, 0, 1, hz, h0, hs, mask, has_mask, code, hs, hs, False)


@jit(any_layout=("WhT",))
def forward_loop(WhT, hz, h0, hs, mask, has_mask, code, r, hd, has_r, hc, zh, has_zh, b0, b1):
    """``hc`` (``hs`` without zoneout) holds every step's projection on entry; ``hz (B, H)``:
    scratch for the step's product."""
    WhT, hz, h0, hs, mask, r, hd, hc, zh = borrowed(WhT, hz, h0, hs, mask, r, hd, hc, zh)
    none = np.empty(0, hs.dtype)  # no bias
    for t in range(hs.shape[0]):
        h_prev = h0[b0:b1] if t == 0 else hs[t - 1, b0:b1]
        if has_r:
            dropped(h_prev, r[b0:b1], hd[b0:b1])
            h_prev = hd[b0:b1]
        matmul(h_prev, WhT, hz[b0:b1], False, none)
        fwd_step(t, b0, b1, hz, h0, hs, mask, has_mask, code, hc, zh, has_zh)


@jit(any_layout=("W_h", "dhs"))
def backward_loop(W_h, dh, hc, dhs, has_seq, dxz, mask, has_mask, code, r, sd, has_r, zh, has_zh,
                  b0, b1):
    """``hc``: the cell's outputs (``hs`` without zoneout)."""
    W_h, dh, hc, dhs, dxz, mask, r, sd, zh = borrowed(W_h, dh, hc, dhs, dxz, mask, r, sd, zh)
    none = np.empty(0, W_h.dtype)  # no bias
    for t in range(hc.shape[0] - 1, -1, -1):
        bwd_step(t, b0, b1, dh, hc, dhs, has_seq, dxz, mask, has_mask, code, zh, has_zh)
        if has_r:
            matmul(dxz[t, b0:b1], W_h, sd[b0:b1], False, none)
            add_dropped(sd[b0:b1], r[b0:b1], dh[b0:b1])
        else:
            matmul(dxz[t, b0:b1], W_h, dh[b0:b1], True, none)
