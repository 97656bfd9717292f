"""The compiled fast path (rnnkit.kernels) against the reference NumPy loop: outputs and every
gradient, for each cell and option, at batch sizes and widths that reach every tile of the
micro-kernel; the micro-kernel itself against NumPy; and gradient checks with the fast backend
forced."""

import collections
import itertools
import os
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("numba")

import rnnkit as rk
from helpers_rnnkit import sq_loss
from rnnkit import kernels
from rnnkit.diagnostics import gradcheck
from rnnkit.kernels import _buffers, chunk_steps

CELLS = {"rnn": rk.RNN, "lstm": rk.LSTM, "gru": rk.GRU}
RTOL = {"float64": 1e-12, "float32": 1e-5}


@pytest.fixture(autouse=True)
def restore_backend():
    old = kernels.get_backend()
    yield
    kernels.set_backend(old)


def build(cell, dtype, *, bias=True, bidi=False, seq=True, units=5, **extra):
    opts = {"c0": "learned"} if cell == "lstm" else {}
    layer = CELLS[cell](units, return_sequences=seq, bidirectional=bidi, bias=bias, h0="learned",
                        **opts, **extra)
    model = rk.Sequential([layer], seed=3, dtype=dtype)
    model.build(4)
    rng = np.random.default_rng(7)
    for v in model.parameters().values():  # non-zero learned states and biases
        v += 0.3 * rng.standard_normal(v.shape).astype(v.dtype)
    return model


def run(model, backend, X, lengths, R):
    kernels.set_backend(backend)
    model.zero_grad()
    out = model.forward(X, lengths)
    dX = model.backward(R)
    grads = {k: v.copy() for k, v in model.gradients().items()}
    return out, dX, grads


def assert_close(actual, desired, dtype, what):
    scale = float(np.max(np.abs(desired))) if np.size(desired) else 0.0
    np.testing.assert_allclose(actual, desired, rtol=RTOL[dtype], atol=RTOL[dtype] * scale,
                               err_msg=what)


def compare(model, dtype, X, lengths):
    R = np.random.default_rng(2).standard_normal(np.shape(model.predict(X, lengths)))
    ref = run(model, "numpy", X, lengths, R)
    fast = run(model, "numba", X, lengths, R)
    assert_close(fast[0], ref[0], dtype, "output")
    assert_close(fast[1], ref[1], dtype, "dX")
    assert ref[2].keys() == fast[2].keys()
    for k in ref[2]:
        assert_close(fast[2][k], ref[2][k], dtype, k)


def data(B=3, T=7, D=4, seed=0):
    return np.random.default_rng(seed).standard_normal((B, T, D))


GRID = list(itertools.product(CELLS, [True, False], [False, True], [False, True],
                              ["float64", "float32"]))


@pytest.mark.parametrize("seq", [True, False])
@pytest.mark.parametrize("cell,bias,masked,bidi,dtype", GRID)
def test_compiled_loop_equals_numpy(cell, bias, masked, bidi, dtype, seq):
    model = build(cell, dtype, bias=bias, bidi=bidi, seq=seq)
    compare(model, dtype, data(), [7, 4, 1] if masked else None)


