"""Compiled time loop of the Elman layer (the equations of ``cells/elman.py``).

Forward, per step ``t`` and unmasked row ``b``::

    hz = h_prev @ W_h.T                  # the micro-kernel of _gemm.py
    h = σ(xz[t] + hz)                    # hs[t] = h; a masked row carries h_prev

Backward, given ``dh = ∂L/∂h_t`` (plus ``dhs[t]`` when the layer emits sequences)::

    da = dh * σ'(h)                      # σ' from the output: tanh' = 1 - h², relu' = h > 0
    dxz[t] = dhz[t] = da                 # a masked row gets 0 and keeps dh for h_prev
    dh_prev = da @ W_h

Tape: only ``hs``, which the layer keeps anyway.
"""

from __future__ import annotations

import numpy as np

from ._gemm import matmul
from ._jit import act_inplace, dact_mul, jit
from ._sync import barrier


@jit
def fwd_step(t, lo, hi, hz, xz, h0, hs, mask, has_mask, code):
    """Step ``t`` for the hidden units ``lo:hi``."""
    h_prev = h0 if t == 0 else hs[t - 1]
    for b in range(hz.shape[0]):
        if has_mask and not mask[t, b]:
            hs[t, b, lo:hi] = h_prev[b, lo:hi]
            continue
        # 1-D views and a loop from 0: it vectorizes (3-D indexing, or an index that might be
        # negative, does not)
        x, z, h = xz[t, b, lo:hi], hz[b], hs[t, b, lo:hi]  # hz: this slice's own
        for j in range(hi - lo):
            h[j] = x[j] + z[j]
        act_inplace(h, code)  # a row at a time: branch-free, vectorized


@jit
def bwd_step(t, lo, hi, dh, hs, dhs, has_seq, dxz, mask, has_mask, code):
    """Writes ``dxz[t]`` and leaves in ``dh`` the part of ``∂L/∂h_{t-1}`` that does not go
    through ``W_h`` (the carried gradient of a masked row, else 0), for the units ``lo:hi``."""
    zero = dh.dtype.type(0)
    for b in range(dh.shape[0]):
        d = dh[b, lo:hi]  # 1-D views, loops from 0: they vectorize
        if has_seq:
            s = dhs[t, b, lo:hi]
            for j in range(hi - lo):
                d[j] += s[j]
        da = dxz[t, b, lo:hi]
        if has_mask and not mask[t, b]:
            da[:] = zero
            continue
        for j in range(hi - lo):
            da[j] = d[j]
        dact_mul(hs[t, b, lo:hi], da, code)
        d[:] = zero


@jit
def forward_loop(xz, WhT, h0, hs, mask, has_mask, code, lo, hi, sync, party):
    none = np.empty(0, xz.dtype)  # no bias
    hz = np.empty((hs.shape[1], WhT.shape[1]), hs.dtype)
    w, z = WhT[:, :], hz[:, :]  # typed as the backward's column slices: one compiled product
    for t in range(hs.shape[0]):
        matmul(h0 if t == 0 else hs[t - 1], w, z, False, none)
        fwd_step(t, lo, hi, hz, xz, h0, hs, mask, has_mask, code)
        if not barrier(sync, party, t):
            return


@jit
def backward_loop(W_h, dh, hs, dhs, has_seq, dxz, mask, has_mask, code, lo, hi, sync, party):
    none = np.empty(0, W_h.dtype)  # no bias
    w, d = W_h[:, lo:hi], dh[:, lo:hi]  # this slice's columns
    for t in range(hs.shape[0] - 1, -1, -1):
        bwd_step(t, lo, hi, dh, hs, dhs, has_seq, dxz, mask, has_mask, code)
        if not barrier(sync, party, hs.shape[0] - 1 - t):
            return
        matmul(dxz[t], w, d, True, none)
