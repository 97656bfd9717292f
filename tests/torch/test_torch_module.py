"""``to_torch`` for any model: a torch module equal to ``predict`` (float64, rtol 1e-10),
Dense heads, readouts, learned h0, every activation, lengths, last steps, Embedding."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnnkit as rk  # noqa: E402

D = 3
CASES = {
    "heads": lambda: [rk.LSTM(4, return_sequences=True, bidirectional=True, h0="learned"),
                      rk.GRU(3, bidirectional=True),
                      rk.Dense(5, activation="elu"), rk.Dense(2, activation="softmax")],
    "readout": lambda: [rk.RNN(4, activation="hard_tanh", readout=rk.Dense(2), output="y",
                               return_sequences=True, h0=np.linspace(-1, 1, 4)),
                        rk.LSTM(3, activation="softsign", gate_activation="hard_tanh",
                                c0="learned", return_sequences=True),
                        rk.Dense(1, activation="leaky_relu")],
    "gru-no-bias": lambda: [rk.GRU(4, bias=False, gate_activation="relu",
                                   return_sequences=True), rk.RNN(2, activation="identity")],
}

CASES["peepholes-dropout"] = lambda: [
    rk.LSTM(4, peepholes=True, bidirectional=True, dropout=0.3, return_sequences=True),
    rk.Dropout(0.2), rk.LSTM(2, peepholes=True, recurrent_dropout=0.1)]
CASES["layer-norm-projection-zoneout"] = lambda: [
    rk.LSTM(4, layer_norm=True, proj_size=2, peepholes=True, zoneout=(0.1, 0.3), h0="learned",
            bidirectional=True, return_sequences=True),
    rk.GRU(3, layer_norm=True, zoneout=0.2, return_sequences=True),
    rk.RNN(3, zoneout=0.25, activation="softsign", return_sequences=True),
    rk.LSTM(2, layer_norm=True, bias=False, proj_size=1, c0="learned"), rk.Dense(2)]


def built(layers, ids=False):
    model = rk.Sequential(layers, dtype="float64")
    model.build(1 if ids else D)
    rng = np.random.default_rng(0)
    for v in model.parameters().values():
        v[...] = 0.5 * rng.standard_normal(v.shape)
    return model


@pytest.mark.parametrize("lengths", [None, [5, 2, 4]])
@pytest.mark.parametrize("case", sorted(CASES))
def test_whole_model_equals_predict(case, lengths):
    model = built(CASES[case]())
    module = model.to_torch()
    assert not isinstance(module, torch.nn.RNNBase)
    X = np.random.default_rng(1).standard_normal((3, 5, D))
    with torch.no_grad():
        got = module(torch.from_numpy(X), lengths).numpy()
    want = model.predict(X, lengths=lengths)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_embedding_model_and_gradients_flow():
    model = built([rk.Embedding(7, 3), rk.GRU(4), rk.Dense(2)], ids=True)
    module = model.to_torch()
    ids = np.random.default_rng(2).integers(0, 7, (2, 6))
    out = module(torch.from_numpy(ids))
    np.testing.assert_allclose(out.detach().numpy(), model.predict(ids), rtol=1e-10)
    out.sum().backward()
    assert all(p.grad is not None for p in module.parameters())


def test_plain_stack_still_gives_a_torch_rnn_and_module_option():
    model = built([rk.GRU(4, return_sequences=True)])
    assert isinstance(model.to_torch(), torch.nn.GRU)
    assert not isinstance(model.to_torch(module="sequential"), torch.nn.GRU)
    with pytest.raises(ValueError, match="module must be"):
        model.to_torch(module="onnx")