# batch sizes: every row tile (8, 4, 2, 1) alone and combined (13 = 8 + 4 + 1); widths: a
# masked last vector only (G*H < 16), and several column blocks with a masked tail (G*H = 40,
# 120, 160)
@pytest.mark.parametrize("B", [1, 2, 4, 8, 13, 16])
@pytest.mark.parametrize("cell,units", [("rnn", 5), ("rnn", 40), ("lstm", 5), ("lstm", 40),
                                        ("gru", 5), ("gru", 40)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("threads", [1, 3])
def test_every_tile_of_the_product(cell, units, B, dtype, threads, monkeypatch):
    # 3 threads: the time loops run on parts of the batch, at least 4 rows each: B = 8 in
    # 2 parts, 13 and 16 in 3
    monkeypatch.setattr(kernels, "SPLIT_MIN_MACS", 0)
    monkeypatch.setattr(kernels._parallel, "_threads", threads)
    model = build(cell, dtype, units=units)
    lengths = np.random.default_rng(B).integers(1, 8, size=B)
    compare(model, dtype, data(B=B), lengths)


@pytest.mark.parametrize("T", [2, 7, 9])
@pytest.mark.parametrize("bidi", [False, True])
@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_backward_in_chunks_of_steps(bidi, T, split, dtype, monkeypatch):
    # every backward in chunks (a quarter of the steps: T=7 and 9 end on a shorter chunk, T=2
    # gives chunks of one step), masked rows, both directions, the batch split or not
    monkeypatch.setattr(kernels, "CHUNK_MIN_BYTES", 0)
    if split:
        monkeypatch.setattr(kernels, "SPLIT_MIN_MACS", 0)
        monkeypatch.setattr(kernels._parallel, "_threads", 2)
    seen = []
    monkeypatch.setattr(kernels, "chunk_steps",
                        lambda *a: seen.append(chunk_steps(*a)) or seen[-1])
    model = build("rnn", dtype, bidi=bidi)  # the gated cells' dxz is their gates
    lengths = np.random.default_rng(T).integers(1, T + 1, size=9)
    lengths[0] = T
    compare(model, dtype, data(B=9, T=T), lengths)
    assert seen and all(s == -(-T // 4) for s in seen)


def test_a_backward_in_chunks_holds_a_quarter_of_dxz(monkeypatch):
    import tracemalloc

    kernels.set_backend("numba")
    model = build("rnn", "float64", units=64)
    X, R = data(B=8, T=40), np.ones((8, 40, 64))
    dxz_bytes = 40 * 8 * model.layers[0].params["W_h"].shape[0] * 8
    peaks = {}
    for least in (1 << 40, 0):
        monkeypatch.setattr(kernels, "CHUNK_MIN_BYTES", least)
        model.forward(X)
        model.backward(R)  # compiled and warm: tracemalloc sees the compiler's memory too
        model.forward(X)
        kernels.release_buffers()  # no array kept from the last backward
        tracemalloc.start()
        model.backward(R)
        peaks[least] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    saved = peaks[1 << 40] - peaks[0]
    assert 0.7 * dxz_bytes <= saved <= 0.8 * dxz_bytes, saved  # chunks of 10 steps of 40


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gated_backward_writes_dxz_over_the_gates(cell):
    # no array of ∂L/∂z over all steps: the backward's new arrays together stay under half
    # of one (measured: 0.33 of it; 1.28 when the LSTM made its dxz apart)
    import tracemalloc

    kernels.set_backend("numba")
    model = build(cell, "float64", units=64)
    X, R = data(B=8, T=40), np.ones((8, 40, 64))
    dxz_bytes = 40 * 8 * model.layers[0].params["W_h"].shape[0] * 8
    model.forward(X)
    model.backward(R)  # compiled and warm
    model.forward(X)
    kernels.release_buffers()
    tracemalloc.start()
    model.backward(R)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 0.5 * dxz_bytes, peak / dxz_bytes


def test_chunk_steps():
    big = kernels.CHUNK_MIN_BYTES
    assert chunk_steps(100, big // 100 - 1) == 100  # under the least: whole
    assert chunk_steps(100, -(-big // 100)) == 25  # a quarter
    assert chunk_steps(7, big) == 2
    assert chunk_steps(1000, kernels.CHUNK_MAX_BYTES // 10) == 10  # at most the most
    assert chunk_steps(3, 2 * kernels.CHUNK_MAX_BYTES) == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("M,K,N", [(1, 64, 256), (2, 5, 3), (13, 1, 17), (9, 0, 5), (0, 3, 4),
                                   (7, 33, 47), (16, 64, 256), (24, 20, 200), (3, 9, 16)])
def test_micro_kernel_matmul(M, K, N, dtype):
    from rnnkit.kernels._gemm import matmul

    rng = np.random.default_rng(M * 100 + K + N)
    a, b = rng.standard_normal((M, K)).astype(dtype), rng.standard_normal((K, N)).astype(dtype)
    c0 = rng.standard_normal((M, N)).astype(dtype)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    atol = tol * max(1.0, np.abs(ref).max(initial=0.0))
    bias, none = rng.standard_normal(N).astype(dtype), np.empty(0, dtype)
    for a_in in (a, np.asfortranarray(a), np.ascontiguousarray(a.T).T, a[:, ::1]):
        c = c0.copy()
        matmul(a_in, b, c, False, none)
        np.testing.assert_allclose(c, ref, rtol=tol, atol=atol)
        matmul(a_in, b, c, False, bias)
        np.testing.assert_allclose(c, ref + bias, rtol=tol, atol=atol)
        c = np.pad(c0, ((0, 1), (0, 1)), constant_values=7.0)  # cells beyond c stay untouched
        matmul(a_in, b, c[:M, :N], True, bias)  # the bias only where c starts afresh
        np.testing.assert_allclose(c[:M, :N], c0 + ref, rtol=tol, atol=atol)
        assert np.all(c[M, :] == 7.0) and np.all(c[:, N] == 7.0)




@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_panels_give_the_products_bits(dtype):
    """``b`` in panels (``_gemm.pack``: a weight larger than the L2 cache) gives the bits of
    the row-major product: full and partial last panels, every row tile, a transposed ``b``
    read in place, the bias, accumulation, K = 0."""
    kernels._load()
    _gemm = kernels._gemm
    W = _gemm.panel_width(np.dtype(dtype).itemsize)
    rng = np.random.default_rng(5)
    # (16, 1024, ...): rows of a a page apart, copied with longer rows first (_spaced)
    for M, K, N in [(13, 70, 2 * W), (16, 300, 3 * W + 5), (3, 9, W - 1), (1, 5, 2 * W + 1),
                    (9, 0, W + 2), (4, 600, 1), (16, 1024, W + 3)]:
        a = rng.standard_normal((M, K)).astype(dtype)
        for b in (rng.standard_normal((K, N)).astype(dtype),
                  rng.standard_normal((N, K)).astype(dtype).T):
            panels = _gemm.pack(b, np.full((-(-N // W), K, W), np.nan, dtype))
            none, bias_n = np.empty(0, dtype), rng.standard_normal(N).astype(dtype)
            for accumulate, bias in ((False, none), (False, bias_n), (True, none)):
                start = rng.standard_normal((M, N)).astype(dtype)
                rows, cols = start.copy(), start.copy()
                _gemm.matmul(a, np.ascontiguousarray(b), rows, accumulate, bias)
                _gemm.matmul(a, panels, cols, accumulate, bias)
                np.testing.assert_array_equal(cols, rows, err_msg=f"{M, K, N, accumulate}")
                want = (start if accumulate else bias if bias.size else 0) + a.astype(
                    np.float64) @ b.astype(np.float64)
                tol = 1e-4 if dtype == np.float32 else 1e-12
                np.testing.assert_allclose(cols, want, rtol=tol, atol=tol * (1 + K))


def test_pack_lays_a_weights_transpose_out_in_panels():
    """A weight's ``.T`` packed in one compiled call (``_gemm._pack_rows``): panels of any width
    (8 × 8 blocks, and the columns and rows past them), the last one part filled."""
    kernels._load()
    w = np.random.default_rng(3).standard_normal((61, 43)).astype(np.float32)
    for W in (48, 13, 5):
        P = -(-61 // W)
        out = kernels._gemm.pack(w.T, np.full((P, 43, W), np.nan, np.float32))
        want = np.pad(w.T, ((0, 0), (0, P * W - 61)), constant_values=np.nan)
        np.testing.assert_array_equal(out, want.reshape(43, P, W).transpose(1, 0, 2))


@pytest.mark.parametrize("threads", [1, 3])
def test_a_large_weight_is_packed_by_panels_on_the_threads(threads, monkeypatch):
    """``_weights`` packs a weight over 1 MiB in parts of its panels, one per thread; the
    panels are those of one ``pack`` (the last one part filled)."""
    kernels._load()
    w = np.random.default_rng(4).standard_normal((1500, 200)).astype(np.float32)  # 1.1 MiB
    W = kernels._gemm.panel_width(4)
    P = -(-1500 // W)
    want = kernels._gemm.pack(w.T, np.full((P, 200, W), np.nan, np.float32))
    parts = []
    real = kernels._split
    monkeypatch.setattr(kernels, "_split", lambda fn, n, k, *a, **kw: (parts.append(k),
                                                                      real(fn, n, k, *a, **kw)))
    previous = kernels.get_num_threads()
    kernels.set_num_threads(threads)
    try:
        out = kernels._weights(w.T)
    finally:
        kernels.set_num_threads(previous)
    assert parts == [threads]
    valid = np.arange(P * W).reshape(P, 1, W) < 1500  # the last panel's columns past N: unread
    np.testing.assert_array_equal(np.where(valid, out, 0), np.where(valid, want, 0))


# one dtype per cell: each (cell, dtype) compiles every loop again for W_h in panels (20-40 s
# with an empty cache); the product in panels is tested in both dtypes above
@pytest.mark.parametrize("cell,dtype", [("rnn", "float64"), ("lstm", "float32"),
                                        ("gru", "float64")])
def test_weights_in_panels_loops_equal_reference(cell, dtype, monkeypatch):
    """Every W_h in panels (the rule for those above ``PANEL_MIN_BYTES``, here all): the
    loops' forward, backward and predict equal the reference loop; the batch split or not."""
    kernels._load()
    monkeypatch.setattr(kernels._gemm, "PANEL_MIN_BYTES", 0)
    for threads, bidi in ((1, False), (3, True)):
        monkeypatch.setattr(kernels, "SPLIT_MIN_MACS", 0 if threads > 1 else 10**12)
        monkeypatch.setattr(kernels._parallel, "_threads", threads)
        model = build(cell, dtype, units=40, bidi=bidi)
        compare(model, dtype, data(B=13), np.random.default_rng(1).integers(1, 8, size=13))
        kernels.set_backend("numba")
        fast = model.predict(data(B=13))
        kernels.set_backend("numpy")
        assert_close(fast, model.predict(data(B=13)), dtype, "predict")


def test_wide_lstm_in_panels_with_rows_a_page_apart():
    """H = 1024 float32 as it comes (no patched threshold): W_h (16 MB) in panels, and the
    loops' rows of h 4 KB apart, so each step's product copies them first (_gemm.matmul)."""
    model = build("lstm", "float32", units=1024, recurrent_init="torch")  # no 1024² QR
    compare(model, "float32", data(B=9, T=3), [3, 1, 2] * 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,k", [(1, 1), (5, 3), (37, 16), (64, 64), (130, 33), (3, 0)])
def test_matvec_with_and_without_a_start(n, k, dtype):
    from rnnkit.kernels._gemm import matvec

    kernels._load()
    rng = np.random.default_rng(n * 100 + k)
    W, v = rng.standard_normal((n, k)).astype(dtype), rng.standard_normal(k).astype(dtype)
    start = rng.standard_normal(n).astype(dtype)
    ref = W.astype(np.float64) @ v.astype(np.float64)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    atol = tol * max(1.0, np.abs(ref).max(initial=0.0))
    out = np.full(n, np.nan, dtype)
    matvec(W, v, start[:0], out)  # empty start: none
    np.testing.assert_allclose(out, ref, rtol=tol, atol=atol)
    matvec(W, v, start, out)
    np.testing.assert_allclose(out, start + ref, rtol=tol, atol=atol)
    out = start.copy()
    matvec(W, v, out, out)  # the start may be the output
    np.testing.assert_allclose(out, start + ref, rtol=tol, atol=atol)
    assert out.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows,cols", [(127, 129), (512, 32), (7, 3001), (3001, 7), (1, 20000),
                                       (20000, 1), (515, 1030)])
@pytest.mark.parametrize("threads", [1, 2])
def test_operand_copies_a_transpose_of_any_shape(rows, cols, dtype, threads, monkeypatch):
    # the blocked copy (8 x 8 blocks and the tails of both sides) from 2**14 values, on the
    # threads from 2**18 (515 x 1030), NumPy's below; padded rows, the same values
    monkeypatch.setattr(kernels._parallel, "_threads", threads)
    kernels._load()  # the compiled copy: _operand runs after a kernel's forward loaded it
    W = np.random.default_rng(rows).standard_normal((rows, cols)).astype(dtype)
    out = kernels._operand(W.T)
    assert out.shape == (cols, rows) and out.strides[1] == out.itemsize
    assert out.strides[0] == (rows + 64 // out.itemsize) * out.itemsize
    np.testing.assert_array_equal(out, W.T)


def test_one_compiled_version_per_dtype_whatever_the_layouts(monkeypatch):
    """A batch of one row, one input feature and a transposed operand are arrays that numba
    would type apart ('C', 'F' instead of strided 'A'): the product and the loops compile
    once per dtype all the same, and such a call goes to that version directly after the
    first (no second trip through the compiler)."""
    from rnnkit.kernels._gemm import matmul
    from rnnkit.kernels._jit import _OneLayout

    kernels.set_backend("numba")
    for cell in CELLS:
        for B, D, seq in [(1, 1, True), (3, 4, True), (2, 1, False), (1, 3, False)]:
            model = build(cell, "float32", seq=seq)
            model.build(D)
            compare(model, "float32", data(B=B, D=D), None)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 3)).astype(np.float32), np.ones((3, 4), np.float32)
    c, none = np.zeros((5, 4), np.float32), np.empty(0, np.float32)
    for a_in in (a, np.asfortranarray(a), a[::2], a[:1]):
        for b_in in (b, np.pad(b, ((0, 0), (0, 2)))[:, :4], b[:1], b[:, :1].copy()):
            matmul(a_in[:, : len(b_in)], b_in, c[: len(a_in), : b_in.shape[1]], False, none)
    mods = kernels._load()
    for fn in (matmul, *(getattr(m, f"{d}_loop") for m in mods.values()
                               for d in ("forward", "backward"))):
        # a weight in panels (3-D, test_weights_in_panels...) is a version of its own
        f32 = collections.Counter(tuple(getattr(t, "ndim", 0) for t in s)
                                  for s in fn.signatures if str(s[0].dtype) == "float32")
        assert set(f32.values()) == {1}, (fn.py_func.__qualname__, fn.signatures)

    compiled = []
    monkeypatch.setattr(_OneLayout, "compile",
                        lambda self, sig: compiled.append(sig) or pytest.fail("compiled"))
    matmul(np.asfortranarray(a), np.pad(b, ((0, 0), (0, 2)))[:, :4], c, False, none)
    model = build("lstm", "float32")
    model.build(1)
    run(model, "numba", data(B=1, D=1), None, rng.standard_normal((1, 7, 5)))
    assert compiled == []
@pytest.mark.parametrize("cell,act,gate", [
    ("rnn", "relu", None), ("rnn", "identity", None), ("rnn", "sigmoid", None),
    ("lstm", "relu", "sigmoid"), ("lstm", "tanh", "identity"), ("gru", "relu", "tanh"),
])
def test_other_default_activations(cell, act, gate):
    extra = {"activation": act} if gate is None else {"activation": act, "gate_activation": gate}
    model = build(cell, "float64", **extra)
    compare(model, "float64", 0.5 * data(), [7, 4, 1])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("cell,bias,seq,extra", [
    ("lstm", True, True, {}), ("gru", True, True, {}), ("gru", False, False, {}),
    ("lstm", False, False, {"peepholes": True, "proj_size": 3}),
])
def test_layer_norm_runs_compiled_and_equals_numpy(cell, bias, seq, extra, dtype):
    # gains and biases of the norms away from 1 and 0 (build adds noise to every parameter)
    model = build(cell, dtype, bias=bias, bidi=True, seq=seq, layer_norm=True, **extra)
    compare(model, dtype, data(), [7, 4, 1])
    kernels.set_backend("numba")
    model.forward(data(), [7, 4, 1])
    assert isinstance(model._tape[0][0][0][0][3], kernels.Tape)  # not the reference loop


def test_kernel_runs_for_defaults_and_falls_back_otherwise():
    x = data().swapaxes(0, 1).copy()
    kernels.set_backend("numba")
    for layer, fast in [(rk.LSTM(3), True), (rk.RNN(3, activation="elu"), False),
                        (rk.GRU(3, gate_activation="hard_tanh"), False)]:
        layer.build(4, np.random.default_rng(0), np.dtype("float64"))
        runs = layer.forward(x)[1][0]
        assert isinstance(runs[0][3], kernels.Tape) == fast
    kernels.set_backend("numpy")
    layer = rk.LSTM(3)
    layer.build(4, np.random.default_rng(0), np.dtype("float64"))
    assert isinstance(layer.forward(x)[1][0][0][3], list)


@pytest.mark.parametrize("cell,bidi,lengths", [
    ("rnn", False, None), ("lstm", True, [4, 2]), ("gru", False, [4, 2]), ("gru", True, None),
])
@pytest.mark.parametrize("output", ["h", "y"])
def test_gradcheck_with_fast_backend(cell, bidi, lengths, output):
    kernels.set_backend("numba")
    readout = rk.Dense(2, activation="tanh") if output == "y" else None
    model = rk.Sequential([CELLS[cell](3, output=output, readout=readout, bidirectional=bidi,
                                       return_sequences=True, h0="learned")], seed=3)
    X = data(B=2, T=4, D=2)
    y = np.random.default_rng(1).standard_normal(model.predict(X, lengths).shape)
    errs = gradcheck(model, X, y, loss=sq_loss, lengths=lengths)
    assert max(errs.values()) < 1e-7, errs


@pytest.mark.parametrize("cell", CELLS)
def test_streaming_one_step_at_a_time_equals_full_sequence(cell):
    kernels.set_backend("numba")
    model = rk.Sequential([CELLS[cell](4, return_sequences=True, return_state=True)], seed=0,
                          dtype="float64")
    X = data(B=2, T=6, D=3)
    full, _ = model.predict(X)
    state, steps = None, []
    for t in range(6):
        out, s = model.predict(X[:, t : t + 1], initial_state=state)
        state = {0: s[0]}
        steps.append(out)
    # one-step calls multiply by np.matmul (no transposed copy of W_h), the full sequence by
    # the micro-kernel: the same equations, sums in another order
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("cell", CELLS)
def test_one_step_sequences_train_and_stream_as_the_reference(cell, B):
    # T = 1 takes the step alone (kernels._step): matrix-vector products at B = 1, the
    # micro-kernel above; a tape for the backward when training
    model = build(cell, "float64", bias=cell != "rnn")
    compare(model, "float64", data(B=B, T=1), None)
    stream, ref = model.stream(), build(cell, "float64", bias=cell != "rnn")
    kernels.set_backend("numpy")
    want = ref.predict(data(B=B, T=3))
    kernels.set_backend("numba")
    got = np.stack([stream.step(x) for x in data(B=B, T=3).swapaxes(0, 1)], axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("cell,extra", [
    ("lstm", {"layer_norm": True, "peepholes": True, "proj_size": 3, "zoneout": (0.2, 0.3)}),
    ("gru", {"layer_norm": True, "zoneout": 0.2}),
    ("rnn", {"zoneout": 0.3}),
])
def test_one_step_of_a_variant_runs_the_compiled_loop(cell, extra, monkeypatch):
    # T = 1 with a variant: the loop for one step (not kernels._step, not the NumPy cell);
    # training (a tape) and streaming (zoneout as its expectation) as the reference
    model = build(cell, "float64", **extra)
    compare(model, "float64", data(B=3, T=1), None)
    kernels.set_backend("numpy")
    want = model.predict(data(B=3, T=3))
    kernels.set_backend("numba")
    monkeypatch.setattr(type(model.layers[0].cell), "step", None)  # the NumPy cell's step
    model.forward(data(B=3, T=1))
    assert isinstance(model._tape[0][0][0][0][3], kernels.Tape)
    stream = model.stream()
    got = np.stack([stream.step(x) for x in data(B=3, T=3).swapaxes(0, 1)], axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cell", CELLS)
def test_a_stream_step_in_one_call_equals_the_reference(cell, bias, dtype, monkeypatch):
    # one sequence without a tape: products (_gemm.matvec) and step in one compiled call
    # (one_step) while the weights are small, NumPy's products above; both as the reference.
    # 37 units: the rows' vectors end in a masked tail
    mod = kernels._load()[{"rnn": "elman", "lstm": "lstm", "gru": "gru"}[cell]]
    calls, one_step = [], mod.one_step
    monkeypatch.setattr(mod, "one_step", lambda *a: calls.append(1) or one_step(*a))
    X = data(B=1, T=4, D=4)[0]
    kernels.set_backend("numpy")
    want = build(cell, dtype, bias=bias, units=37).predict(X)
    kernels.set_backend("numba")
    for limit, n_calls in ((kernels.ONE_STEP_MAX_BYTES, 4), (0, 0)):
        monkeypatch.setattr(kernels, "ONE_STEP_MAX_BYTES", limit)
        calls.clear()
        stream = build(cell, dtype, bias=bias, units=37).stream()
        got = np.stack([stream.step(x) for x in X])
        assert len(calls) == n_calls
        assert got.dtype == dtype
        assert_close(got, want, dtype, f"limit {limit}")
    # a masked step carries the state
    layer = build(cell, dtype, bias=bias, units=37).layers[0]
    s0 = layer.initial_state(1, "", np.dtype(dtype))
    x = data(B=1, T=1, D=4).astype(dtype)
    monkeypatch.setattr(kernels, "ONE_STEP_MAX_BYTES", 2**20)
    for mask in (np.array([[False]]), np.array([[True]])):
        calls.clear()
        hs, tape, final = kernels.forward(layer.cell, layer._dir_params(""), x, s0, mask,
                                          train=False)
        assert len(calls) == 1 and tape is None and len(final) == len(s0)
        if not mask[0, 0]:
            for a, b in zip((hs[0], *final), (s0[0], *s0)):
                np.testing.assert_array_equal(a, b)
        else:
            assert not np.array_equal(hs[0], s0[0])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("cell", CELLS)
def test_one_sequence_runs_the_loop_with_less_python_to_the_same_bits(cell, dtype, monkeypatch):
    # predict of one sequence of a plain cell: kernels._sequence, the loop that forward runs
    # with fewer calls around it. The same bits as forward's way (SEQUENCE_MAX_BYTES = 0) and
    # the same final state, over all steps and over a shorter length (the state carried);
    # both as the reference
    calls, short, limit = [], kernels._sequence, kernels.SEQUENCE_MAX_BYTES
    monkeypatch.setattr(kernels, "_sequence", lambda *a: calls.append(1) or short(*a))
    model = build(cell, dtype, units=37, return_state=True)
    X = data(B=1, T=9, D=4)
    flat = lambda out: (out[0], *np.atleast_2d(out[1][0]))  # noqa: E731
    for lengths in (None, [6]):
        kernels.set_backend("numba")
        calls.clear()
        got = flat(model.predict(X, lengths))
        monkeypatch.setattr(kernels, "SEQUENCE_MAX_BYTES", 0)
        want = flat(model.predict(X, lengths))
        monkeypatch.setattr(kernels, "SEQUENCE_MAX_BYTES", limit)
        assert len(calls) == 1
        kernels.set_backend("numpy")
        ref = flat(model.predict(X, lengths))
        for a, b, c in zip(got, want, ref, strict=True):  # the outputs, h_T (and c_T)
            np.testing.assert_array_equal(a, b)
            assert_close(a, c, dtype, f"lengths {lengths}")
    both = build(cell, dtype, units=37, bidi=True)  # the reversed direction over its length
    kernels.set_backend("numba")
    calls.clear()
    got = both.predict(X, [6])
    assert len(calls) == 2
    kernels.set_backend("numpy")
    assert_close(got, both.predict(X, [6]), dtype, "both directions")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_activations_within_a_few_ulp_of_numpy(dtype):
    from rnnkit.functional import sigmoid
    from rnnkit.kernels import _jit

    x = np.concatenate([np.linspace(-30, 30, 200_001), [0.0, -0.0, 1e-30, -1e-30, 1e-3, 0.4,
                                                       0.1, -0.4, 88.0, -88.0, -104.0, 500.0,
                                                       -500.0]]).astype(dtype)
    ulp = {"float32": 3, "float64": 4}[dtype]  # measured maxima (tanh, cancellation near 0.1-0.5)
    for code, ref in ((_jit.TANH, np.tanh(x)), (_jit.SIGMOID, sigmoid(x))):
        y = x.copy()
        _jit.act_inplace(y, code)
        assert y.dtype == x.dtype
        tol = ulp * np.spacing(np.abs(ref).astype(dtype)) + np.finfo(dtype).smallest_subnormal
        assert np.all(np.abs(y - ref) <= tol), (code, x[np.argmax(np.abs(y - ref) - tol)])


def test_float32_stays_float32():
    kernels.set_backend("numba")
    model = build("lstm", "float32")
    out = model.forward(data())
    assert out.dtype == np.float32
    assert model.backward(np.ones_like(out)).dtype == np.float32
    assert all(g.dtype == np.float32 for g in model.gradients().values())


def test_read_only_weights_compile_nothing_more():
    """Weights in a read-only map (a fitted estimator loaded with joblib's ``mmap_mode="r"``,
    as scikit-learn's checks do) are another type to numba: the loops take a copy instead of
    compiling every loop again."""
    kernels.set_backend("numba")
    mods = kernels._load()

    def versions():
        return sum(len(f.signatures) for m in (*mods.values(), kernels._gemm)
                   for f in vars(m).values() if hasattr(f, "signatures"))

    model = build("gru", "float64")
    want, one = model.predict(data(B=5)), model.predict(data(B=1))  # one: kernels._sequence
    before = versions()
    for v in model.parameters().values():
        v.flags.writeable = False
    np.testing.assert_array_equal(model.predict(data(B=5)), want)
    np.testing.assert_array_equal(model.predict(data(B=1)), one)
    assert versions() == before


def test_backend_switch_and_env_var():
    with pytest.raises(ValueError, match="set_backend"):
        kernels.set_backend("torch")
    code = "import rnnkit.kernels as k; print(k.get_backend())"
    env_out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, "RNNKIT_BACKEND": "numpy"}, check=True)
    assert env_out.stdout.strip() == "numpy"


def test_import_without_numba_falls_back():
    code = ("import sys; sys.modules['numba'] = None\n"
            "import numpy as np, rnnkit as rk\n"
            "m = rk.Sequential([rk.LSTM(3)]); out = m.forward(np.ones((2, 4, 2)))\n"
            "m.backward(np.ones_like(out)); print(rk.kernels.numba_available())")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "RNNKIT_BACKEND": "auto"}, check=True)
    assert res.stdout.strip() == "False"


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_products_split_over_threads(threads, dtype, monkeypatch):
    monkeypatch.setattr(kernels, "PARALLEL_MIN_FLOPS", 0)
    old = kernels.get_num_threads()
    kernels.set_num_threads(threads)
    try:
        rng = np.random.default_rng(threads)
        a = rng.standard_normal((300, 77)).astype(dtype)  # read transposed, as a gradient is
        b = rng.standard_normal((300, 50)).astype(dtype)
        out = rng.standard_normal((77, 50)).astype(dtype)
        want = out.astype(np.float64) + a.T.astype(np.float64) @ b
        kernels.matmul(a.T, b, out, accumulate=True)
        tol = 1e-4 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(out, want, rtol=tol, atol=tol)
        np.testing.assert_allclose(kernels.matmul(b.T, a), b.T.astype(np.float64) @ a,
                                   rtol=tol, atol=tol)
        bias = rng.standard_normal(77).astype(dtype)
        np.testing.assert_allclose(kernels.matmul(b.T, a, bias=bias), b.T @ a + bias, rtol=tol,
                                   atol=tol)
        x, w = b.T[:1], a[:, ::-1]  # one row, and rows of b that are not contiguous
        np.testing.assert_allclose(kernels.matmul(x, w, bias=bias), x @ w + bias, rtol=tol,
                                   atol=tol)
    finally:
        kernels.set_num_threads(old)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_one_row_times_a_transposed_weight(dtype, threads, monkeypatch):
    # a streamed step's products, x (1, K) @ W.T: rnnkit's matvec with the bias in one call
    # while W is small (ONE_STEP_MAX_BYTES), above it in blocks of rows on rnnkit's threads
    # (not OpenBLAS's); both as NumPy
    from rnnkit.kernels import _gemm

    kernels._load()
    monkeypatch.setattr(kernels._parallel, "_threads", threads)
    calls, matvec = [], _gemm.matvec
    monkeypatch.setattr(_gemm, "matvec", lambda *a: calls.append(a[0].shape[0]) or matvec(*a))
    rng = np.random.default_rng(5)
    x, W = rng.standard_normal((1, 37)).astype(dtype), rng.standard_normal((200, 37)).astype(dtype)
    bias = rng.standard_normal(200).astype(dtype)
    want = x.astype(np.float64) @ W.T.astype(np.float64)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    for limit, rows in ((kernels.ONE_STEP_MAX_BYTES, [200]), (0, [96, 104][:threads])):
        monkeypatch.setattr(kernels, "ONE_STEP_MAX_BYTES", limit)
        calls.clear()
        got = kernels.matmul(x, W.T)
        assert got.shape == (1, 200) and got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
        np.testing.assert_allclose(kernels.matmul(x, W.T, bias=bias), want + bias, rtol=tol,
                                   atol=tol)
        assert calls == (rows if threads > 1 or limit else [200]) * 2


def test_set_num_threads_checks_its_argument():
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="set_num_threads: n must be an integer >= 1"):
            kernels.set_num_threads(bad)


def test_split_loop_waits_for_and_reports_a_failed_part(monkeypatch):
    from rnnkit.kernels import elman

    monkeypatch.setattr(kernels._parallel, "_threads", 2)
    monkeypatch.setattr(kernels, "SPLIT_MIN_MACS", 0)
    T, B, H = 50, 8, 32
    W_h = np.eye(H) * 0.5
    hs = np.ones((T, B, H))  # the input projection, which the loop turns into h in place
    args = (np.ascontiguousarray(W_h.T), np.empty((B, H)), np.zeros((B, H)), hs,
            np.ones((1, 1), bool), False, 0, np.zeros((1, 1)), np.zeros((1, 1)), False, hs,
            np.zeros((1, 1, 1)), False)

    def fails_on_the_worker(*a):
        if a[-2] != 0:
            raise RuntimeError("worker failed")
        elman.forward_loop(*a)

    with pytest.raises(RuntimeError, match="worker failed"):
        kernels._loop(fails_on_the_worker, args, B, kernels._parts(T, B, W_h, ("test",))[0])
    assert np.all((hs[:, :4] > 0) & (hs[:, :4] < 1))  # the first part ran to its end
    assert np.all(hs[:, 4:] == 1)


@pytest.mark.parametrize("T", [1, 2, 7])
@pytest.mark.parametrize("cell,units", [("rnn", 40), ("lstm", 5), ("lstm", 40), ("gru", 40)])
@pytest.mark.parametrize("split,B", [(False, 13), (True, 13), (True, 17)])
def test_predict_without_tape_equals_reference(cell, units, T, split, B, monkeypatch):
    # predict keeps no tape: one- and two-step buffers for the gates and cell states; split:
    # rows 0:6 and 6:13, or 0:8 and 8:17 (the LSTM's projection inside the loop), on two
    # threads, each with buffers of its own
    if split:
        monkeypatch.setattr(kernels, "SPLIT_MIN_MACS", 0)
        monkeypatch.setattr(kernels._parallel, "_threads", 2)
    layer = CELLS[cell](units, return_sequences=True, return_state=True, bidirectional=True)
    model = rk.Sequential([layer], seed=3, dtype="float64")
    X = data(B=B, T=T)
    lengths = np.random.default_rng(T).integers(1, T + 1, size=B)
    kernels.set_backend("numpy")
    want, want_state = model.predict(X, lengths)
    kernels.set_backend("numba")
    got, got_state = model.predict(X, lengths)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    for g, w in zip(np.ravel(got_state[0]), np.ravel(want_state[0])):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_split_loop_runs_in_a_forked_child():
    # the parent's pool threads do not survive a fork; the child must not wait on them
    code = """
import os, signal, sys, numpy as np, rnnkit as rk
from rnnkit import kernels
kernels.SPLIT_MIN_MACS, kernels.PARALLEL_MIN_FLOPS = 0, 0
kernels.set_num_threads(2)
m = rk.Sequential([rk.GRU(40, return_sequences=True)], seed=0)
X = np.random.default_rng(0).standard_normal((8, 6, 3))  # two parts of 4 rows
want = m.predict(X)
pid = os.fork()
if pid == 0:
    signal.alarm(60)  # a hung child ends itself (SIGALRM's default action) instead of spinning
    os._exit(0 if np.allclose(m.predict(X), want) else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "RNNKIT_BACKEND": "numba",
                                           "RNNKIT_ADAPT_THREADS": "0"})  # split when busy too
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("cell", list(CELLS))
def test_reused_arrays_hold_nothing_from_the_last_step(cell, monkeypatch):
    # a training step leaves its tape and dxz for reuse; the next step, masked and with other
    # data, must overwrite or ignore all of it
    monkeypatch.setattr(_buffers, "SPARE_MIN_BYTES", 0)  # these small arrays too
    model = build(cell, "float64", bidi=True)
    kernels.release_buffers()
    X1, X2 = 5.0 * data(B=4, seed=1), data(B=4, seed=2)
    lengths = [7, 3, 1, 5]
    R = np.random.default_rng(2).standard_normal(np.shape(model.predict(X2, lengths)))
    want = run(model, "numpy", X2, lengths, R)
    run(model, "numba", X1, None, 3.0 * R)
    assert _buffers._spare  # the first step's arrays wait for reuse
    got = run(model, "numba", X2, lengths, R)
    for g, w in zip((got[0], got[1], *got[2].values()), (want[0], want[1], *want[2].values())):
        assert_close(g, w, "float64", "after reuse")


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("split", [False, True])
def test_loops_take_and_drop_no_references(cell, split, monkeypatch):
    # the loops borrow their arrays (_jit.borrowed: no reference counting): after many calls,
    # the arrays the caller holds have the references they had, and their data
    if split:
        monkeypatch.setattr(kernels._parallel, "_threads", 2)
        monkeypatch.setattr(kernels, "SPLIT_MIN_MACS", 0)
    layer = CELLS[cell](6, return_sequences=True)
    rk.Sequential([layer], seed=0, dtype="float32").build(3)
    kernels.set_backend("numba")
    p = layer._dir_params("")
    x = np.ascontiguousarray(data(B=8, T=5, D=3).swapaxes(0, 1), np.float32)
    s0 = tuple(np.full((8, 6), 0.1, np.float32) for _ in range(2 if cell == "lstm" else 1))
    mask = np.ones((5, 8), bool)
    mask[3:, 2] = False
    held = (x, mask, *s0, *p.values())
    before, copies = [sys.getrefcount(a) for a in held], [a.copy() for a in held]
    for _ in range(20):
        hs, tape, _ = kernels.forward(layer.cell, p, x, s0, mask, train=True)
        kernels.backward(tape, p, hs, hs, tuple(np.ones_like(v) for v in s0), mask,
                         lambda *a: None)
    assert [sys.getrefcount(a) for a in held] == before
    for a, c in zip(held, copies, strict=True):
        np.testing.assert_array_equal(a, c)


def test_split_loops_write_arrays_that_start_at_a_cache_line(monkeypatch):
    # no cache line holds rows of two parts (_buffers.LINE); kept arrays that start elsewhere
    # are not taken for a split loop; a view of an aligned array is not kept
    monkeypatch.setattr(_buffers, "SPARE_MIN_BYTES", 0)
    kernels.release_buffers()
    f32, shape, line = np.dtype(np.float32), (3, 5, 7), _buffers.LINE
    a = _buffers._empty(shape, f32, True)
    assert a.shape == shape and a.dtype == f32 and a.flags.c_contiguous
    assert a.ctypes.data % line == 0
    _buffers.recycle(a[:, :2])  # NumPy makes it a view of a's bytes: not kept
    assert not _buffers._spare
    _buffers.recycle(a)
    assert _buffers._take(shape, f32) is a
    raw = np.empty(a.nbytes + 2 * line, np.uint8)
    start = -raw.ctypes.data % line + 16
    b = raw[start : start + a.nbytes].view(f32).reshape(shape)
    _buffers.recycle(b)
    c = _buffers._take(shape, f32, True)
    assert c is not b and c.ctypes.data % line == 0

    monkeypatch.setattr(kernels._parallel, "_threads", 2)
    monkeypatch.setattr(kernels, "SPLIT_MIN_MACS", 0)
    layer = rk.LSTM(16, return_sequences=True)
    rk.Sequential([layer], seed=0, dtype="float32").build(3)
    kernels.set_backend("numba")
    x = np.ascontiguousarray(data(B=8, T=5, D=3).swapaxes(0, 1), np.float32)
    s0 = (np.zeros((8, 16), np.float32),) * 2
    hs, tape, _ = kernels.forward(layer.cell, layer._dir_params(""), x, s0, None, train=True)
    assert all(v.ctypes.data % line == 0 for v in (hs, *tape.arrays[1:]))


def test_a_tape_serves_one_backward():
    layer = rk.LSTM(6, return_sequences=True)
    rk.Sequential([layer], seed=0).build(3)
    kernels.set_backend("numba")
    x = data(B=2, T=5, D=3).swapaxes(0, 1).astype(np.float32)
    out, cache, _ = layer.forward(x)
    layer.backward(np.ones_like(out), cache)
    with pytest.raises(RuntimeError, match="tape was used by a backward already"):
        layer.backward(np.ones_like(out), cache)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs Linux and 2 CPUs")
def test_parts_run_off_the_callers_cpu_and_its_mask_comes_back(monkeypatch):
    monkeypatch.setattr(kernels._parallel, "_threads", 2)
    before = os.sched_getaffinity(0)
    seen = {}

    def part(i):
        seen[i] = os.sched_getaffinity(0)  # of the thread running this part

    kernels._parallel.run_parts(part, [(0,), (1,)])
    assert os.sched_getaffinity(0) == before
    assert len(seen[0]) == 1 and seen[1] and not seen[0] & seen[1]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs two CPUs and sched_setaffinity")
def test_held_keeps_the_caller_on_one_cpu_for_its_split_calls(monkeypatch):
    # inside held(), every split call runs as run_parts does (this thread on one CPU, the parts
    # off it), the CPU stays the same from call to call, and the mask comes back after, also
    # when the block raises; another thread's split call meanwhile runs its parts itself
    import threading

    monkeypatch.setattr(kernels._parallel, "_threads", 2)
    before = os.sched_getaffinity(0)
    seen, other = [], []

    def part(i):
        seen.append((i, frozenset(os.sched_getaffinity(0)), threading.get_ident()))

    with pytest.raises(KeyError), kernels._parallel.held():
        mine = os.sched_getaffinity(0)
        for _ in range(3):
            kernels._parallel.run_parts(part, [(0,), (1,)])
            assert os.sched_getaffinity(0) == mine
        t = threading.Thread(target=lambda: kernels._parallel.run_parts(
            lambda i: other.append(threading.get_ident()), [(0,), (1,)]))
        t.start()
        t.join(timeout=60)
        raise KeyError("the block fails")
    assert os.sched_getaffinity(0) == before
    assert len(mine) == 1 and {s for i, s, _ in seen if i == 0} == {frozenset(mine)}
    assert all(not s & mine for i, s, _ in seen if i == 1)
    assert len(other) == 2 and other[0] == other[1] == t.ident  # both parts on that thread
    kernels._parallel.run_parts(part, [(0,), (1,)])  # the workers are free again
    last = {i: tid for i, _, tid in seen[-2:]}
    assert last[0] == threading.get_ident() != last[1]


def test_arrays_kept_for_reuse_stay_within_the_budget(monkeypatch):
    monkeypatch.setattr(_buffers, "SPARE_BYTES", 3 * 8100)
    monkeypatch.setattr(_buffers, "SPARE_MIN_BYTES", 0)
    kernels.release_buffers()
    for T in range(1, 7):  # a new shape each time (inputs of changing lengths), ~8 kB each
        _buffers.recycle(np.empty(1000 + T))
    assert [key[0] for key in _buffers._spare] == [(1004,), (1005,), (1006,)]  # the latest
    for _ in range(6):  # one shape: at most SPARE_PER_SHAPE arrays of it
        _buffers.recycle(np.empty(10))
    assert len(_buffers._spare[((10,), np.dtype(np.float64))]) == _buffers.SPARE_PER_SHAPE
    kernels.release_buffers()
    assert not _buffers._spare


def test_small_arrays_are_not_kept_for_reuse():
    kernels.release_buffers()
    small = np.empty(_buffers.SPARE_MIN_BYTES // 8 - 1)
    large = np.empty((2, _buffers.SPARE_MIN_BYTES // 8))
    _buffers.recycle(small, large[0])  # a view stands for its whole array
    assert list(_buffers._spare) == [((2, _buffers.SPARE_MIN_BYTES // 8), np.dtype(np.float64))]
    kernels.release_buffers()


def test_split_calls_from_several_threads_at_once(monkeypatch):
    # the pool's workers serve one split call at a time; a call made meanwhile by another
    # thread runs its parts itself, and every result is right
    import threading

    monkeypatch.setattr(kernels._parallel, "_threads", 2)
    monkeypatch.setattr(kernels, "PARALLEL_MIN_FLOPS", 0)
    rng = np.random.default_rng(0)
    pairs = [(rng.standard_normal((64, 40)), rng.standard_normal((40, 24))) for _ in range(4)]
    wrong = []

    def work(a, b):
        for _ in range(50):
            if not np.allclose(kernels.matmul(a, b), a @ b):
                wrong.append(1)

    threads = [threading.Thread(target=work, args=pair, daemon=True) for pair in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a split call never returned"
    assert not wrong


def test_a_worker_runs_the_latest_of_two_jobs_posted_over_each_other():
    # as after a caller was interrupted while waiting: the worker must not lose the new job
    import threading

    worker = kernels._parallel._Worker()
    release, ran = threading.Event(), []

    def slow():
        release.wait(10)
        ran.append("first")

    worker.post((-1, slow, ()))
    worker.post((-1, ran.append, ("second",)))
    release.set()
    done = threading.Thread(target=worker.wait, daemon=True)
    done.start()
    done.join(timeout=30)
    assert not done.is_alive() and ran[-1] == "second"
    worker.post(None)  # the thread ends
    worker.thread.join(timeout=30)
    assert not worker.thread.is_alive()


@pytest.mark.parametrize("others,threads,usable,spins", [
    (0, 2, 2, "SPINS"),  # only this thread: quiet
    (1, 2, 1, "SPINS_BUSY"),  # another program takes one of the 2 CPUs
    (2, 2, 1, "SPINS_BUSY"),  # two other programs on 2 CPUs
    (9, 2, 1, "SPINS_BUSY"),
    (0, 4, 4, "SPINS"),  # more threads than CPUs when asked for, on a quiet machine
    (2, 1, 1, "SPINS"),  # one thread: nothing to adapt
])
def test_split_calls_adapt_to_other_programs(others, threads, usable, spins, monkeypatch):
    p = kernels._parallel
    monkeypatch.setattr(p, "ADAPT", True)
    monkeypatch.setattr(p, "_ncpu", 2)
    monkeypatch.setattr(p, "_threads", threads)
    monkeypatch.setattr(p, "_workers", [])
    monkeypatch.setattr(p, "_load_seen", [-1.0, 0])
    monkeypatch.setattr(p, "_looks", [])
    monkeypatch.setattr(p, "_runnable", lambda: others + 1)  # other programs' + this one
    assert p.usable_threads() == usable
    if threads > 1:
        assert p._spins() == getattr(p, spins)
    monkeypatch.setattr(p, "_runnable", lambda: 1)  # read again only after LOAD_CHECK_S
    assert p.usable_threads() == usable
    monkeypatch.setattr(p, "ADAPT", False)
    assert p.usable_threads() == threads and p._spins() == p.SPINS


def test_a_thread_runnable_for_a_moment_does_not_take_a_cpu(monkeypatch):
    # the least of the last LOAD_LOOKS (3) looks at the run queue: another program's thread
    # seen in one look or two keeps both threads, in three running looks it takes one
    p = kernels._parallel
    for name, value in (("ADAPT", True), ("_ncpu", 2), ("_threads", 2), ("_workers", []),
                        ("_load_seen", [-1.0, 0]), ("_looks", []), ("LOAD_CHECK_S", 0.0)):
        monkeypatch.setattr(p, name, value)
    queue = iter([1, 2, 1, 2, 2, 2, 1, 3])  # this thread, and in some looks others
    monkeypatch.setattr(p, "_runnable", lambda: next(queue))
    assert [p.usable_threads() for _ in range(8)] == [2, 2, 2, 2, 2, 1, 2, 2]


def _adapting(monkeypatch):
    p = kernels._parallel
    monkeypatch.setattr(p, "ADAPT", True)
    monkeypatch.setattr(p, "_trials", {})
    return p


def _run_trial(p, key, seconds, calls):
    """``calls`` calls of kind ``key``, a split one taking ``seconds(True)`` per unit of work
    and a whole one ``seconds(False)`` (the first call of the kind 1000x longer: it compiled
    its loop, and must not count) → the ways taken, 1 split, 0 whole."""
    ways = []
    for _ in range(calls):
        split = p.split_pays(key)
        first = key not in p._trials or p._trials[key].calls == 1
        p.ran(key, split, seconds(split) * 100 * (1000 if first else 1), 100)
        ways.append(int(split))
    return ways


def _at(ways, way, offset=0):
    """The calls (counted from 1, after ``offset`` calls) that took ``way``."""
    return [offset + i + 1 for i, w in enumerate(ways) if w == way]


def test_a_split_slower_than_the_whole_call_is_dropped_and_tried_again(monkeypatch):
    p = _adapting(monkeypatch)
    key = ("forward", "lstm", False, 3, 16, (256, 64), "f", 2)
    ways = _run_trial(p, key, lambda split: 2e-6 if split else 1e-6, 200)
    # split (the rule's way) but for a whole call every FIRST_EVERY (8) calls from call 4:
    # a pair with the split call before it when that followed a split call (the first call
    # not counted); after FIRST (3) pairs, whole, but for two split calls (the trial set at
    # call 20 for 28, then every LOSS·(2 - 1) = 100 calls)
    assert _at(ways[:20], 0) == [4, 12, 20]
    assert _at(ways[20:], 1, 20) == [28, 29, 128, 129]
    # the split turns 2x faster (another program left the second CPU): taken when the last 5
    # pairs' time whole over their time split is above 1.1, at the fourth trial (calls 438,
    # 439 and the whole call 440), the trials closer as the two ways' times come closer
    ways = _run_trial(p, key, lambda split: 0.5e-6 if split else 1e-6, 400)
    assert _at(ways[:240], 1, 200) == [228, 229, 328, 329, 398, 399, 438, 439]
    assert _at(ways[240:], 0, 440) == [470, 502]


def test_a_faster_split_stays_split_but_for_a_whole_call_now_and_then(monkeypatch):
    # 1.5x faster split: a whole call every LOSS·(1.5 - 1) = 50 calls after the first four
    p = _adapting(monkeypatch)
    ways = _run_trial(p, ("k",), lambda split: 1e-6 if split else 1.5e-6, 200)
    assert _at(ways, 0) == [4, 12, 20, 28, 78, 128, 178]


def test_ways_within_the_margin_keep_the_split(monkeypatch):
    # the whole call 5% faster: no change; tried every EXPLORE (32) calls
    p = _adapting(monkeypatch)
    ways = _run_trial(p, ("k",), lambda split: 1e-6 if split else 0.95e-6, 100)
    assert _at(ways, 0) == [4, 12, 20, 28, 60, 92]


def test_without_adapting_every_large_loop_is_split(monkeypatch):
    p = kernels._parallel
    monkeypatch.setattr(p, "ADAPT", False)
    monkeypatch.setattr(p, "_trials", {})
    assert all(p.split_pays(("k",)) for _ in range(50)) and p._trials == {}
    p.ran(("k",), False, 1.0, 1)  # a kind not on trial: nothing kept
    assert p._trials == {}


def test_trials_are_kept_for_the_kinds_seen_last(monkeypatch):
    p = _adapting(monkeypatch)
    for i in range(p.TRIALS_KEPT + 5):
        p.split_pays(("k", i))
    assert list(p._trials) == [("k", i) for i in range(5, p.TRIALS_KEPT + 5)]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_loop_whose_split_is_slow_runs_whole_with_the_same_result(cell, monkeypatch):
    # the second part made slow (a second CPU taken by another guest of the machine): the
    # forward and backward loops run whole after the trial, and give the split's results
    p = _adapting(monkeypatch)
    monkeypatch.setattr(kernels, "SPLIT_MIN_MACS", 0)
    monkeypatch.setattr(p, "_threads", 2)
    monkeypatch.setattr(p, "_others", lambda: 0)  # the tests beside this one's on the CPUs
    slow, seen = p.run_parts, collections.Counter()

    def run_parts(fn, calls):
        seen["split"] += 1
        slow(fn, calls)
        time.sleep(0.002)

    monkeypatch.setattr(kernels, "run_parts", run_parts)
    model = build(cell, "float64")
    X, lengths = data(B=8), np.random.default_rng(1).integers(1, 8, size=8)
    R = np.random.default_rng(2).standard_normal((8, 7, 5))
    first = run(model, "numba", X, lengths, R)
    assert seen["split"] == 2  # forward and backward
    for _ in range(p.FIRST * p.FIRST_EVERY - 4):  # to call 20, the third pair (_run_trial)
        run(model, "numba", X, lengths, R)
    seen.clear()
    again = run(model, "numba", X, lengths, R)
    assert seen["split"] == 0
    assert {k[0] for k in p._trials} == {"forward", "backward"}
    assert all(t.best == 0 for t in p._trials.values())
    np.testing.assert_array_equal(again[0], first[0])
    np.testing.assert_array_equal(again[1], first[1])
    for k in first[2]:
        np.testing.assert_array_equal(again[2][k], first[2][k], err_msg=k)


def _split_calls(kind):
    """A call that ``kernels`` splits over the threads, of ``kind``, and its exact result."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((1024, 512))  # a weight, for a copy of its .T
    if kind == "copy":  # laid out for the micro-kernel (_operand)
        assert W.size >= 2**18
        return lambda: kernels._operand(W.T).copy(), W.T
    if kind == "pack":  # large, so in panels (_weights), read back as columns
        assert W.nbytes > kernels._gemm.PANEL_MIN_BYTES
        return lambda: np.concatenate(list(kernels._weights(W.T)), axis=1)[:, :1024], W.T
    M, K, N = (256, 128, 256) if kind == "product" else (1, 512, 1536)
    a, b = rng.standard_normal((M, K)), rng.standard_normal((N, K)).T  # b: a weight's .T
    assert (2.0 * a.size * N >= kernels.PARALLEL_MIN_FLOPS if M > 1
            else b.nbytes > kernels.ONE_STEP_MAX_BYTES)  # large enough to be split
    return lambda: kernels.matmul(a, b), a @ b


@pytest.mark.parametrize("kind", ["product", "matvec", "copy", "pack"])
def test_a_split_call_whose_second_part_is_slow_runs_whole_the_same(kind, monkeypatch):
    # a product split by rows (kernels._by_rows), a streamed step's one-row product (by the
    # weight's rows), a weight's copy and its panels are on trial as a time loop is: their
    # second part made slow, they run whole after the third pair, to the bit the split's result
    p = _adapting(monkeypatch)
    monkeypatch.setattr(p, "_threads", 2)
    monkeypatch.setattr(p, "_others", lambda: 0)
    slow, seen = p.run_parts, collections.Counter()

    def run_parts(fn, calls):
        seen[len(calls)] += 1
        slow(fn, calls)
        time.sleep(0.002)

    monkeypatch.setattr(kernels, "run_parts", run_parts)
    call, exact = _split_calls(kind)
    first = call()
    assert seen == {2: 1}
    for _ in range(p.FIRST * p.FIRST_EVERY - 1):  # to call 20, the third pair
        call()
    seen.clear()
    again = call()
    assert seen == {}
    (key, trial), = p._trials.items()
    assert key[0] == kind and key[-2:] == ("d", 2) and trial.best == 0
    np.testing.assert_array_equal(again, first)
    np.testing.assert_allclose(first, exact, rtol=1e-12, atol=1e-12)
