"""The compiled fast path (rnnkit.kernels) against the reference NumPy loop: outputs and every
gradient, for each cell and option, in both loops (fused and BLAS); and gradient checks with
the fast backend forced."""

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

import rnnkit as rk
from helpers_rnnkit import sq_loss
from rnnkit import kernels
from rnnkit.diagnostics import gradcheck

CELLS = {"rnn": rk.RNN, "lstm": rk.LSTM, "gru": rk.GRU}
RTOL = {"float64": 1e-12, "float32": 1e-5}


@pytest.fixture(autouse=True)
def restore_backend():
    old = kernels.get_backend()
    yield
    kernels.set_backend(old)


def build(cell, dtype, *, bias=True, bidi=False, seq=True, **extra):
    opts = {"c0": "learned"} if cell == "lstm" else {}
    layer = CELLS[cell](5, return_sequences=seq, bidirectional=bidi, bias=bias, h0="learned",
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
def test_fused_loop_equals_numpy(cell, bias, masked, bidi, dtype, seq):
    model = build(cell, dtype, bias=bias, bidi=bidi, seq=seq)
    compare(model, dtype, data(), [7, 4, 1] if masked else None)


@pytest.mark.parametrize("cblas", [True, False])
@pytest.mark.parametrize("cell,bias,masked,bidi,dtype", GRID)
def test_blas_loop_equals_numpy(cell, bias, masked, bidi, dtype, cblas, monkeypatch):
    monkeypatch.setattr(kernels, "BLAS_MIN_BATCH", 0)
    monkeypatch.setattr(kernels, "BLAS_MIN_BATCH_BACKWARD", 0)
    if not cblas:  # NumPy without a findable OpenBLAS: the Python loop over np.matmul
        monkeypatch.setattr(kernels, "_gemm", lambda dt: None)
    model = build(cell, dtype, bias=bias, bidi=bidi)
    compare(model, dtype, data(), [7, 4, 1] if masked else None)


@pytest.mark.parametrize("cell,act,gate", [
    ("rnn", "relu", None), ("rnn", "identity", None), ("rnn", "sigmoid", None),
    ("lstm", "relu", "sigmoid"), ("lstm", "tanh", "identity"), ("gru", "relu", "tanh"),
])
def test_other_default_activations(cell, act, gate):
    extra = {"activation": act} if gate is None else {"activation": act, "gate_activation": gate}
    model = build(cell, "float64", **extra)
    compare(model, "float64", 0.5 * data(), [7, 4, 1])


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
    # one-step calls take the BLAS loop (no transposed copy of W_h), the full sequence the
    # fused one: the same equations, sums in another order
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, rtol=1e-13, atol=1e-15)


def test_cblas_is_found_and_multiplies():
    from rnnkit.kernels import _blas

    if _blas.gemm_pointers() is None:
        pytest.skip("NumPy's BLAS is not a findable OpenBLAS here")
    for dt in ("float32", "float64"):
        model = build("gru", dt)
        kernels.set_backend("numba")
        X = data(B=9, T=5)
        np.testing.assert_allclose(model.predict(X), (kernels.set_backend("numpy"),
                                                      model.predict(X))[1], rtol=RTOL[dt])


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
