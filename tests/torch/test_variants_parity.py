"""Parity with PyTorch in float64 for the variants PyTorch has: ``proj_size`` (outputs and
every gradient, ``weight_hr`` included) and dropout between layers with the same masks
(torch's own draws cannot be injected, so torch runs the layers one by one with the mask
multiplied in between, as ``nn.LSTM(dropout=p)`` does in training)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnnkit as rk  # noqa: E402
from rnnkit.noise import Noise  # noqa: E402

D, H, P, B, T = 4, 5, 3, 3, 6


def _grads_match(model, mod, names, R, X):
    Xt = torch.tensor(X, requires_grad=True)
    out, _ = mod(Xt)
    (out * torch.tensor(R)).sum().backward()
    model.zero_grad()
    ours = model.forward(X)
    np.testing.assert_allclose(ours, out.detach().numpy(), rtol=1e-10, atol=1e-14)
    dX = model.backward(R)
    np.testing.assert_allclose(dX, Xt.grad.numpy(), rtol=1e-9, atol=1e-14)
    g = model.gradients()
    for torch_name, ours_name in names.items():
        np.testing.assert_allclose(g[ours_name], getattr(mod, torch_name).grad.numpy(),
                                   rtol=1e-9, atol=1e-14, err_msg=torch_name)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_proj_size_lstm_equals_torch_with_every_gradient(bidirectional):
    torch.manual_seed(0)
    mod = torch.nn.LSTM(D, H, num_layers=2, proj_size=P, batch_first=True,
                        bidirectional=bidirectional, dtype=torch.float64)
    model = rk.from_torch(mod)
    assert model.layers[0].proj_size == P and model.parameters()["0.W_hr"].shape == (P, H)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(B, T, D))
    R = rng.normal(size=(B, T, P * (2 if bidirectional else 1)))
    names = {f"weight_hr_l{k}{s}": f"{k}.W_hr{s}" for k in range(2)
             for s in (("", "_reverse") if bidirectional else ("",))}
    names.update({f"weight_hh_l{k}{s}": f"{k}.W_h{s}" for k in range(2)
                  for s in (("", "_reverse") if bidirectional else ("",))})
    _grads_match(model, mod, names, R, X)
    back = model.to_torch()
    assert back.proj_size == P
    np.testing.assert_array_equal(back.weight_hr_l1.detach().numpy(), model.parameters()["1.W_hr"])


def test_dropout_between_layers_with_the_same_masks_equals_torch():
    torch.manual_seed(1)
    first = torch.nn.LSTM(D, H, batch_first=True, dtype=torch.float64)
    second = torch.nn.LSTM(H, H, batch_first=True, dtype=torch.float64)
    model = rk.Sequential([rk.LSTM(H, return_sequences=True, input_size=D),
                           rk.LSTM(H, return_sequences=True, dropout=0.4)], dtype="float64")
    model.build(D)
    p = model.parameters()
    for k, mod in enumerate((first, second)):
        p[f"{k}.W_x"][...] = mod.weight_ih_l0.detach().numpy()
        p[f"{k}.W_h"][...] = mod.weight_hh_l0.detach().numpy()
        p[f"{k}.b"][...] = (mod.bias_ih_l0 + mod.bias_hh_l0).detach().numpy()
    rng = np.random.default_rng(2)
    X, R = rng.normal(size=(B, T, D)), rng.normal(size=(B, T, H))
    M = (rng.uniform(size=(T, B, H)) >= 0.4) / 0.6  # time-major, as rnnkit's masks
    Xt = torch.tensor(X, requires_grad=True)
    mid, _ = first(Xt)
    out, _ = second(mid * torch.tensor(M.swapaxes(0, 1)))
    (out * torch.tensor(R)).sum().backward()
    ours = model.forward(X, noise=Noise(given={"1.dropout": M}))
    np.testing.assert_allclose(ours, out.detach().numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(model.backward(R), Xt.grad.numpy(), rtol=1e-9, atol=1e-14)
    g = model.gradients()
    for k, mod in enumerate((first, second)):
        np.testing.assert_allclose(g[f"{k}.W_x"], mod.weight_ih_l0.grad.numpy(), rtol=1e-9,
                                   atol=1e-14)
        np.testing.assert_allclose(g[f"{k}.W_h"], mod.weight_hh_l0.grad.numpy(), rtol=1e-9,
                                   atol=1e-14)


def test_to_torch_refuses_what_torch_cannot_express_by_name():
    for layer, name in ((rk.LSTM(4, return_sequences=True, layer_norm=True), "layer_norm"),
                        (rk.LSTM(4, return_sequences=True, peepholes=True), "peepholes"),
                        (rk.GRU(4, return_sequences=True, recurrent_dropout=0.2),
                         "recurrent_dropout"),
                        (rk.RNN(4, return_sequences=True, zoneout=0.1), "zoneout"),
                        (rk.RNN(4, return_sequences=True, dropout=0.1), "dropout")):
        model = rk.Sequential([layer])
        model.build(2)
        with pytest.raises(ValueError, match=f"layer 0 .*: {name}="):
            model.to_torch(module="rnn")
        # the layer-by-layer module computes every one (tests/torch/test_torch_module.py)
        assert not isinstance(model.to_torch(), torch.nn.RNNBase)
