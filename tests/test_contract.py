"""The contract suite (DESIGN §6): every cell × option against float64 central differences,
and the layer against a hand-written loop over its cell."""

import itertools

import numpy as np
import pytest

import rnnkit as rk
from helpers_rnnkit import sq_loss
from rnnkit.diagnostics import gradcheck

TOL = 1e-7
CELLS = {"rnn": rk.RNN, "lstm": rk.LSTM, "gru": rk.GRU}
ERRORS_SEEN: list[float] = []
pytestmark = pytest.mark.usefixtures("backend")  # every test on both time loops


def make(cell, *, output="h", seq=True, h0="zeros", bidi=False, readout=None, bias=True, **extra):
    if output == "y" and readout is None:
        readout = rk.Dense(2, activation="tanh")
    return CELLS[cell](
        3,
        output=output,
        return_sequences=seq,
        h0=h0,
        bidirectional=bidi,
        readout=readout,
        bias=bias,
        **extra,
    )


def check(model, X, lengths=None):
    rng = np.random.default_rng(1)
    out = model.predict(X, lengths)
    y = rng.standard_normal(out.shape)
    errs = gradcheck(model, X, y, loss=sq_loss, lengths=lengths)
    worst = max(errs.values())
    ERRORS_SEEN.append(worst)
    assert worst < TOL, errs
    return errs


def data(B=2, T=4, D=2, seed=0):
    return np.random.default_rng(seed).standard_normal((B, T, D))


OPTIONS = list(
    itertools.product(
        CELLS, ["h", "y"], [True, False], ["zeros", "learned"], [False, True], [None, [4, 2]]
    )
)


@pytest.mark.parametrize("cell,output,seq,h0,bidi,lengths", OPTIONS)
def test_gradcheck_options(cell, output, seq, h0, bidi, lengths):
    model = rk.Sequential([make(cell, output=output, seq=seq, h0=h0, bidi=bidi)], seed=3)
    errs = check(model, data(), lengths)
    if h0 == "learned":
        assert "0.h0" in errs
    if output == "y":
        assert "0.readout.W" in errs


ACTS = ["tanh", "relu", "sigmoid", "identity", "leaky_relu", "elu", "softsign", "hard_tanh"]


@pytest.mark.parametrize("act", ACTS)
def test_gradcheck_rnn_activations(act):
    # inputs scaled so that relu-like kinks are not within eps of any pre-activation
    model = rk.Sequential([rk.RNN(4, activation=act, return_sequences=True)], seed=5)
    check(model, 0.5 * data(T=5, seed=2))


@pytest.mark.parametrize(
    "cell,act,gate",
    [
        ("lstm", "softsign", "sigmoid"),
        ("lstm", "tanh", "hard_tanh"),
        ("gru", "elu", "sigmoid"),
        ("gru", "tanh", "softsign"),
    ],
)
def test_gradcheck_gate_activations(cell, act, gate):
    model = rk.Sequential(
        [CELLS[cell](3, activation=act, gate_activation=gate, return_sequences=True)], seed=7
    )
    check(model, data(seed=4))


@pytest.mark.parametrize("ro_act", ["softmax", "sigmoid", "identity", "relu"])
def test_gradcheck_readouts(ro_act):
    model = rk.Sequential(
        [rk.RNN(3, readout=rk.Dense(3, activation=ro_act), output="y", return_sequences=True)],
        seed=2,
    )
    check(model, data(seed=5))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck_no_bias_and_lstm_c0(cell, bias):
    extra = {"c0": "learned"} if cell == "lstm" else {}
    model = rk.Sequential([make(cell, bias=bias, h0="learned", **extra)], seed=1)
    errs = check(model, data())
    assert ("0.b" in errs) == bias
    if cell == "lstm":
        assert "0.c0" in errs


@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("bidi", [False, True])
@pytest.mark.parametrize("lengths", [None, [5, 3, 1]])
def test_gradcheck_stacked(depth, bidi, lengths):
    kinds = ["lstm", "gru", "rnn"][:depth]
    layers = [
        make(k, bidi=bidi, output="y" if i == 0 else "h", h0="learned") for i, k in enumerate(kinds)
    ]
    layers.append(rk.Dense(2))
    model = rk.Sequential(layers, seed=11)
    check(model, data(B=3, T=5), lengths)


