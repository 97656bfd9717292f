"""Compiled time loop of the Elman layer (the equations of ``cells/elman.py``).

Forward, per step ``t`` and unmasked row ``b``::

    hz = h_prev @ W_h.T                  # in the loop (hand GEMM) or by BLAS outside it
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


@jit
def fwd_step(t, hz, xz, h0, hs, mask, has_mask, code):
    h_prev = h0 if t == 0 else hs[t - 1]
    B, H = hz.shape
    for b in range(B):
        if has_mask and not mask[t, b]:
            hs[t, b, :] = h_prev[b, :]
            continue
        x, z, h = xz[t, b], hz[b], hs[t, b]  # 1-D rows: the loop below vectorizes
        for j in range(H):
            h[j] = x[j] + z[j]
        act_inplace(h, code)  # a row at a time: branch-free, vectorized


@jit
def bwd_step(t, dh, hs, dhs, has_seq, dxz, mask, has_mask, code):
    """Writes ``dxz[t]`` and leaves in ``dh`` the part of ``∂L/∂h_{t-1}`` that does not go
    through ``W_h`` (the carried gradient of a masked row, else 0)."""
    zero = dh.dtype.type(0)
    B, H = dh.shape
    for b in range(B):
        d = dh[b]  # 1-D rows throughout: loops over them vectorize, 3-D indexing does not
        if has_seq:
            d += dhs[t, b]
        if has_mask and not mask[t, b]:
            dxz[t, b, :] = zero
            continue
        da, h = dxz[t, b], hs[t, b]
        for j in range(H):
            da[j] = d[j]
        dact_mul(h, da, code)
        d[:] = zero


@jit
def forward_loop(xz, WhT, h0, hs, mask, has_mask, code):
    hz = np.empty((hs.shape[1], hs.shape[2]), hs.dtype)
    for t in range(hs.shape[0]):
        matmul(h0 if t == 0 else hs[t - 1], WhT, hz, False)
        fwd_step(t, hz, xz, h0, hs, mask, has_mask, code)


@jit
def backward_loop(W_h, dh, hs, dhs, has_seq, dxz, mask, has_mask, code):
    for t in range(hs.shape[0] - 1, -1, -1):
        bwd_step(t, dh, hs, dhs, has_seq, dxz, mask, has_mask, code)
        matmul(dxz[t], W_h, dh, True)
