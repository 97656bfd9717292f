"""rnnkit's matrix product, ``c = a @ b (+ bias)`` or ``c += a @ b``, register-blocked in LLVM IR.

A recurrent step multiplies a few rows (the batch) by a weight matrix that stays in cache from
one step to the next. BLAS libraries are tuned for large products: at these shapes a call
costs microseconds of set-up and thread hand-off, and OpenBLAS's dispatch may pick kernels
narrower than the machine's vectors. This is the textbook micro-kernel instead (Goto and van
de Geijn, "Anatomy of high-performance matrix multiplication", ACM TOMS 34(3), 2008): a tile
of ``mr`` rows by ``nv`` vectors of ``c`` lives in registers while ``k`` runs; each step loads
``nv`` vectors of a row of ``b``, broadcasts ``mr`` scalars of ``a`` and does ``mr * nv``
fused multiply-adds.

Vectors are the target's registers (``_target.py``): 64 bytes (16 float32 or 8 float64) on
AVX-512, 32 on AVX2, 16 on NEON and SSE; the code states the algorithm, the target's code
generator picks the instructions. The last vector of a row is masked, so any ``n`` works
without reading or writing past the end of a row. Tiles (``_target.KINDS``): on AVX-512,
8 rows × 3 vectors (24 accumulators), then 4 × 4, 2 × 8 and 1 × 16 for the remaining rows
(one row: a matrix-vector product, as many independent accumulators as fit); on AVX2, 6 × 2
(12 of its 16 registers), then 4 × 2, 2 × 4 and 1 × 7. Large products go in blocks (``KC``,
``MC``) so that the operands stay in cache. Measured on one Zen 5 core: ~250 GFLOP/s in
float32 at the shape of an LSTM step (32×128 @ 128×512), against ~100-145 for OpenBLAS's
2-thread ``sgemm`` (``OPENBLAS_CORETYPE=Haswell``).

Results differ from NumPy's products in rounding only (fused multiply-add, another order).
"""

from __future__ import annotations

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import inline, jit
from ._target import TILES as _CHOSEN

#: vectors per row of a tile, by rows per tile, for this target (``_target.py``)
TILES = dict(_CHOSEN.nv)
#: rows of the main tile; those of the others are 4, 2 and 1
ROWS = _CHOSEN.rows
_VECTOR_BYTES = _CHOSEN.vector_bytes
_NV_MAIN, _NV4, _NV2, _NV1 = TILES[ROWS], TILES[4], TILES[2], TILES[1]
_OPAQUE = llvm.llvm_version_info[0] >= 15  # pointer suffix of the masked intrinsics


