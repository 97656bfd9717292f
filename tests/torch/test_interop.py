"""``from_torch`` / ``to_torch``: structure, dtypes, round trips, and what cannot be mapped."""

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnnkit as rk  # noqa: E402
from rnnkit.interop import from_torch, to_torch  # noqa: E402

CELLS = {"rnn": rk.RNN, "lstm": rk.LSTM, "gru": rk.GRU}
D, H = 3, 4


@pytest.fixture(autouse=True)
def _raise_on_float_errors():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        yield


def rk_model(cell="lstm", layers=2, bidi=False, bias=True, dtype="float64", **options):
    """A built rnnkit model with every parameter random (biases and b_hn included)."""
    model = rk.Sequential(
        [CELLS[cell](H, return_sequences=True, bidirectional=bidi, bias=bias, **options)
         for _ in range(layers)], seed=0, dtype=dtype)
    model.build(D)
    rng = np.random.default_rng(1)
    for v in model.parameters().values():
        v[...] = rng.uniform(-0.6, 0.6, v.shape)
    return model


def torch_out(mod, X):
    with torch.no_grad():
        out, _ = mod(torch.tensor(X))
    return out.numpy()


def data(B=2, T=5, dtype=np.float64):
    return np.random.default_rng(0).standard_normal((B, T, D)).astype(dtype)


def test_import_rnnkit_does_not_import_torch():
    code = "import sys, rnnkit, rnnkit.interop; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_names():
    assert rk.from_torch is from_torch
    assert "from_torch" in rk.__all__


@pytest.mark.parametrize("kind,cls,act", [("RNN", rk.RNN, "tanh"), ("LSTM", rk.LSTM, "tanh"),
                                          ("GRU", rk.GRU, "tanh")])
def test_from_torch_structure(kind, cls, act):
    mod = getattr(torch.nn, kind)(D, H, num_layers=3, bidirectional=True, bias=False)
    model = from_torch(mod)
    assert model.dtype == np.float32 and len(model.layers) == 3
    for k, layer in enumerate(model.layers):
        assert type(layer) is cls and layer.hidden == H and layer.activation == act
        assert layer.return_sequences and layer.bidirectional and not layer.bias
        assert layer.input_size == (D if k == 0 else 2 * H)
        assert not layer.return_state
    assert set(model.parameters()) == {f"{k}.{n}{s}" for k in range(3) for n in ("W_x", "W_h")
                                       for s in ("", "_reverse")}


def test_from_torch_relu_and_return_state():
    mod = torch.nn.RNN(D, H, num_layers=2, nonlinearity="relu", dtype=torch.float64)
    model = from_torch(mod, return_state=True)
    assert all(layer.activation == "relu" and layer.return_state for layer in model.layers)
    out, states = model.predict(data())
    assert set(states) == {0, 1} and states[1].shape == (2, H)
    np.testing.assert_allclose(states[1], out[:, -1], rtol=0, atol=0)


def test_from_torch_list_of_sequences_equals_each_alone():
    mod = torch.nn.GRU(D, H, bidirectional=True, dtype=torch.float64)
    model = from_torch(mod)
    X = data(B=2, T=6)
    seqs = [X[0, :6], X[1, :2]]
    outs = model.predict(seqs)
    for i, s in enumerate(seqs):
        np.testing.assert_allclose(outs[i, : len(s)], torch_out(mod, s), rtol=1e-10)
        assert not outs[i, len(s) :].any()


def test_from_torch_continues_from_a_torch_initial_state():
    torch.manual_seed(0)
    mod = torch.nn.LSTM(D, H, num_layers=2, bidirectional=True, batch_first=True,
                        dtype=torch.float64)
    h0, c0 = torch.randn(4, 2, H, dtype=torch.float64), torch.randn(4, 2, H, dtype=torch.float64)
    X = data()
    with torch.no_grad():
        expected, _ = mod(torch.tensor(X), (h0, c0))
    # torch's h_0[k * 2 + d] is layer k, direction d
    init = {k: tuple((h0[2 * k + d].numpy(), c0[2 * k + d].numpy()) for d in range(2))
            for k in range(2)}
    out = from_torch(mod).predict(X, initial_state=init)
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-10)


def test_from_torch_maps_dropout_and_equals_eval_mode():
    mod = torch.nn.LSTM(D, H, num_layers=2, dropout=0.5, batch_first=True,
                        dtype=torch.float64).eval()
    X = data()
    model = from_torch(mod)
    np.testing.assert_allclose(model.predict(X), torch_out(mod, X), rtol=1e-10)
    assert [layer.dropout for layer in model.layers] == [0.0, 0.5]  # between layers, as torch
    assert model.to_torch().dropout == 0.5


