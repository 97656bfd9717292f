"""Shared pieces of the compiled kernels: jit options, activations, small matrix products.

Only imported when the numba backend runs (``rnnkit.kernels`` imports it lazily), so that
``import rnnkit`` never needs numba.

Every kernel is compiled with ``fastmath=False`` (results are exact to rounding, no
reassociation), ``cache=True`` (compiled code is kept on disk, so only the very first run pays
the compile time) and no ``parallel`` (the BLAS owns the threads; no oversubscription).
Constants are made in the arrays' own dtype (``one = x.dtype.type(1)``) because a bare
``1.0`` literal would silently upcast float32 arithmetic to float64.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np

TANH, SIGMOID, RELU, IDENTITY = 0, 1, 2, 3
CODES = {"tanh": TANH, "sigmoid": SIGMOID, "relu": RELU, "identity": IDENTITY}


def jit(fn: Callable) -> Callable:
    return numba.njit(cache=True, fastmath=False, nogil=True, error_model="numpy")(fn)


# exp on x <= 0 written so that LLVM vectorizes it (libm's scalar exp and tanh are 5-15x
# slower than a SIMD loop): x = k ln2 + r, |r| <= ln2/2, exp(r) by its Taylor polynomial to
# r^13 (truncation < 1e-17 relative), 2^k built from exponent bits in two halves so that
# results down to the subnormal range come out right. Within 1 ulp of np.exp in float64.
_LOG2E, _LN2HI, _LN2LO = 1.4426950408889634, 6.93147180369123816490e-01, 1.90821492927058770e-10
_C = (1.0, 1.0, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040, 1 / 40320, 1 / 362880,
      1 / 3628800, 1 / 39916800, 1 / 479001600, 1 / 6227020800)
# Taylor coefficients of tanh(x)/x - 1 in x², to x^13: below |x| = 0.1 the next term is
# < 1e-17 relative, and above it (1 - e) / (1 + e) loses at most a few ulp to cancellation.
_T3, _T5, _T7, _T9 = -1 / 3, 2 / 15, -17 / 315, 62 / 2835
_T11, _T13 = -1382 / 155925, 21844 / 6081075


@numba.njit(inline="always", cache=True)
def exp_neg(x):
    """``exp(x)`` for a float64 ``x <= 0``."""
    x = max(x, -745.5)
    k = np.rint(x * _LOG2E)
    r = (x - k * _LN2HI) - k * _LN2LO
    p = _C[12] + r * _C[13]  # unrolled: a loop over the tuple would not vectorize
    p = _C[11] + r * p
    p = _C[10] + r * p
    p = _C[9] + r * p
    p = _C[8] + r * p
    p = _C[7] + r * p
    p = _C[6] + r * p
    p = _C[5] + r * p
    p = _C[4] + r * p
    p = _C[3] + r * p
    p = _C[2] + r * p
    p = _C[1] + r * p
    p = _C[0] + r * p
    ki = np.int64(k)
    k1 = ki >> 1
    s1 = np.int64((k1 + 1023) << 52).view(np.float64)
    s2 = np.int64((ki - k1 + 1023) << 52).view(np.float64)
    return p * s1 * s2


@numba.njit(inline="always", cache=True)
def act(x, code, one, zero):
    """The activation with the given code, as ``rnnkit.functional`` defines it. tanh and the
    sigmoid are computed in float64 and rounded once to the dtype of ``one``."""
    if code == TANH:
        a = abs(np.float64(x))
        if a < 0.1:
            a2 = a * a
            t = a + a * a2 * (_T3 + a2 * (_T5 + a2 * (_T7 + a2 * (_T9 + a2 * (_T11 + a2 * _T13)))))
        else:
            e = exp_neg(-2.0 * a)
            t = (1.0 - e) / (1.0 + e)
        return type(one)(t if x >= zero else -t)
    if code == SIGMOID:
        e = exp_neg(-abs(np.float64(x)))  # each branch exact in its own half
        return type(one)(1.0 / (1.0 + e) if x >= zero else e / (1.0 + e))
    if code == RELU:
        return x if x > zero else zero
    return x


@numba.njit(inline="always", cache=True)
def dact(y, code, one, zero):
    """The derivative from the output ``y`` alone (relu: y > 0 exactly when a > 0)."""
    if code == TANH:
        return one - y * y
    if code == SIGMOID:
        return y * (one - y)
    if code == RELU:
        return one if y > zero else zero
    return one


@jit
def matmul_into(a, wT, out):
    """``out = a @ wT`` for ``a (B, K)`` and a C-contiguous ``wT (K, N)``.

    Written as rows of axpys: the inner loop runs over contiguous ``N`` with independent
    outputs, so it vectorizes without reassociating any sum.
    """
    B, K = a.shape
    N = wT.shape[1]
    for i in range(B):
        for j in range(N):
            out[i, j] = 0
        for k in range(K):
            aik = a[i, k]
            for j in range(N):
                out[i, j] += aik * wT[k, j]


@jit
def matmul_add(a, w, out):
    """``out += a @ w`` for ``a (B, K)``, ``w (K, N)``; zero entries of ``a`` are skipped
    (masked rows of a gradient are all zero)."""
    B, K = a.shape
    N = w.shape[1]
    for i in range(B):
        for k in range(K):
            aik = a[i, k]
            if aik != 0:
                for j in range(N):
                    out[i, j] += aik * w[k, j]
