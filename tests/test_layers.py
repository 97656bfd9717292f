"""Worked examples, masking semantics, the spec's Jacobian product, and input errors."""

import math
import re

import numpy as np
import pytest

import rnnkit as rk
from helpers_rnnkit import sq_loss

CELLS = {"rnn": rk.RNN, "lstm": rk.LSTM, "gru": rk.GRU}


def scalar_rnn(activation="identity", **kw):
    """H = D = 1 with W_x = 0.5, W_h = -1, b = 0.1."""
    model = rk.Sequential([rk.RNN(1, activation=activation, **kw)], dtype="float64")
    model.build(1)
    p = model.parameters()
    p["0.W_x"][:] = 0.5
    p["0.W_h"][:] = -1.0
    p["0.b"][:] = 0.1
    return model


def test_worked_example_linear_rnn_forward_and_bptt():
    # x = (1, 2), h0 = 0, σ = identity:
    #   h1 = 0.5*1 - 1*0   + 0.1 = 0.6
    #   h2 = 0.5*2 - 1*0.6 + 0.1 = 0.5
    # L = h2: da2 = 1, dh1 = W_h*da2 = -1, da1 = -1
    #   dW_x = x1*da1 + x2*da2 = -1 + 2 = 1;  dW_h = h0*da1 + h1*da2 = 0.6;  db = 0
    #   dx1 = W_x*da1 = -0.5, dx2 = W_x*da2 = 0.5
    model = scalar_rnn(return_sequences=True)
    X = np.array([[1.0], [2.0]])
    np.testing.assert_allclose(model.forward(X), [[0.6], [0.5]], rtol=1e-15)
    dX = model.backward(np.array([[0.0], [1.0]]))
    g = model.gradients()
    np.testing.assert_allclose([g["0.W_x"][0, 0], g["0.W_h"][0, 0], g["0.b"][0]],
                               [1.0, 0.6, 0.0], atol=1e-15)
    np.testing.assert_allclose(dX, [[-0.5], [0.5]], rtol=1e-15)


def test_worked_example_tanh_rnn():
    # h1 = tanh(0.6); h2 = tanh(1.1 - h1)
    model = scalar_rnn("tanh")
    h1 = math.tanh(0.6)
    assert model.predict(np.array([[1.0], [2.0]]))[0] == pytest.approx(math.tanh(1.1 - h1),
                                                                          rel=1e-15)


def test_worked_example_lstm_step():
    # W_h = 0, b = 0, W_x routes x only to the g gate: i = f = o = σ(0) = 0.5, g = tanh(x)
    #   c1 = 0.5*0 + 0.5*tanh(1) ;  h1 = 0.5*tanh(c1)
    #   c2 = 0.5*c1 + 0.5*tanh(-1) = 0.5*c1 - 0.5*tanh(1) ; h2 = 0.5*tanh(c2)
    model = rk.Sequential([rk.LSTM(1, forget_bias=0.0, return_sequences=True)],
                          dtype="float64")
    model.build(1)
    p = model.parameters()
    p["0.W_x"][:] = [[0.0], [0.0], [1.0], [0.0]]
    p["0.W_h"][:] = 0.0
    c1 = 0.5 * math.tanh(1.0)
    c2 = 0.5 * c1 - 0.5 * math.tanh(1.0)
    out = model.predict(np.array([[1.0], [-1.0]]))
    np.testing.assert_allclose(out[:, 0], [0.5 * math.tanh(c1), 0.5 * math.tanh(c2)],
                               rtol=1e-15)


def test_worked_example_gru_step():
    # W = 0, b = 0 except the candidate input weight 1: r = u = 0.5, n = tanh(x)
    #   h1 = (1 - 0.5)*tanh(2) + 0.5*0 = 0.5*tanh(2)
    model = rk.Sequential([rk.GRU(1)], dtype="float64")
    model.build(1)
    p = model.parameters()
    p["0.W_x"][:] = [[0.0], [0.0], [1.0]]
    p["0.W_h"][:] = 0.0
    assert model.predict(np.array([[2.0]]))[0] == pytest.approx(0.5 * math.tanh(2.0),
                                                                rel=1e-15)


@pytest.mark.parametrize("bad", ["1", float("nan"), float("inf"), True, None])
def test_lstm_forget_bias_must_be_a_finite_number(bad):
    with pytest.raises(ValueError, match=f"LSTM: forget_bias must be a finite number, got "
                                         f"{re.escape(repr(bad))}"):
        rk.LSTM(3, forget_bias=bad)


