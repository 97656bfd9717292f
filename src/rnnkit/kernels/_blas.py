"""BLAS GEMM callable from inside the compiled loops: NumPy's own OpenBLAS, found at run time.

The BLAS loop used to be a Python loop over time calling ``np.matmul(..., out=)`` and then a
compiled step; the Python round trip costs several microseconds per step, as much as the GEMM
itself at medium sizes. Here the compiled loop calls ``cblas_?gemm`` of the OpenBLAS that
NumPy's wheels ship (``numpy.libs``/``.dylibs``, symbol ``scipy_cblas_sgemm64_`` or plain
``cblas_sgemm``), through a function pointer handed in as an integer: the address is an
argument, not a constant of the compiled code, so ``cache=True`` stays valid from one process
to the next. Where no such library is found (a NumPy built against MKL, Accelerate, or from
source), :func:`gemm_pointers` returns ``None`` and the caller keeps the Python loop.

Same BLAS, same threads as ``np.matmul``: results are those of NumPy's products.
"""

from __future__ import annotations

import ctypes
import glob
import os

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_found: tuple | bool | None = False  # False: not looked for yet


def _library_candidates() -> list[str]:
    root = os.path.dirname(np.__file__)
    pats = [os.path.join(root, os.pardir, "numpy.libs", "*openblas*"),
            os.path.join(root, ".dylibs", "*openblas*")]
    return sorted(p for pat in pats for p in glob.glob(pat))


def gemm_pointers() -> tuple[int, int, bool] | None:
    """``(sgemm address, dgemm address, ilp64)`` of NumPy's OpenBLAS, or ``None``."""
    global _found
    if _found is not False:
        return _found
    _found = None
    if os.environ.get("RNNKIT_NO_CBLAS"):
        return None
    for path in _library_candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix, ilp64 in (("scipy_", "64_", True), ("", "64_", True),
                                      ("scipy_", "", False), ("", "", False)):
            try:
                s = getattr(lib, f"{prefix}cblas_sgemm{suffix}")
                d = getattr(lib, f"{prefix}cblas_dgemm{suffix}")
            except AttributeError:
                continue
            _found = (ctypes.cast(s, ctypes.c_void_p).value,
                      ctypes.cast(d, ctypes.c_void_p).value, ilp64)
            return _found
    return None


@intrinsic
def _cblas_gemm(typingctx, fn, ilp64, transb, m, n, k, a, b, c, beta):
    """``c = a @ op(b) + beta * c`` by the ``cblas_?gemm`` at address ``fn`` (row-major,
    contiguous; ``ilp64``: the library's integers are 64-bit)."""
    sig = types.void(fn, ilp64, transb, m, n, k, a, b, c, beta)

    def codegen(context, builder, signature, args):
        fn_, ilp_, tb_, m_, n_, k_, a_, b_, c_, beta_ = args
        aty = signature.args[6]
        fl = context.get_value_type(aty.dtype)
        ptr = fl.as_pointer()
        i32, i64 = ir.IntType(32), ir.IntType(64)

        def data(ty, val):
            return builder.bitcast(context.make_array(ty)(context, builder, val).data, ptr)

        pa, pb, pc = data(aty, a_), data(signature.args[7], b_), data(signature.args[8], c_)
        one = ir.Constant(fl, 1.0)
        tb = builder.select(builder.icmp_unsigned("!=", tb_, ir.Constant(tb_.type, 0)),
                            ir.Constant(i32, _TRANS), ir.Constant(i32, _NO_TRANS))
        lda = k_
        ldb = builder.select(builder.icmp_unsigned("!=", tb_, ir.Constant(tb_.type, 0)), k_, n_)
        beta = context.cast(builder, beta_, signature.args[9], aty.dtype)
        enums = [ir.Constant(i32, _ROW_MAJOR), ir.Constant(i32, _NO_TRANS), tb]
        addr = builder.inttoptr(fn_, ir.IntType(8).as_pointer())
        is64 = builder.icmp_unsigned("!=", ilp_, ir.Constant(ilp_.type, 0))
        with builder.if_else(is64) as (then, otherwise):
            for branch, it in ((then, i64), (otherwise, i32)):
                with branch:
                    fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, it, it, it, fl, ptr,
                                                           it, ptr, it, fl, ptr, it])
                    f = builder.bitcast(addr, fnty.as_pointer())

                    def cv(v, it=it):
                        return builder.trunc(v, it) if it is i32 else v

                    builder.call(f, [*enums, cv(m_), cv(n_), cv(k_), one, pa, cv(lda), pb,
                                     cv(ldb), beta, pc, cv(n_)])
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(inline="always", cache=True)
def gemm_nt(fn, ilp64, a, b, c, beta):
    """``c = a @ b.T + beta * c``: ``a (M, K)``, ``b (N, K)``, ``c (M, N)``, C-contiguous."""
    _cblas_gemm(fn, ilp64, True, np.int64(a.shape[0]), np.int64(b.shape[0]),
                np.int64(a.shape[1]), a, b, c, beta)


@numba.njit(inline="always", cache=True)
def gemm_nn(fn, ilp64, a, b, c, beta):
    """``c = a @ b + beta * c``: ``a (M, K)``, ``b (K, N)``, ``c (M, N)``, C-contiguous."""
    _cblas_gemm(fn, ilp64, False, np.int64(a.shape[0]), np.int64(b.shape[1]),
                np.int64(a.shape[1]), a, b, c, beta)
