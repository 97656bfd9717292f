"""Dropout and zoneout masks drawn in compiled code: the same entries as ``rnnkit.noise``'s
NumPy arithmetic, bit for bit, in one pass.

Entry ``(t, b, f)`` of a mask (``t`` absent for a mask per sequence)::

    r_b   = mix((row0 + b) · G  xor  key)             G = 0x9E3779B97F4A7C15, wrapping
    u     = mix(r_b + ((t0 + t) · F + f) · G) >> 11   an integer in [0, 2^53)
    entry = value if u >= thr else 0                  thr = ceil(p · 2^53)

NumPy's ``u · 2^-53 >= p`` is the same test: ``u · 2^-53`` and ``p · 2^53`` are exact in
float64 (a power of two times a float below 2^53), so comparing integers with the ceiling
changes nothing. NumPy makes the hash of a whole ``(B, T·F)`` array in eight passes and then
a transposed copy (1.8 ms for the small bench size's state vector); here each entry is made
once, in place, time-major.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit

_G = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S11, _S27, _S30, _S31 = np.uint64(11), np.uint64(27), np.uint64(30), np.uint64(31)


@jit
def _mix(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@jit
def draw(out: np.ndarray, key: np.uint64, row0: np.uint64, t0: np.uint64,
         thr: np.uint64, value: np.ndarray) -> None:
    """Fill ``out (T, B, F)`` with the mask (``T = 1`` and ``t0 = 0`` for one per
    sequence): ``value[0]`` where kept, 0 elsewhere."""
    T, B, F = out.shape
    v, zero = value[0], out.dtype.type(0)
    for b in range(B):
        r = _mix((row0 + np.uint64(b)) * _G ^ key)
        for t in range(T):
            base = r + (t0 + np.uint64(t)) * np.uint64(F) * _G
            for f in range(F):
                u = _mix(base + np.uint64(f) * _G) >> _S11
                out[t, b, f] = v if u >= thr else zero