def test_lstm_forget_bias_must_fit_the_models_dtype():
    # found by the config fuzzer: just over float32's largest, it overflowed in the cast
    big = 3.4028235677973366e38
    with pytest.raises(ValueError, match="LSTM: forget_bias must be a finite float32 number"):
        rk.Sequential([rk.LSTM(3, forget_bias=big)], dtype="float32").build(2)
    model = rk.Sequential([rk.LSTM(3, forget_bias=big)], dtype="float64")
    model.build(2)
    assert model.layers[0].params["b"][3] == big


def test_lstm_forget_bias_is_added_to_the_forget_gate_only():
    model = rk.Sequential([rk.LSTM(3, forget_bias=2.5)], dtype="float64")
    model.build(2)
    b = model.parameters()["0.b"]
    np.testing.assert_array_equal(b, np.r_[np.zeros(3), np.full(3, 2.5), np.zeros(6)])


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_spec_jacobian_product_equals_bptt_gradient(act):
    """spec: ∇_{h_1} L = ∏_{i=2}^{T} J^T_{h_{i-1}}(h_i) ∇_{h_T} L, J = diag(σ'(a_i)) W_h.

    The BPTT side: run steps 2..T from a learned h0 set to h_1, so that ∂L/∂h0 = ∇_{h_1} L.
    The Jacobian side is computed here by hand from the forward pass, independently."""
    rng = np.random.default_rng(0)
    T, D, H = 12, 3, 5
    X = rng.standard_normal((T, D))
    ref = rk.Sequential([rk.RNN(H, activation=act, return_sequences=True)], dtype="float64",
                        seed=4)
    hs = ref.predict(X)
    W_x, W_h, b = (ref.parameters()[k] for k in ("0.W_x", "0.W_h", "0.b"))
    target = rng.standard_normal(H)
    grad_hT = hs[-1] - target  # L = 0.5 |h_T - target|²
    g = grad_hT
    for i in range(T - 1, 0, -1):  # J_i^T for i = T..2 (0-based rows T-1..1)
        a = X[i] @ W_x.T + W_h @ hs[i - 1] + b
        d = 1 - np.tanh(a) ** 2 if act == "tanh" else (a > 0).astype(float)
        g = W_h.T @ (d * g)
    tail = rk.Sequential([rk.RNN(H, activation=act, h0="learned")], dtype="float64")
    tail.build(D)
    for k in ("W_x", "W_h", "b"):
        tail.parameters()[f"0.{k}"][:] = ref.parameters()[f"0.{k}"]
    tail.parameters()["0.h0"][:] = hs[0]
    out = tail.forward(X[1:])
    np.testing.assert_allclose(out, hs[-1], rtol=1e-13)
    tail.backward(sq_loss(out, target)[1])
    np.testing.assert_allclose(tail.gradients()["0.h0"], g, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidi", [False, True])
def test_padded_batch_equals_each_sequence_alone(cell, bidi):
    rng = np.random.default_rng(0)
    seqs = [rng.standard_normal((n, 2)) for n in (6, 3, 1)]
    for seq in (True, False):
        model = rk.Sequential([CELLS[cell](4, bidirectional=bidi, return_sequences=seq)],
                              seed=1, dtype="float64")
        batch = model.predict(seqs)
        for i, s in enumerate(seqs):
            alone = model.predict(s)
            got = batch[i, : len(s)] if seq else batch[i]
            np.testing.assert_allclose(got, alone, rtol=1e-13, atol=1e-15)
            if seq:
                assert np.all(batch[i, len(s):] == 0), "padded steps must emit zeros"


@pytest.mark.parametrize("cell", CELLS)
def test_padded_steps_receive_no_gradient(cell):
    model = rk.Sequential([CELLS[cell](3, bidirectional=True, return_sequences=True)],
                          dtype="float64")
    X = np.random.default_rng(0).standard_normal((2, 5, 2))
    out = model.forward(X, lengths=[5, 2])
    dX = model.backward(np.ones_like(out))
    assert np.all(dX[1, 2:] == 0) and np.all(dX[1, :2] != 0)


def test_list_input_equals_padded_with_lengths():
    rng = np.random.default_rng(0)
    seqs = [rng.standard_normal((n, 2)) for n in (4, 2)]
    model = rk.Sequential([rk.GRU(3, return_sequences=True)], dtype="float64")
    padded = np.zeros((2, 4, 2))
    padded[0], padded[1, :2] = seqs[0], seqs[1]
    np.testing.assert_array_equal(model.predict(seqs), model.predict(padded, lengths=[4, 2]))


def test_return_state_shapes_and_lstm_pair():
    model = rk.Sequential([rk.LSTM(3, return_state=True, bidirectional=True)])
    out, states = model.predict(np.zeros((2, 4, 1)))
    (h_f, _c_f), (_h_b, c_b) = states[0]
    assert out.shape == (2, 6) and h_f.shape == c_b.shape == (2, 3)


def test_float32_model_computes_in_float32():
    model = rk.Sequential([rk.LSTM(3, readout=rk.Dense(2), output="y")])
    out = model.forward(np.zeros((2, 4, 1)))
    assert out.dtype == np.float32
    assert model.backward(np.ones_like(out)).dtype == np.float32
    assert all(g.dtype == np.float32 for g in model.gradients().values())


@pytest.mark.parametrize("name", ["torch", "glorot_uniform", "orthogonal", "identity", "zeros"])
def test_initialisers_are_seeded_and_shaped(name):
    def build(seed):
        m = rk.Sequential([rk.GRU(4, recurrent_init=name, kernel_init="torch")], seed=seed)
        return m.build(3).parameters()["0.W_h"]

    W = build(0)
    assert W.shape == (12, 4)
    np.testing.assert_array_equal(W, build(0))
    if name == "orthogonal":
        for g in range(3):
            np.testing.assert_allclose(W[4 * g : 4 * g + 4].T @ W[4 * g : 4 * g + 4],
                                       np.eye(4), atol=1e-6)
    if name == "identity":
        np.testing.assert_array_equal(W[:4], np.eye(4))


BAD = [
    (lambda: rk.RNN(4, activation="swish"), ValueError, "unknown activation 'swish'"),
    (lambda: rk.LSTM(4, gate_activation="nope"), ValueError, "gate_activation"),
    (lambda: rk.RNN(4, output="y"), ValueError, "output='y' needs a readout"),
    (lambda: rk.RNN(4, output="z"), ValueError, "output must be 'h' or 'y'"),
    (lambda: rk.RNN(0), ValueError, "hidden must be a positive integer"),
    (lambda: rk.RNN(3, h0="random"), ValueError, "h0 must be 'zeros', 'learned'"),
    (lambda: rk.RNN(3, h0=np.zeros(4)), ValueError, r"shape \(3,\)"),
    (lambda: rk.RNN(3, recurrent_init="he"), ValueError, "unknown recurrent_init"),
    (lambda: rk.Dense(2, activation="gelu"), ValueError, "unknown activation"),
]


@pytest.mark.parametrize("make,exc,match", BAD)
def test_bad_construction(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_bad_input_messages():
    model = rk.Sequential([rk.LSTM(4)])
    model.predict(np.zeros((5, 2, 3)))
    cases = [
        (np.zeros((5, 2, 7)), None, ValueError,
         r"LSTM expects inputs with 3 features, got X of shape \(5, 2, 7\) \(B, T, D\)"),
        (np.zeros((2, 3, 4, 5)), None, ValueError, r"X must be \(B, T, D\)"),
        (np.array([["a", "b", "c"]]), None, TypeError, "must be numeric"),
        (np.full((1, 2, 3), np.nan), None, ValueError, "X must be finite, got nan at sample 0"),
        (np.zeros((2, 0, 3)), None, ValueError, "X is empty"),
        (np.zeros((2, 4, 3)), [4, 5], ValueError, r"lengths\[1\] = 5 is out of range"),
        (np.zeros((2, 4, 3)), [4], ValueError, "one entry per sequence"),
        ([np.zeros((3, 3)), np.zeros((0, 3))], None, ValueError, r"X\[1\] is an empty sequence"),
        ([np.zeros((3, 3)), np.zeros((2, 2))], None, ValueError, r"X\[1\] has 2 features"),
    ]
    for X, lengths, exc, match in cases:
        with pytest.raises(exc, match=match):
            model.predict(X, lengths)


def test_stacking_a_last_step_into_a_recurrent_layer_is_explained():
    with pytest.raises(ValueError, match="set return_sequences=True on it"):
        rk.Sequential([rk.LSTM(3), rk.GRU(2)]).build(2)


def test_embedding_rejects_out_of_range_ids():
    model = rk.Sequential([rk.Embedding(5, 2), rk.RNN(3)])
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 5\), got 9"):
        model.predict(np.array([[1, 9]]))
    with pytest.raises(TypeError, match="integer token ids"):
        model.predict(np.array([[1.0, 2.0]]))