def test_from_torch_rejects_dtypes_and_other_modules():
    with pytest.raises(ValueError, match="dtype must be float32 or float64, got float16"):
        from_torch(torch.nn.GRU(D, H, dtype=torch.float16))
    with pytest.raises(TypeError, match="got Linear"):
        from_torch(torch.nn.Linear(D, H))


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("bidi", [False, True], ids=["uni", "bidi"])
@pytest.mark.parametrize("cell", CELLS)
def test_round_trip_rnnkit_torch_rnnkit_is_exact(cell, bidi, bias):
    model = rk_model(cell, layers=2, bidi=bidi, bias=bias)
    mod = to_torch(model)
    assert mod.batch_first and mod.num_layers == 2 and mod.bidirectional == bidi
    assert mod.bias == bias and mod.weight_ih_l0.dtype == torch.float64
    back = from_torch(mod)
    ours, theirs = model.parameters(), back.parameters()
    assert set(ours) == set(theirs)
    for k in ours:
        np.testing.assert_array_equal(theirs[k], ours[k], err_msg=k)
    X = data()
    np.testing.assert_allclose(torch_out(mod, X), model.predict(X), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_round_trip_torch_rnnkit_torch_gives_same_outputs(kind):
    torch.manual_seed(0)
    mod = getattr(torch.nn, kind)(D, H, num_layers=2, bidirectional=True, batch_first=True,
                                  dtype=torch.float64)
    again = from_torch(mod).to_torch()
    X = data()
    with torch.no_grad():
        (o1, s1), (o2, s2) = mod(torch.tensor(X)), again(torch.tensor(X))
    np.testing.assert_allclose(o2.numpy(), o1.numpy(), rtol=1e-12, atol=1e-15)
    for a, b in zip(s2 if kind == "LSTM" else (s2,), s1 if kind == "LSTM" else (s1,)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-15)


def test_to_torch_keeps_float32_and_relu():
    model = rk_model("rnn", layers=2, dtype="float32", activation="ReLU")
    mod = model.to_torch()
    assert mod.weight_hh_l1.dtype == torch.float32 and mod.nonlinearity == "relu"
    X = data(dtype=np.float32)
    np.testing.assert_allclose(torch_out(mod, X), model.predict(X), rtol=1e-5, atol=1e-6)


def test_to_torch_gru_bias_split():
    model = rk_model("gru", layers=1)
    mod = model.to_torch()
    p = model.parameters()
    np.testing.assert_array_equal(mod.bias_ih_l0.detach().numpy(), p["0.b"])
    np.testing.assert_array_equal(mod.bias_hh_l0.detach().numpy()[: 2 * H], 0)
    np.testing.assert_array_equal(mod.bias_hh_l0.detach().numpy()[2 * H :], p["0.b_hn"])


def test_to_torch_ignores_return_state():
    model = rk_model("lstm", layers=1, return_state=True)
    X = data()
    out, _ = model.predict(X)
    np.testing.assert_allclose(torch_out(model.to_torch(), X), out, rtol=1e-12, atol=1e-15)


def _built(layers, dtype="float64"):
    model = rk.Sequential(layers, dtype=dtype)
    model.build(D)
    return model


UNREPRESENTABLE = [
    ([rk.LSTM(H, return_sequences=True), rk.GRU(H, return_sequences=True)],
     "layer 1 \\(GRU\\): every layer must be of one kind"),
    ([rk.GRU(H, return_sequences=True), rk.Dense(2)], "layer 1 \\(Dense\\): only RNN, LSTM"),
    ([rk.RNN(H, return_sequences=True), rk.RNN(H + 1, return_sequences=True)],
     "hidden=5 differs"),
    ([rk.RNN(H, return_sequences=True), rk.RNN(H, return_sequences=True, bidirectional=True)],
     "bidirectional=True differs"),
    ([rk.RNN(H, return_sequences=True), rk.RNN(H, return_sequences=True, bias=False)],
     "bias=False differs"),
    ([rk.LSTM(H)], "return_sequences=False cannot be represented"),
    ([rk.RNN(H, return_sequences=True, readout=rk.Dense(1), output="y")], "a readout"),
    ([rk.RNN(H, return_sequences=True, readout=rk.Dense(1))], "a readout"),
    ([rk.GRU(H, return_sequences=True, h0="learned")], "h0='learned' cannot be represented"),
    ([rk.RNN(H, return_sequences=True, h0=np.ones(H))], "h0='an array' cannot"),
    ([rk.LSTM(H, return_sequences=True, c0="learned")], "c0='learned' cannot be represented"),
    ([rk.RNN(H, activation="softsign", return_sequences=True)],
     "activation='softsign' cannot be represented"),
    ([rk.RNN(H, return_sequences=True), rk.RNN(H, activation="relu", return_sequences=True)],
     "activation='relu' differs"),
    ([rk.LSTM(H, gate_activation="hard_tanh", return_sequences=True)],
     "gate_activation='hard_tanh' cannot be represented"),
    ([rk.GRU(H, activation="elu", return_sequences=True)], "activation='elu'"),
]


@pytest.mark.parametrize("layers,message", UNREPRESENTABLE)
def test_to_torch_rejects_what_torch_cannot_represent(layers, message):
    with pytest.raises(ValueError, match=message):
        to_torch(_built(layers), module="rnn")


def test_to_torch_rejects_embedding_unbuilt_and_non_models():
    model = rk.Sequential([rk.Embedding(10, D), rk.LSTM(H, return_sequences=True)])
    with pytest.raises(ValueError, match="layer 0 \\(Embedding\\): only RNN, LSTM"):
        to_torch(model, module="rnn")
    with pytest.raises(ValueError, match="no parameters yet"):
        to_torch(rk.Sequential([rk.GRU(H, return_sequences=True)]))
    with pytest.raises(TypeError, match="expected an rnnkit Sequential"):
        to_torch(torch.nn.GRU(D, H))