def test_gradcheck_last_step_then_dense():
    model = rk.Sequential([rk.GRU(4, return_sequences=True), rk.LSTM(3), rk.Dense(2)], seed=0)
    check(model, data(B=3, T=5), [5, 2, 4])


def test_gradcheck_embedding_text_model():
    model = rk.Sequential(
        [rk.Embedding(7, 3), rk.LSTM(4, return_sequences=True), rk.Dense(7)],
        seed=0,
        dtype="float64",
    )
    ids = np.array([[1, 2, 3, 1], [6, 0, 0, 5]])
    check(model, ids, [4, 2])


@pytest.mark.parametrize("cell", CELLS)
def test_layer_equals_hand_loop_over_cell(cell, backend):
    """The layer is nothing but its cell applied step by step."""
    layer = CELLS[cell](4, return_sequences=True, h0="learned")
    model = rk.Sequential([layer], seed=0, dtype="float64")
    X = data(B=2, T=6, D=3)
    model.build(3)
    p = layer.params
    p["h0"][:] = np.linspace(-0.5, 0.5, 4)
    state = tuple(
        np.broadcast_to(p[k] if k in p else np.zeros(4), (2, 4))
        for k in ("h0", "c0")[: len(layer.cell.state_names)]
    )
    hs = []
    for t in range(6):
        xz = X[:, t] @ p["W_x"].T + p["b"]
        state, _ = layer.cell.step(p, xz, state)
        hs.append(state[0])
    if backend == "numpy":
        np.testing.assert_array_equal(model.predict(X), np.stack(hs, axis=1))
    else:  # the compiled loop sums h @ W_h.T in another order: equal to rounding
        np.testing.assert_allclose(model.predict(X), np.stack(hs, axis=1), rtol=1e-13,
                                   atol=1e-15)


@pytest.mark.parametrize("cell", CELLS)
def test_single_sequence_equals_batch_of_one(cell):
    model = rk.Sequential([make(cell, output="y")], seed=0, dtype="float64")
    X = data(B=1, T=5)
    np.testing.assert_array_equal(model.predict(X[0]), model.predict(X)[0])


@pytest.mark.parametrize("cell", CELLS)
def test_two_chunks_with_carried_state_equal_full_sequence(cell):
    model = rk.Sequential(
        [CELLS[cell](4, return_sequences=True, return_state=True)], seed=0, dtype="float64"
    )
    X = data(B=2, T=8, D=3)
    full, _ = model.predict(X)
    first, state = model.predict(X[:, :5])
    second, _ = model.predict(X[:, 5:], initial_state=state)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), full, rtol=0, atol=0)


@pytest.mark.parametrize("cell", CELLS)
def test_saturated_inputs_stay_finite(cell):
    model = rk.Sequential([make(cell, output="y", bidi=True)], seed=0)
    X = np.full((2, 50, 2), 1e4, dtype=np.float32)
    X[1] *= -1
    out = model.forward(X)
    dX = model.backward(np.ones_like(out))
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(dX))
    assert all(np.all(np.isfinite(g)) for g in model.gradients().values())


def test_worst_error_report():
    """Runs last in this file: the worst error over every gradient check above. Run alone
    (or first) it checks a bidirectional padded readout model of each cell itself, so that
    it always has errors to judge."""
    for cell in CELLS:
        seen = len(ERRORS_SEEN)
        check(rk.Sequential([make(cell, output="y", bidi=True)], seed=5), data(), [4, 2])
        assert len(ERRORS_SEEN) == seen + 1
    print(f"\n{len(ERRORS_SEEN)} gradient checks, worst relative error {max(ERRORS_SEEN):.2e}")
    assert max(ERRORS_SEEN) < TOL


def test_gradcheck_builds_an_unbuilt_model_and_leaves_it_unchanged():
    model = rk.Sequential([rk.GRU(3, readout=rk.Dense(1), output="y")])
    X = data()
    errs = gradcheck(model, X, np.zeros((2, 1)), loss="mse")
    assert max(errs.values()) < TOL and model.dtype == np.float32