def _emit_tile(context, builder, fl, vw, mr, nv, pa, sa0, sa1, pb, ldb, pc, ldc, pbias, k_len,
               tail, start, masked=True):
    """``mr × nv`` vectors of ``c`` at ``pc`` = ``start + a (mr, k) @ b (k, nv·vw)``, where
    ``start`` (an i64: ``START_*``) is 0, ``c`` itself or the row at ``pbias``; the last
    vector of each row has ``tail`` valid lanes (all of them when not ``masked``)."""
    i32, i64 = ir.IntType(32), ir.IntType(64)
    vty = ir.VectorType(fl, vw)
    mty = ir.VectorType(ir.IntType(1), vw)
    vptr = vty.as_pointer()
    bits = 32 if fl == ir.FloatType() else 64
    sfx = f"v{vw}f{bits}"
    psfx = "p0" if _OPAQUE else f"p0{sfx}"
    mod = builder.module
    fma = cgutils.get_or_insert_function(mod, ir.FunctionType(vty, [vty, vty, vty]),
                                         f"llvm.fma.{sfx}")
    mload = cgutils.get_or_insert_function(
        mod, ir.FunctionType(vty, [vptr, i32, mty, vty]), f"llvm.masked.load.{sfx}.{psfx}")
    mstore = cgutils.get_or_insert_function(
        mod, ir.FunctionType(ir.VoidType(), [vty, vptr, i32, mty]),
        f"llvm.masked.store.{sfx}.{psfx}")
    lanes = ir.Constant(ir.VectorType(i64, vw), [ir.Constant(i64, q) for q in range(vw)])
    tail_v = builder.insert_element(ir.Constant(ir.VectorType(i64, vw), ir.Undefined), tail,
                                    ir.Constant(i32, 0))
    tail_v = builder.shuffle_vector(tail_v, tail_v, ir.Constant(ir.VectorType(i32, vw), None))
    mask = builder.icmp_unsigned("<", lanes, tail_v)
    zero = ir.Constant(vty, None)
    align = ir.Constant(i32, bits // 8)

    def vload(p, last):
        p = builder.bitcast(p, vptr)
        if last and masked:
            return builder.call(mload, [p, align, mask, zero])
        return builder.load(p, align=4)

    def vstore(v, p, last):
        p = builder.bitcast(p, vptr)
        if last and masked:
            builder.call(mstore, [v, p, align, mask])
        else:
            builder.store(v, p, align=4)

    def at(p, *offsets):
        return builder.gep(p, [builder.add(*offsets) if len(offsets) > 1 else offsets[0]])

    const = lambda q: ir.Constant(i64, q)  # noqa: E731
    accs = [[cgutils.alloca_once(builder, vty) for _ in range(nv)] for _ in range(mr)]
    from_c = builder.icmp_signed("==", start, const(START_C))
    from_bias = builder.icmp_signed("==", start, const(START_BIAS))
    bias = [builder.select(from_bias, vload(at(pbias, const(v * vw)), v == nv - 1), zero)
            for v in range(nv)]
    for r in range(mr):
        row = at(pc, builder.mul(const(r), ldc))
        for v in range(nv):
            init = vload(at(row, const(v * vw)), v == nv - 1)
            builder.store(builder.select(from_c, init, bias[v]), accs[r][v])
    undef = ir.Constant(vty, ir.Undefined)
    splat = ir.Constant(ir.VectorType(i32, vw), None)
    with cgutils.for_range(builder, k_len) as loop:
        k = loop.index
        brow = at(pb, builder.mul(k, ldb))
        bv = [vload(at(brow, const(v * vw)), v == nv - 1) for v in range(nv)]
        for r in range(mr):
            s = builder.load(at(pa, builder.mul(const(r), sa0), builder.mul(k, sa1)))
            sv = builder.shuffle_vector(builder.insert_element(undef, s, ir.Constant(i32, 0)),
                                        undef, splat)
            for v in range(nv):
                acc = accs[r][v]
                builder.store(builder.call(fma, [sv, bv[v], builder.load(acc)]), acc)
    for r in range(mr):
        row = at(pc, builder.mul(const(r), ldc))
        for v in range(nv):
            vstore(builder.load(accs[r][v]), at(row, const(v * vw)), v == nv - 1)


#: what a tile starts from: zeros, ``c`` (accumulate) or the bias row (its first block of k)
START_ZERO, START_C, START_BIAS = 0, 1, 2


@intrinsic(prefer_literal=True)
def _tile(typingctx, a, b, c, bias, i0, j0, mr, nv, tail, start):
    """One tile: rows ``i0 : i0+mr`` and columns ``j0 : j0 + (nv-1)·vw + tail`` of ``c`` =
    ``start`` + those rows of ``a`` times those columns of ``b``. ``mr`` is a constant of the
    calling code (a key of :data:`TILES`: only its tiles are generated), ``nv`` is up to
    ``TILES[mr]``. ``b`` and ``c`` need unit stride along their rows, ``a`` any strides;
    ``bias`` is read (whatever ``start``) and needs the columns of ``c``."""
    if not (isinstance(a, types.Array) and a.ndim == b.ndim == c.ndim == 2 and bias.ndim == 1
            and a.dtype == b.dtype == c.dtype == bias.dtype
            and a.dtype in (types.float32, types.float64)
            and isinstance(mr, types.IntegerLiteral) and mr.literal_value in TILES):
        return None
    m = mr.literal_value
    sig = types.void(a, b, c, bias, types.int64, types.int64, mr, types.int64, types.int64,
                     types.int64)

    def codegen(context, builder, signature, args):
        a_, b_, c_, bias_, i0_, j0_, _, nv_, tail_, start_ = args
        aty, bty, cty, biasty = signature.args[:4]
        fl = context.get_value_type(aty.dtype)
        size = aty.dtype.bitwidth // 8
        vw = _VECTOR_BYTES // size
        A = context.make_array(aty)(context, builder, a_)
        B = context.make_array(bty)(context, builder, b_)
        C = context.make_array(cty)(context, builder, c_)
        pbias = builder.gep(context.make_array(biasty)(context, builder, bias_).data, [j0_])

        def strides(arr):
            return [builder.sdiv(s, ir.Constant(s.type, size))
                    for s in cgutils.unpack_tuple(builder, arr.strides)]

        sa0, sa1 = strides(A)
        ldb, ldc = strides(B)[0], strides(C)[0]
        k_len = cgutils.unpack_tuple(builder, A.shape)[1]
        pa = builder.gep(A.data, [builder.mul(i0_, sa0)])
        pb = builder.gep(B.data, [j0_])
        pc = builder.gep(C.data, [builder.add(builder.mul(i0_, ldc), j0_)])
        end = builder.append_basic_block("tile.end")
        switch = builder.switch(nv_, end)
        for n in range(1, TILES[m] + 1):
            block = builder.append_basic_block(f"tile.{m}x{n}")
            switch.add_case(ir.Constant(nv_.type, n), block)
            builder.position_at_end(block)
            args = (context, builder, fl, vw, m, n, pa, sa0, sa1, pb, ldb, pc, ldc, pbias,
                    k_len, tail_, start_)
            if n < TILES[m]:  # the last block of a row: its tail is masked
                _emit_tile(*args)
            else:  # whole blocks in a row's middle: plain loads (a masked load costs a
                # register and more time on AVX2: 32x128 @ 128x512 float32 compiled for haswell,
                # one thread, loaded machine: 46-49 -> 66-91 GFLOP/s)
                whole = builder.icmp_signed("==", tail_, ir.Constant(tail_.type, vw))
                with builder.if_else(whole) as (then, otherwise):
                    with then:
                        _emit_tile(*args, masked=False)
                    with otherwise:
                        _emit_tile(*args)
            builder.branch(end)
        builder.position_at_end(end)
        return context.get_dummy_value()

    return sig, codegen


#: blocks of a large product: ``KC`` steps of ``k`` keep a column block of ``b`` (KC × 48
#: floats on AVX-512, KC × 16 on AVX2) in L1, ``MC`` rows keep that slice of ``a``
#: (MC × KC) in L2 while the blocks pass
KC, MC = 256, 128
#: bytes of a memory page and of a cache line
PAGE, LINE = 4096, 64


#: a ``b`` of more than this many bytes is worth packing into panels (:func:`pack`): above the
#: L2 cache, the walk down a column block of a row-major ``b`` crosses a page every row and
#: the prefetcher stops at each (LSTM H=1024 step, 16×1024 @ 1024×4096 float32, one Zen 4
#: core: 5.4 ms row-major, 2.3 ms in panels; 1 MiB and less: the same)
PANEL_MIN_BYTES = 1 << 20


def panel_width(itemsize: int) -> int:
    """Columns of a panel: the main tile's (3 vectors on AVX-512: 48 float32)."""
    return _NV_MAIN * (_VECTOR_BYTES // itemsize)


@jit(any_layout=("a", "b", "c"))
def matmul(a, b, c, accumulate, bias):
    """``c = a @ b + bias`` (or ``c += a @ b`` when ``accumulate``) for ``a (M, K)``,
    ``b (K, N)`` or its panels ``(P, K, W)`` (:func:`pack`), ``c (M, N)`` and ``bias (N,)``
    or empty for none; ``b`` and ``c`` with unit stride along rows, ``a`` any strides, ``c``
    not overlapping ``a`` or ``b``. Panels give the same result to the bit: each entry's sum
    runs over ``k`` in the same order."""
    M, N = c.shape
    K = a.shape[1]
    if N > 1 and ((b.size > 0 and b.strides[b.ndim - 1] != b.itemsize)
                  or (M > 0 and c.strides[1] != c.itemsize)):
        raise ValueError("matmul: b and c need unit stride along their rows")
    with_bias = bias.shape[0] > 0 and not accumulate
    if M == 0 or N == 0:
        return
    first = START_C if accumulate else START_BIAS if with_bias else START_ZERO
    row = bias if with_bias else c[0]  # read by every tile: valid memory of N columns
    if b.ndim == 3:  # a panel at a time: its K × W values are contiguous
        W = b.shape[2]
        if M > 1 and K >= KC and a.strides[0] % PAGE == 0:
            a = _spaced(a)
        for j0 in range(0, N, W):
            j1 = min(N, j0 + W)
            _blocks(a, b[j0 // W], c[:, j0:j1], row[j0:j1], first, K, M)
    else:
        _blocks(a, b, c, row, first, K, M)


@jit(any_layout=("a",))
def _spaced(a):
    """A copy of ``a`` with rows one cache line longer, for rows a page apart (H = 1024
    float32): a tile's rows of ``a`` then share one set of the L1 cache and evict each
    other; the copy costs one pass over ``a`` (16×1024 @ 1024×4096 in panels: 3.8 -> 2.6
    ms). Only before panels, in a function of its own: anywhere else, or inlined, the
    product's tiles spilled registers on AVX2 (22 -> 66-70 stores, tests/test_target.py)."""
    M, K = a.shape
    out = np.empty((M, K + LINE // a.itemsize), a.dtype)
    out[:, :K] = a
    return out[:, :K]


def pack(b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``b (K, N)`` (any strides: a weight's ``.T`` is read in place) into ``out (P, K, W)``
    with ``W = panel_width``: panel ``p`` holds columns ``p·W : (p+1)·W``, each row of it
    contiguous (the last panel's columns past ``N`` are left as they are: never read)."""
    if b.T.flags.c_contiguous and out.flags.c_contiguous and b.size:
        _pack_rows(b.T, out)  # a weight's .T, the time loops' W_h
        return out
    W = out.shape[2]
    for q in range(out.shape[0]):
        cols = b[:, q * W : (q + 1) * W]
        if cols.strides[1] == cols.itemsize or cols.size < 2**12:
            out[q, :, : cols.shape[1]] = cols
        else:
            copy_into(cols, out[q, :, : cols.shape[1]])
    return out


@jit
def _pack_rows(w, out):
    """:func:`pack` of ``b = w.T`` for a row-major ``w (N, K)`` (a weight: ``W_h`` for its
    ``.T``), every panel in one call: ``out[p, k, j] = w[p·W + j, k]``, in 8 × 8 blocks with
    the panel's columns outer. Against :func:`copy_into` per panel (its ``dst``, a slice of
    the panels, has strides known only at run time, so its stores were not vectorized): LSTM
    H=1024's ``W_h`` (16 MB) 7-9 -> 2.5-3.4 ms, H=512 0.57-0.69 -> 0.36-0.48 ms, one thread,
    load ~3.5 on 2 CPUs."""
    N, K = w.shape
    W = out.shape[2]
    J = W - W % 8
    for q in range(out.shape[0]):
        n0 = q * W
        o = out[q]
        if N - n0 < W:  # the last panel, part filled
            for k in range(K):
                for j in range(N - n0):
                    o[k, j] = w[n0 + j, k]
            continue
        for j0 in range(0, J, 8):
            for k0 in range(0, K - 7, 8):
                for j in range(8):
                    for i in range(8):
                        o[k0 + i, j0 + j] = w[n0 + j0 + j, k0 + i]
        for j in range(J, W):
            for k in range(K):
                o[k, j] = w[n0 + j, k]
        for k in range(K - K % 8, K):
            for j in range(J):
                o[k, j] = w[n0 + j, k]


# the helpers of matmul are inlined into it: a call with array arguments costs ~0.1 µs of
# reference counting, which was half of a one-row product (1×32 @ 32×128: 0.27 → 0.12 µs)
@inline
def _blocks(a, b, c, row, first, K, M):
    for k0 in range(0, max(K, 1), KC):  # K = 0: one pass of tiles, c = its start
        k1 = min(K, k0 + KC)
        for i0 in range(0, M, MC):
            i1 = min(M, i0 + MC)
            _block(a[i0:i1, k0:k1], b[k0:k1], c[i0:i1], row, first if k0 == 0 else START_C)


@inline
def _block(a, b, c, row, start):
    M = c.shape[0]
    i = M - M % ROWS
    _rows(a, b, c, row, 0, i, ROWS, start)
    for mr in (4, 2, 1):
        if M - i >= mr:
            _rows(a, b, c, row, i, i + mr, mr, start)
            i += mr


@inline
def _rows(a, b, c, row, i0, i1, mr, start):
    N = c.shape[1]
    vw = _VECTOR_BYTES // c.itemsize
    per = _NV_MAIN if mr == ROWS else _NV4 if mr == 4 else _NV2 if mr == 2 else _NV1
    nvec = (N + vw - 1) // vw
    for v0 in range(0, nvec, per):  # column blocks outer: that block of b stays in L1
        nv = min(per, nvec - v0)
        tail = min(vw, N - (v0 + nv - 1) * vw)
        j = v0 * vw
        for i in range(i0, i1, mr):  # _tile's row count must be a constant
            if mr == ROWS:
                _tile(a, b, c, row, i, j, ROWS, nv, tail, start)
            elif mr == 4:
                _tile(a, b, c, row, i, j, 4, nv, tail, start)
            elif mr == 2:
                _tile(a, b, c, row, i, j, 2, nv, tail, start)
            else:
                _tile(a, b, c, row, i, j, 1, nv, tail, start)


@jit(any_layout=("src",))
def copy_into(src, dst):
    """``dst[...] = src`` (2-D, same shape) for a transposed ``src`` (a weight's ``.T``), in
    8 × 8 blocks, each read along the weight's rows (``W = src.T``). Constant trip counts
    let LLVM unroll a block into vector loads and shuffles: 512 × 2048 float32 (the LSTM
    H=512 ``W_h``) 2.7 ms with NumPy's copy, 0.61 ms in 16 × 16 blocks with loops of
    variable length, 0.24 ms so; 512 × 128: 48, 38 and 16 µs."""
    K, N = dst.shape
    W = src.T
    for n0 in range(0, N - 7, 8):
        for k0 in range(0, K - 7, 8):
            for j in range(8):
                for i in range(8):
                    dst[k0 + i, n0 + j] = W[n0 + j, k0 + i]
        for k in range(K - K % 8, K):
            for j in range(8):
                dst[k, n0 + j] = W[n0 + j, k]
    for n in range(N - N % 8, N):
        for k in range(K):
            dst[k, n] = W[n, k]


# reassociated: without it a dot product is a chain of dependent adds, one lane wide
# (64 × 64: 1.2 µs, against 0.35 µs in 16 lanes)
@jit(reassociate=True)
def matvec(W, v, start, out):
    """``out = start + W @ v`` (``start`` empty: none; it may be ``out``) for ``W (n, k)``
    with its rows in memory: a dot product per row, in SIMD lanes (summed in another order
    than NumPy's: rounding only). A streaming step's products, in the step's own compiled
    call, where ``W.T`` in the micro-kernel's layout would cost a copy of ``W`` per step.
    Faster than NumPy's ``W.dot(v)`` while ``W`` stays in cache (64 × 64: 0.35 µs against
    0.42, call included; 512 × 128: 1.9 against 2.5), slower from ~2**18 values (1024 ×
    512: 20 against 11 µs, NumPy on two threads)."""
    zero, with_start = out.dtype.type(0), start.shape[0] > 0
    for j in range(W.shape[0]):
        w, acc = W[j], zero
        for i in range(W.shape[1]):
            acc += w[i] * v[i]
        out[j] = start[j] + acc if with_start else acc
