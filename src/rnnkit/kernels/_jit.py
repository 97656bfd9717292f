"""Shared pieces of the compiled kernels: jit options, activations, a size known to be >= 0.

Only imported when the numba backend runs (``rnnkit.kernels`` imports it lazily), so that
``import rnnkit`` never needs numba.

Every kernel is compiled with ``fastmath=False`` (results are exact to rounding, no
reassociation; the one exception is ``_gemm.matvec``'s dot products, see ``jit``),
``cache=True`` (compiled code is kept on disk, so only the very first run pays the compile
time) and no ``parallel`` (``rnnkit.kernels`` runs parts of the batch on its own threads; no
oversubscription).
Constants are made in the arrays' own dtype (``one = x.dtype.type(1)``) because a bare
``1.0`` literal would silently upcast float32 arithmetic to float64.

Activations are applied a whole row at a time (:func:`act_inplace`, :func:`act_into`,
:func:`dact_mul`): the activation code is looked at once per row, and each branch is a tight
loop over one statically known function, which LLVM turns into SIMD code (a test of the code
per element would keep the loop scalar). tanh and the sigmoid are computed in the dtype of
the data: float32 with float32 polynomials (within 3 float32 ulp of NumPy, twice the SIMD
width), float64 within 4 ulp (tanh just above |x| = 0.1; elsewhere 1-2). The dtype is chosen
while numba types the call (``overload``), so the loops hold no dtype test either.

numba's on-disk cache is keyed on the source file of each jitted function, not on what it
inlines from here, nor on the micro-kernel's tiles: the kernels' compiled code is kept in a
folder of its own per :func:`_target.stamp` (every kernels file, the tiles, the target), so
that an edit here or another choice of tiles compiles afresh.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable
from typing import Any

import llvmlite.binding as llvmlite_binding
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import caching, cgutils, sigutils
from numba.core.compiler_lock import global_compiler_lock
from numba.core.errors import NumbaIRAssumptionWarning
from numba.core.registry import CPUDispatcher
from numba.extending import intrinsic, overload

from ..cells.base import LN_EPS
from . import _target

# The activations are inlined into the steps at numba's IR level (a call per row cost 17% of
# the LSTM small loop). numba's pedantic IR check then reports variables of the inlined
# sigmoid/tanh as out of scope, a false alarm (the parity and gradient tests pass): silenced
# for those variables only (their names come from the overloads below).
warnings.filterwarnings("ignore", category=NumbaIRAssumptionWarning,
                        message=r"(?s).*variable '_ov_(tanh|sigmoid)1__locals")



class _KernelCache(caching._CacheLocator):
    """Where numba keeps the kernels' compiled code: the folder its own locators would pick
    (``NUMBA_CACHE_DIR``, the package's ``__pycache__``, the user's cache folder), in a
    subfolder named by :func:`_target.stamp`, which is also the source stamp numba checks."""

    _HERE = os.path.dirname(os.path.abspath(__file__))
    _STAMP = _target.stamp()

    def __init__(self, base: caching._CacheLocator) -> None:
        self._base = base
        self._path = os.path.join(base.get_cache_path(), f"rnnkit-{self._STAMP}")

    def get_cache_path(self) -> str:
        return self._path

    def get_source_stamp(self) -> str:
        return self._STAMP

    def get_disambiguator(self) -> str:
        return self._base.get_disambiguator()

    @classmethod
    def from_function(cls, py_func: Callable, py_file: str) -> _KernelCache | None:
        if os.path.dirname(os.path.abspath(py_file)) != cls._HERE:
            return None
        for base_cls in caching.CacheImpl._locator_classes:
            if base_cls is cls:
                continue
            base = base_cls.from_function(py_func, py_file)
            if base is None:
                continue
            self = cls(base)
            try:
                self.ensure_cache_path()
            except OSError:
                continue
            return self
        return None


if _KernelCache not in caching.CacheImpl._locator_classes:
    caching.CacheImpl._locator_classes.insert(0, _KernelCache)

TANH, SIGMOID, RELU, IDENTITY = 0, 1, 2, 3  # their places in rnnkit.kernels.ACTIVATIONS


_OPTIONS = {"fastmath": False, "nogil": True, "error_model": "numpy"}


def jit(fn: Callable | None = None, *, any_layout: tuple[str, ...] = (),
        reassociate: bool = False) -> Callable:
    """``numba.njit`` with the options above. The array arguments named in ``any_layout``
    are compiled as strided arrays whatever their layout (see :class:`_OneLayout`).
    ``reassociate``: LLVM may reorder the function's sums and fuse its multiply-adds (for a
    dot product in SIMD lanes; only the rounding changes, as between two BLAS libraries)."""
    if fn is None:
        return lambda f: jit(f, any_layout=any_layout, reassociate=reassociate)
    if any_layout:
        return _OneLayout(fn, any_layout)
    options = {**_OPTIONS, "fastmath": {"reassoc", "contract"}} if reassociate else _OPTIONS
    return numba.njit(cache=True, **options)(fn)


class _OneLayout(CPUDispatcher):
    """A jitted function compiled once per dtype of its arguments: those named ``any_layout``
    are typed as strided arrays (layout ``'A'``), and literal values as their types.

    numba compiles a version for each combination of layouts it sees, and a view that is
    contiguous only by accident (one row of a batch, one input feature) is typed ``'C'``; a
    jitted caller's constants (``False``) add versions of their own. For the product and the
    loops, which read the strides of those arrays at run time, every version is the same
    machine code: 8 of the product and two of most loops (a first ``rnnkit bench --quick
    --no-torch``: 62 → 33 s). A call with other exact types is entered into the dispatcher's
    table of exact types (``_insert``, as numba's ``add_overload`` does) under the general
    version, so that only its first call goes through here."""

    def __init__(self, fn: Callable, any_layout: tuple[str, ...]) -> None:
        super().__init__(py_func=fn, locals={}, targetoptions={"nopython": True, **_OPTIONS})
        names = list(inspect.signature(fn).parameters)
        self.any_layout = frozenset(names.index(n) for n in any_layout)
        self._exact: set[tuple] = set()  # argument types sent to a general version
        self.enable_caching()

    def compile(self, sig: Any) -> Callable:
        args, ret = sigutils.normalize_signature(sig)
        general = tuple(t.copy(layout="A") if i in self.any_layout and isinstance(t, types.Array)
                        else types.unliteral(t) for i, t in enumerate(args))
        with global_compiler_lock:
            entry = super().compile(general if ret is None else ret(*general))
            # numba looks for a version with exactly the types of the arguments first
            if general != args and args not in self._exact \
                    and not any(isinstance(t, types.Literal) for t in args):
                self._exact.add(args)
                self._insert([t._code for t in args], entry)
        return entry


def inline(fn: Callable) -> Callable:
    """Compiled into each jitted caller (numba's IR inlining), and callable alone. For the
    activations, and for the cells' steps in their loops, where a call passes ~80 words of
    arguments (LSTM B=1, H=32: 41 → 35 µs for 100 steps); a step is called alone when
    streaming."""
    return numba.njit(inline="always", cache=True, **_OPTIONS)(fn)


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` rounded once (LLVM's ``fma``, which the loop vectorizer widens): the
    polynomials below in half the instructions of a multiply and an add, and no less exact.
    ``fastmath=False`` keeps LLVM from fusing on its own."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        t = args[0].type
        name = "llvm.fma.f32" if t == ir.FloatType() else "llvm.fma.f64"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(t, [t, t, t]), name)
        return builder.call(fn, args)

    return a(a, b, c), codegen


@intrinsic
def borrowed(typingctx, *arrays):
    """The same arrays without their reference count (a NULL meminfo), for a loop's
    arguments: views and calls made from them then count no references. numba counts each
    with an atomic instruction behind a function call: half the cost of a one-row product
    (1×8 @ 8×128: 95 → 54 ns), and of the LSTM loop at B=1, H=32 (35 → 21.5 µs for 100
    steps). Valid while the caller's arrays live, which is the whole call: a borrowed array
    must not be returned or kept, nor made from an array the function allocated."""
    if not all(isinstance(a, types.Array) for a in arrays):
        return None
    tup = types.Tuple(arrays)

    def codegen(context, builder, signature, args):
        out = []
        for ty, value in zip(arrays, cgutils.unpack_tuple(builder, args[0]), strict=True):
            ary = context.make_array(ty)(context, builder, value)
            ary.meminfo = ir.Constant(ary.meminfo.type, None)
            ary.parent = ir.Constant(ary.parent.type, None)
            out.append(ary._getvalue())
        return context.make_tuple(builder, tup, out)

    return tup(types.StarArgTuple(arrays)), codegen


# ---- float64: exp on x <= 0 written so that LLVM vectorizes it (libm's scalar exp and tanh
# are 5-15x slower than a SIMD loop): x = k ln2 + r, |r| <= ln2/2, exp(r) by its Taylor
# polynomial to r^13 (truncation < 1e-17 relative), 2^k built from exponent bits in two halves
# so that results down to the subnormal range come out right. Within 1 ulp of np.exp.
_LOG2E, _LN2HI, _LN2LO = 1.4426950408889634, 6.93147180369123816490e-01, 1.90821492927058770e-10
_C = (1.0, 1.0, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040, 1 / 40320, 1 / 362880,
      1 / 3628800, 1 / 39916800, 1 / 479001600, 1 / 6227020800)
# Taylor coefficients of tanh(x)/x - 1 in x², to x^13: below |x| = 0.1 the next term is
# < 1e-17 relative, and above it (1 - e) / (1 + e) loses at most a few ulp to cancellation.
_T3, _T5, _T7, _T9 = -1 / 3, 2 / 15, -17 / 315, 62 / 2835
_T11, _T13 = -1382 / 155925, 21844 / 6081075


@inline
def _exp_neg64(x):
    x = max(x, -745.5)
    k = np.rint(x * _LOG2E)
    r = fma(k, -_LN2LO, fma(k, -_LN2HI, x))
    # Horner's rule written out: a loop over the tuple would not vectorize
    p = fma(r, fma(r, fma(r, fma(r, _C[13], _C[12]), _C[11]), _C[10]), _C[9])
    p = fma(r, fma(r, fma(r, fma(r, p, _C[8]), _C[7]), _C[6]), _C[5])
    p = fma(r, fma(r, fma(r, fma(r, fma(r, p, _C[4]), _C[3]), _C[2]), _C[1]), _C[0])
    ki = np.int64(k)
    k1 = ki >> 1
    s1 = np.int64((k1 + 1023) << 52).view(np.float64)
    s2 = np.int64((ki - k1 + 1023) << 52).view(np.float64)
    return p * s1 * s2


@inline
def _tanh64(x):
    a = abs(x)
    a2 = a * a
    q = fma(a2, fma(a2, fma(a2, fma(a2, fma(a2, _T13, _T11), _T9), _T7), _T5), _T3)
    small = fma(a * a2, q, a)
    e = _exp_neg64(-2.0 * a)
    t = small if a < 0.1 else (1.0 - e) / (1.0 + e)
    return t if x >= 0.0 else -t


@inline
def _sigmoid64(x):
    e = _exp_neg64(-abs(x))  # each branch exact in its own half
    return 1.0 / (1.0 + e) if x >= 0.0 else e / (1.0 + e)


# ---- float32: the same algorithms with float32 constants. Cody-Waite ln2 split whose high
# part has 9 bits (k ln2_hi is exact for |k| <= 150), exp(r) = 1 + r + r² P(r) with the
# degree-5 minimax P of the Cephes library's expf (S. L. Moshier; a figure, not its code:
# 6 fused multiply-adds instead of 8 for the Taylor polynomial to r^7, -29% per sigmoid),
# results down to the subnormals via the two-halves 2^k.
# tanh: its Taylor series to x^13 below |x| = 0.4 (next term < 1e-8 relative), above it
# (1 - e) / (1 + e) loses at most ~1 ulp to cancellation. Measured: within 3 ulp of NumPy's
# float32 results over [-20, 20]; within 2.2 ulp of the exact values over [-90, 90].
_F = np.float32
_LOG2E_F, _LN2HI_F, _LN2LO_F = _F(1.4426950408889634), _F(0.693359375), _F(-2.12194440e-4)
_P0F, _P1F, _P2F = _F(1.9875691500e-4), _F(1.3981999507e-3), _F(8.3334519073e-3)
_P3F, _P4F, _P5F = _F(4.1665795894e-2), _F(1.6666665459e-1), _F(5.0000001201e-1)
_T3F, _T5F, _T7F, _T9F, _T11F, _T13F = (_F(_T3), _F(_T5), _F(_T7), _F(_T9), _F(_T11),
                                        _F(_T13))
_EXP_MIN_F, _TANH_SMALL_F, _ONE_F, _TWO_F, _ZERO_F = _F(-104.0), _F(0.4), _F(1.0), _F(2.0), _F(0)
_I127, _I23, _I1 = np.int32(127), np.int32(23), np.int32(1)


@inline
def _exp_neg32(x):
    x = max(x, _EXP_MIN_F)
    k = np.rint(x * _LOG2E_F)
    r = fma(k, -_LN2LO_F, fma(k, -_LN2HI_F, x))
    p = fma(fma(fma(fma(fma(_P0F, r, _P1F), r, _P2F), r, _P3F), r, _P4F), r, _P5F)
    p = fma(p, r * r, r) + _ONE_F
    ki = np.int32(k)
    k1 = np.int32(ki >> _I1)
    s1 = np.int32((k1 + _I127) << _I23).view(np.float32)
    s2 = np.int32((ki - k1 + _I127) << _I23).view(np.float32)
    return p * s1 * s2


@inline
def _tanh32(x):
    a = abs(x)
    a2 = a * a
    q = fma(a2, fma(a2, fma(a2, fma(a2, fma(a2, _T13F, _T11F), _T9F), _T7F), _T5F), _T3F)
    small = fma(a * a2, q, a)
    e = _exp_neg32(-_TWO_F * a)
    t = small if a < _TANH_SMALL_F else (_ONE_F - e) / (_ONE_F + e)
    return t if x >= _ZERO_F else -t


@inline
def _sigmoid32(x):
    e = _exp_neg32(-abs(x))
    return _ONE_F / (_ONE_F + e) if x >= _ZERO_F else e / (_ONE_F + e)


def tanh1(x):
    """tanh of one float, in its own precision (a typing-time choice inside numba)."""
    return np.tanh(x)


def sigmoid1(x):
    """The sigmoid of one float, in its own precision."""
    return 1.0 / (1.0 + np.exp(-x))


def _is_f32(x) -> bool:
    return isinstance(x, types.Float) and x.bitwidth == 32


@overload(tanh1, inline="always")
def _ov_tanh1(x):
    f = _tanh32 if _is_f32(x) else _tanh64
    return lambda x: f(x)


@overload(sigmoid1, inline="always")
def _ov_sigmoid1(x):
    f = _sigmoid32 if _is_f32(x) else _sigmoid64
    return lambda x: f(x)


@inline
def nonneg(n):
    """``n`` as it is, known to LLVM to be >= 0 (a size is): an index built from it then
    cannot be negative, so NumPy's wraparound test drops out and the loops using it vectorize
    (measured 2.5x on the LSTM step)."""
    return max(n, 0)


@inline
def copy(src, dst):
    """``dst[:] = src`` over 1-D arrays of one length. A slice assignment tests the shapes,
    and compiling the error message it would raise took ~3 s of a first run."""
    for k in range(src.shape[0]):
        dst[k] = src[k]


@inline
def dropped(a, r, out):
    """``out = a * r`` over 2-D arrays of one shape (recurrent dropout's ``h_prev * r``)."""
    for b in range(a.shape[0]):
        ab, rb, ob = a[b], r[b], out[b]
        for k in range(ab.shape[0]):
            ob[k] = ab[k] * rb[k]


@inline
def add_dropped(sd, r, dh):
    """``dh += sd * r`` over 2-D arrays of one shape."""
    for b in range(sd.shape[0]):
        sb, rb, db = sd[b], r[b], dh[b]
        for k in range(sb.shape[0]):
            db[k] += sb[k] * rb[k]


@inline
def zone_mix(zr, old, new, out):
    """Zoneout's state ``out = zr * old + (1 - zr) * new`` over 1-D arrays of one length
    (``out`` may be ``new``)."""
    one = out.dtype.type(1)
    for j in range(zr.shape[0]):
        out[j] = zr[j] * old[j] + (one - zr[j]) * new[j]


@inline
def zone_split(zr, d, kept, through):
    """Zoneout's backward: ``d``'s part ``zr * d`` to ``kept`` (straight to the previous
    state), ``(1 - zr) * d`` to ``through`` (through the cell); either may be ``d``."""
    one = d.dtype.type(1)
    for j in range(zr.shape[0]):
        v = d[j]
        kept[j] = zr[j] * v
        through[j] = (one - zr[j]) * v


@inline
def ln_stats(a):
    """``(mean(a), 1 / sqrt(var(a) + LN_EPS))`` of one row (cells/base.py ``layer_norm``).
    Inlined into its callers, which may reorder its sums (``reassociate``: SIMD lanes, as
    NumPy's pairwise ones differ from a loop's); not a call per row (~70 ns, see
    :func:`ln_cells`)."""
    dt = a.dtype.type
    n = nonneg(a.shape[0])
    s = dt(0)
    for k in range(n):
        s += a[k]
    mu = s / dt(n)
    v = dt(0)
    for k in range(n):
        d = a[k] - mu
        v += d * d
    return mu, dt(1) / np.sqrt(v / dt(n) + dt(LN_EPS))


@jit(reassociate=True)
def ln_row(a, a_hat):
    """Layer norm of one row without its gain: ``a_hat = (a - mean(a)) * inv``, returns
    ``inv`` (:func:`ln_stats`)."""
    mu, inv = ln_stats(a)
    for k in range(a.shape[0]):
        a_hat[k] = (a[k] - mu) * inv
    return inv


@jit(reassociate=True)
def ln_back_row(dy, a_hat, inv, g, dg, da):
    """Layer norm's backward for one row (cells/base.py ``layer_norm_back``): ``dg += dy *
    a_hat`` and ``da = inv * (d - mean(d) - a_hat * mean(d * a_hat))`` with ``d = dy * g``;
    ``da`` may be ``dy`` or ``a_hat``."""
    dt = dy.dtype.type
    n = nonneg(dy.shape[0])
    s1, s2 = dt(0), dt(0)
    for k in range(n):
        d = dy[k] * g[k]
        s1 += d
        s2 += d * a_hat[k]
    m1, m2 = s1 * (dt(1) / dt(n)), s2 * (dt(1) / dt(n))  # not s / n: see ln_pairs_back
    for k in range(n):
        y, ah = dy[k], a_hat[k]
        dg[k] += y * ah
        da[k] = inv * (y * g[k] - m1 - ah * m2)


@jit(reassociate=True)
def ln_pairs(t, b0, b1, gz, hh, iv, lnp, mask, has_mask, xk, keep):
    """The LSTM's two norms and their mix (cells/lstm.py) for the rows ``b0:b1`` of step
    ``t`` not masked: ``gz[b] = g_x * LN(gz[b]) + g_h * LN(hz[b]) + b`` in place, ``lnp``
    starting ``g_x, g_h, b``, ``hh[b]`` holding ``hz[b]`` and then its normalised row; ``iv[b]``
    gets ``1 / std`` of both (places 0, 1) and the input part's mean (place 3), with which the
    backward normalises the input part again: made again, or with ``keep`` kept as it came,
    in ``xk[b]`` (no tape of its normalised rows). Three passes over a row for both norms
    (sums, squares about the means, the mix), all rows in one call."""
    dt = gz.dtype.type
    n = nonneg(gz.shape[1])
    gx, gh, bl = lnp[:n], lnp[n : 2 * n], lnp[2 * n : 3 * n]
    for b in range(b0, b1):
        if has_mask and not mask[t, b]:
            continue
        x, h = gz[b], hh[b]
        sx, sh = dt(0), dt(0)
        if keep:
            xr = xk[b]
            for k in range(n):
                v = x[k]
                xr[k] = v
                sx += v
                sh += h[k]
        else:
            for k in range(n):
                sx += x[k]
                sh += h[k]
        mx, mh = sx / dt(n), sh / dt(n)
        vx, vh = dt(0), dt(0)
        for k in range(n):
            a, c = x[k] - mx, h[k] - mh
            vx += a * a
            vh += c * c
        ix = dt(1) / np.sqrt(vx / dt(n) + dt(LN_EPS))
        ih = dt(1) / np.sqrt(vh / dt(n) + dt(LN_EPS))
        for k in range(n):
            a, c = (x[k] - mx) * ix, (h[k] - mh) * ih
            h[k] = c
            x[k] = gx[k] * a + gh[k] * c + bl[k]
        iv[b, 0] = ix
        iv[b, 1] = ih
        iv[b, 3] = mx


@jit(reassociate=True)
def ln_pairs_back(t, b0, b1, dz, dxz, hh, iv, lnp, acc, mask, has_mask):
    """:func:`ln_pairs`' backward, ``dxz[b]`` holding the step's input projection made
    again: ``dxz[b]`` becomes ``∂L/∂xz``, ``hh[b]`` ``∂L/∂hz`` (each ``inv * (d - mean(d) -
    â * mean(d * â))`` with ``d = dz[b] * g``), both 0 on a masked row, and ``acc`` (``lnp``'s
    order) gets ``dg_x += dz * x̂``, ``dg_h += dz * ĥ``, ``db += dz``. Two passes over a
    row, each row in place (an array passed twice, or a third array, cost LLVM's SIMD loops
    run-time tests of overlap)."""
    dt = dz.dtype.type
    n = nonneg(dz.shape[1])
    r = dt(1) / dt(n)
    gx, gh = lnp[:n], lnp[n : 2 * n]
    agx, agh, ab = acc[:n], acc[n : 2 * n], acc[2 * n : 3 * n]
    for b in range(b0, b1):
        if has_mask and not mask[t, b]:
            dxz[b][:] = dt(0)
            hh[b][:] = dt(0)
            continue
        d, xr, hr = dz[b], dxz[b], hh[b]
        ix, ih, mx = iv[b, 0], iv[b, 1], iv[b, 3]
        s1x, s2x, s1h, s2h = dt(0), dt(0), dt(0), dt(0)
        for k in range(n):
            y, a, c = d[k], (xr[k] - mx) * ix, hr[k]
            xr[k] = a
            gy, hy = y * gx[k], y * gh[k]
            s1x += gy
            s2x += gy * a
            s1h += hy
            s2h += hy * c
            agx[k] += y * a
            agh[k] += y * c
            ab[k] += y
        # the means as products by 1 / n: LLVM's reassociation turns `a * (s / n)` in the
        # loop into `(a * s) / n`, a vector division per element (B=16, H=64, float32:
        # 2.0 -> 1.7 µs a step)
        m1x, m2x, m1h, m2h = s1x * r, s2x * r, s1h * r, s2h * r
        for k in range(n):
            y = d[k]
            xr[k] = ix * (y * gx[k] - m1x - xr[k] * m2x)
            hr[k] = ih * (y * gh[k] - m1h - hr[k] * m2h)


@jit(reassociate=True)
def ln_cells(t, b0, b1, c, out, iv, g, bc, mask, has_mask):
    """``out[b] = g * LN(c[b]) + bc`` for the rows ``b0:b1`` of step ``t`` not masked (the
    LSTM's cell state, cells/lstm.py); ``iv[b]`` gets ``1 / std`` (place 2) and the mean
    (place 4), from which the backward normalises ``c`` again (no tape of the normalised
    rows). All the step's rows in one call: a call per row cost ~70 ns more than the row's
    arithmetic (B=16, H=64, float32, in cache: 1.0-1.2 -> 0.3-0.4 µs a step; the backward's
    0.9 -> 0.3-0.4 µs)."""
    n = nonneg(c.shape[1])
    for b in range(b0, b1):
        if has_mask and not mask[t, b]:
            continue
        cr, o = c[b], out[b]
        mu, inv = ln_stats(cr)
        for k in range(n):
            o[k] = g[k] * ((cr[k] - mu) * inv) + bc[k]
        iv[b, 2] = inv
        iv[b, 4] = mu


@jit(reassociate=True)
def ln_cells_back(t, b0, b1, dy, c, iv, g, dg, db, mask, has_mask):
    """:func:`ln_cells`' backward in place for the rows ``b0:b1`` not masked, ``ĉ = (c -
    mean) * inv`` made again, on the first ``H`` columns of ``dy`` (``c (B, H)``): ``db +=
    dy[b]``, ``dg += dy[b] * ĉ``, and ``dy[b]`` becomes ``∂L/∂c`` (:func:`ln_back_row`'s
    formula, written once more: with ``dy`` passed twice, LLVM's run-time test that the
    arrays do not overlap fails and the loops run element by element)."""
    dt = dy.dtype.type
    n = nonneg(c.shape[1])
    r = dt(1) / dt(n)
    for b in range(b0, b1):
        if has_mask and not mask[t, b]:
            continue
        y_, cr = dy[b][:n], c[b]
        mu, inv = iv[b, 4], iv[b, 2]
        s1, s2 = dt(0), dt(0)
        for k in range(n):
            y, ch = y_[k], (cr[k] - mu) * inv
            d = y * g[k]
            s1 += d
            s2 += d * ch
            db[k] += y
            dg[k] += y * ch
        m1, m2 = s1 * r, s2 * r  # not s / n: see ln_pairs_back
        for k in range(n):
            y, ch = y_[k], (cr[k] - mu) * inv
            y_[k] = inv * (y * g[k] - m1 - ch * m2)


@inline
def act_inplace(x, code):
    """``x = act(x)`` over a 1-D array; the code is tested once, each loop is branch-free."""
    zero = x.dtype.type(0)
    if code == TANH:
        for k in range(x.shape[0]):
            x[k] = tanh1(x[k])
    elif code == SIGMOID:
        for k in range(x.shape[0]):
            x[k] = sigmoid1(x[k])
    elif code == RELU:
        for k in range(x.shape[0]):
            x[k] = max(x[k], zero)


@inline
def act_into(src, dst, code):
    """``dst = act(src)`` over 1-D arrays that do not overlap."""
    zero = src.dtype.type(0)
    if code == TANH:
        for k in range(src.shape[0]):
            dst[k] = tanh1(src[k])
    elif code == SIGMOID:
        for k in range(src.shape[0]):
            dst[k] = sigmoid1(src[k])
    elif code == RELU:
        for k in range(src.shape[0]):
            dst[k] = max(src[k], zero)
    else:
        copy(src, dst)


@inline
def dact_mul(y, d, code):
    """``d *= act'`` given the activation's output ``y`` (1-D, not overlapping ``d``):
    tanh' = 1 - y², sigmoid' = y (1 - y), relu' = (y > 0)."""
    one, zero = y.dtype.type(1), y.dtype.type(0)
    if code == TANH:
        for k in range(y.shape[0]):
            d[k] = d[k] * (one - y[k] * y[k])
    elif code == SIGMOID:
        for k in range(y.shape[0]):
            d[k] = d[k] * (y[k] * (one - y[k]))
    elif code == RELU:
        for k in range(y.shape[0]):
            d[k] = d[k] if y[k] > zero else zero


# ---- waiting without sleeping, for rnnkit's threads (_parallel.py): a sleeping thread takes
# ~50 µs to wake on a 2-core VM (measured), a tenth of a small LSTM loop's part
_TRIPLE = llvmlite_binding.get_process_triple()
_PAUSE = (("llvm.x86.sse2.pause", []) if _TRIPLE.startswith(("x86_64", "i686", "i386"))
          else ("llvm.aarch64.hint", [ir.Constant(ir.IntType(32), 1)])
          if _TRIPLE.startswith(("aarch64", "arm64")) else None)


#: a pool thread's flags: the number of the last job posted and of the last one ended, a
#: cache line apart (``rnnkit.kernels._parallel``)
POSTED, ENDED = 0, 8


def _item(context, builder, signature, args):
    arr = context.make_array(signature.args[0])(context, builder, args[0])
    return cgutils.get_item_pointer(context, builder, signature.args[0], arr, [args[1]])


@intrinsic
def _load_acquire(typingctx, flags, i):
    """``flags[i]`` (int64), read as an atomic acquire load: each read goes to memory."""
    def codegen(context, builder, signature, args):
        return builder.load_atomic(_item(context, builder, signature, args), "acquire", 8)

    return types.int64(flags, i), codegen


@intrinsic
def _store_release(typingctx, flags, i, value):
    """``flags[i] = value`` (int64) as an atomic release store: what the thread wrote before
    is seen by a thread that reads this value."""
    def codegen(context, builder, signature, args):
        builder.store_atomic(args[2], _item(context, builder, signature, args), "release", 8)
        return context.get_dummy_value()

    return types.void(flags, i, value), codegen


@intrinsic
def _cpu_relax(typingctx):
    """The CPU's spin-wait hint (x86 ``pause``, ARM ``yield``): a spinning thread leaves the
    core's other hardware thread its share."""
    def codegen(context, builder, signature, args):
        if _PAUSE is not None:
            name, operands = _PAUSE
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [o.type for o in operands]), name)
            builder.call(fn, operands)
        return context.get_dummy_value()

    return types.void(), codegen


@jit
def spin_until(flags, i, value, spins):
    """Whether ``flags[i] >= value`` within ``spins`` reads (without the GIL)."""
    for _ in range(spins):
        if _load_acquire(flags, i) >= value:
            return True
        _cpu_relax()
    return _load_acquire(flags, i) >= value


@jit
def end_and_wait(flags, number, spins, settle):
    """A pool thread's end of job ``number`` (``flags[ENDED] = number``) and its wait for the
    next (``flags[POSTED] > number``), in one call without the GIL: a thread that took the GIL
    to announce its end would hold up the waiting caller, who needs it next (measured: +30
    µs). Once the next job is seen, ``settle`` pauses give the caller the time to release the
    GIL (entering its own part) before this thread takes it."""
    _store_release(flags, ENDED, number)
    if not spin_until(flags, POSTED, number + 1, spins):
        return False
    for _ in range(settle):
        _cpu_relax()
    return True


@numba.njit(cache=True, error_model="numpy")  # not nogil: see end_and_wait
def publish(flags, i, value):
    """``flags[i] = value`` for :func:`spin_until` on another thread, with the GIL held."""
    _store_release(flags, i, value)
