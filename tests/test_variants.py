"""Regularisation and cell variants: dropout, recurrent dropout, zoneout, layer norm,
peepholes, projection. Exact gradients (float64) with and without masks, both loops; only
``fit`` is stochastic; masks are a function of (key, layer, row, position); options survive
save/load; bad options name the option and the layer."""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import kernels
from rnnkit.noise import Noise

TOL = 1e-7
#: layer norm of a projection is strongly curved where its variance is small (a few inputs,
#: some dropped): central differences' own error, which falls as eps² (measured: 1.4e-4,
#: 1.4e-6, 1.2e-7 at eps 1e-4, 1e-5, 1e-6), reaches ~1e-6 there; a wrong derivative gives 1e-2
TOL_LN = 1e-5


@pytest.fixture(autouse=True)
def _raise_on_float_errors():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        yield


@pytest.fixture(params=["numpy", "auto"])
def backend(request):
    """Both loops: the reference NumPy loop and the compiled one (where it applies)."""
    before = kernels.get_backend()
    kernels.set_backend(request.param)
    yield request.param
    kernels.set_backend(before)


def _data(B=3, T=5, D=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, T, D)), rng.normal(size=(B, 2))


def _perturb(model, seed=1):
    """Random values for gains, peepholes and biases (their initial 1 and 0 hide errors)."""
    rng = np.random.default_rng(seed)
    for k, v in model.parameters().items():
        if k.split(".")[-1].startswith(("g_", "b_c", "P", "b")):
            v[...] = rng.uniform(0.5, 1.5, v.shape) if ".g_" in k else rng.normal(0, 0.5, v.shape)
    return model


VARIANTS = [
    (rk.LSTM, {"layer_norm": True}),
    (rk.LSTM, {"peepholes": True}),
    (rk.LSTM, {"proj_size": 2}),
    (rk.LSTM, {"layer_norm": True, "peepholes": True, "proj_size": 3, "recurrent_dropout": 0.3,
               "zoneout": (0.2, 0.4), "dropout": 0.25}),
    (rk.LSTM, {"recurrent_dropout": 0.3, "zoneout": 0.2, "bidirectional": True}),
    (rk.GRU, {"layer_norm": True}),
    (rk.GRU, {"layer_norm": True, "recurrent_dropout": 0.3, "zoneout": 0.3, "dropout": 0.2,
              "bidirectional": True}),
    (rk.GRU, {"layer_norm": True, "bias": False}),
    (rk.RNN, {"recurrent_dropout": 0.4, "zoneout": 0.3, "dropout": 0.3}),
    (rk.LSTM, {"dropout": 0.3}),  # the compiled loop, inputs dropped outside it
    (rk.GRU, {"recurrent_dropout": 0.3, "bidirectional": True}),  # compiled too
    (rk.RNN, {"recurrent_dropout": 0.3, "dropout": 0.2}),
    (rk.GRU, {"zoneout": 0.3, "recurrent_dropout": 0.3}),  # compiled
    (rk.LSTM, {"peepholes": True, "zoneout": (0.2, 0.4), "recurrent_dropout": 0.3}),  # compiled
]


@pytest.mark.parametrize(("cls", "options"), VARIANTS)
@pytest.mark.parametrize("masks", ["expectation", "drawn"])
def test_gradcheck_every_variant(cls, options, masks, backend):
    X, y = _data(D=6)
    model = rk.Sequential([cls(4, return_sequences=True, **options), rk.Dropout(0.3),
                           cls(4, **options), rk.Dense(2)], seed=0, dtype="float64")
    model.build(6)
    _perturb(model)
    noise = Noise(key=7) if masks == "drawn" else None
    errors = rk.gradcheck(model, X, y, noise=noise, lengths=[5, 3, 4], max_entries=10)
    assert max(errors.values()) < (TOL_LN if options.get("layer_norm") else TOL), errors


def test_given_masks_are_used_and_checked():
    X, _ = _data()
    y = np.random.default_rng(4).normal(size=(3, 5, 2))
    model = rk.Sequential([rk.LSTM(4, dropout=0.5, recurrent_dropout=0.5, zoneout=(0.5, 0.5),
                                   return_sequences=True), rk.Dropout(0.5), rk.Dense(2)],
                          dtype="float64")
    rng = np.random.default_rng(3)
    given = {"0.dropout": rng.uniform(0, 2, (5, 3, 3)),
             "0.recurrent_dropout": rng.uniform(0, 2, (3, 4)),
             "0.zoneout_h": rng.uniform(0, 1, (5, 3, 4)),
             "0.zoneout_c": rng.uniform(0, 1, (5, 3, 4)),
             "1.dropout": rng.uniform(0, 2, (5, 3, 4))}
    noise = Noise(given=given)
    assert max(rk.gradcheck(model, X, y, noise=noise, max_entries=10).values()) < 1e-6
    out = model.forward(X, noise=noise)
    # by hand: the layer with the given masks, step by step
    p = {k.split(".", 1)[1]: v for k, v in model.parameters().items() if k.startswith("0.")}
    cell, h, c = model.layers[0].cell, np.zeros((3, 4)), np.zeros((3, 4))
    xz = (X.swapaxes(0, 1) * given["0.dropout"]) @ p["W_x"].T + p["b"]
    hs = []
    for t in range(5):
        (hn, cn), _ = cell.step(p, xz[t], (h, c), given["0.recurrent_dropout"])
        zh, zc = given["0.zoneout_h"][t], given["0.zoneout_c"][t]
        h, c = zh * h + (1 - zh) * hn, zc * c + (1 - zc) * cn
        hs.append(h)
    hs = np.stack(hs) * given["1.dropout"]
    expected = hs @ model.parameters()["2.W"].T + model.parameters()["2.b"]
    np.testing.assert_allclose(out, expected.swapaxes(0, 1), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"'0.recurrent_dropout' must have shape \(3, 4\)"):
        model.forward(X, noise=Noise(given={"0.recurrent_dropout": np.ones((4, 4))}))


def test_only_fit_is_stochastic_and_a_seeded_fit_is_reproducible(backend):
    X, y = _data(B=16, T=6)

    def make():
        return rk.Sequential([rk.GRU(5, dropout=0.3, recurrent_dropout=0.3, zoneout=0.2,
                                     return_sequences=True), rk.Dropout(0.5), rk.LSTM(4),
                              rk.Dense(2)], seed=0)

    a, b = make(), make()
    ha = a.fit(X, y, epochs=2, batch_size=4, seed=3)
    hb = b.fit(X, y, epochs=2, batch_size=4, seed=3)
    assert ha["loss"] == hb["loss"]
    for k, v in a.parameters().items():
        np.testing.assert_array_equal(v, b.parameters()[k])
    c = make()
    c.fit(X, y, epochs=2, batch_size=4, seed=4)  # other masks, other weights
    assert not np.array_equal(c.parameters()["0.W_x"], a.parameters()["0.W_x"])
    first = a.predict(X)
    np.testing.assert_array_equal(first, a.predict(X))
    assert a.evaluate(X, y) == a.evaluate(X, y)
    stream = a.stream()
    for t in range(X.shape[1]):
        step = stream.step(X[:, t])
    np.testing.assert_allclose(step, first, rtol=1e-5, atol=1e-6)


def test_zoneout_at_inference_is_the_expectation():
    X, _ = _data()
    model = rk.Sequential([rk.RNN(4, zoneout=0.25, return_sequences=True)], dtype="float64")
    out = model.predict(X)
    p = {k.split(".", 1)[1]: v for k, v in model.parameters().items()}
    h, hs = np.zeros((3, 4)), []
    for t in range(5):
        h = 0.25 * h + 0.75 * np.tanh(X[:, t] @ p["W_x"].T + h @ p["W_h"].T + p["b"])
        hs.append(h)
    np.testing.assert_allclose(out, np.stack(hs, 1), rtol=1e-12)


def test_masks_are_per_global_row_and_inverted():
    full = Noise(key=11).at(2).mask("dropout", 0.4, (6, 8, 5), np.dtype(np.float64), True, True)
    part = Noise(key=11, row0=3).at(2).mask("dropout", 0.4, (6, 4, 5), np.dtype(np.float64),
                                            True, True)
    np.testing.assert_array_equal(part, full[:, 3:7])  # ranks with rows [3, 7) get these rows
    later = Noise(key=11, t0=2).at(2).mask("dropout", 0.4, (4, 8, 5), np.dtype(np.float64),
                                           True, True)
    np.testing.assert_array_equal(later, full[2:])  # a tbptt chunk gets its steps' masks
    assert set(np.unique(full)) == {0.0, 1 / 0.6}
    big = Noise(key=1).at(0).mask("recurrent_dropout", 0.3, (400, 500), np.dtype(np.float32),
                                  False, True)
    assert abs(big.mean() - 1) < 0.01  # inverted: expectation 1
    other = Noise(key=1).at(1).mask("recurrent_dropout", 0.3, (400, 500), np.dtype(np.float32),
                                    False, True)
    assert 0.55 < np.mean(big == other) < 0.61  # other layer, independent mask: 0.7² + 0.3²


def test_padded_steps_stay_zero_in_training():
    X = [np.ones((5, 3)), np.ones((2, 3))]
    model = rk.Sequential([rk.LSTM(4, dropout=0.5, zoneout=0.3, recurrent_dropout=0.3,
                                   return_sequences=True), rk.Dropout(0.5)], dtype="float64")
    model.build(3)
    out = model.forward(X, noise=Noise(key=5))
    assert np.all(out[1, 2:] == 0)
    dX = model.backward(np.ones_like(out))
    assert np.all(dX[1, 2:] == 0)


@pytest.mark.parametrize(("cls", "options"), VARIANTS)
def test_save_load_keeps_every_option(cls, options, tmp_path):
    model = rk.Sequential([cls(4, return_sequences=True, **options), rk.Dropout(0.2),
                           rk.Dense(1)], seed=0)
    X, _ = _data()
    before = model.predict(X)
    model.save(tmp_path / "m.safetensors")
    loaded = rk.load(tmp_path / "m.safetensors")
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.predict(X), before)
    layer = loaded.layers[0]
    for k, v in options.items():
        got = getattr(layer, k)
        assert got == (v if k != "zoneout" else tuple(np.broadcast_to(v, len(got)))), k


@pytest.mark.parametrize(("make", "message"), [
    (lambda: rk.LSTM(4, dropout=1.0), r"LSTM: dropout must be a probability in \[0, 1\), got 1.0"),
    (lambda: rk.GRU(4, recurrent_dropout=-0.1), r"GRU: recurrent_dropout must be a probability"),
    (lambda: rk.RNN(4, zoneout=1.5), r"RNN: zoneout must be a probability in \[0, 1\)"),
    (lambda: rk.GRU(4, zoneout=(0.1, 0.2)), r"GRU: zoneout must be a probability or 1 of them"),
    (lambda: rk.Dropout(1), r"Dropout: p must be a probability in \[0, 1\), got 1"),
    (lambda: rk.Dropout("0.5"), r"Dropout: p must be a probability"),
    (lambda: rk.LSTM(4, proj_size=4), "LSTM: proj_size must be smaller than hidden=4, got 4"),
    (lambda: rk.LSTM(4, proj_size=-1), "LSTM: proj_size must be an integer >= 0"),
    (lambda: rk.LSTM(1, layer_norm=True), "LSTM: layer_norm needs hidden >= 2"),
    (lambda: rk.GRU(4, peepholes=True), "GRU: peepholes is not an option of GRU"),
    (lambda: rk.GRU(4, proj_size=2), "GRU: proj_size is not an option of GRU"),
    (lambda: rk.RNN(4, layer_norm=True), "RNN: layer_norm is not an option of RNN"),
    (lambda: rk.LSTM(4, layer_norm="yes"), "LSTM: layer_norm must be True or False"),
])
def test_bad_options_name_the_option_and_the_layer(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_fit_learns_with_every_regulariser():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 8, 2))
    y = X[:, :, :1].sum(axis=1)
    model = rk.Sequential([rk.LSTM(8, dropout=0.1, recurrent_dropout=0.1, zoneout=0.1,
                                   layer_norm=True, peepholes=True, proj_size=4), rk.Dense(1)],
                          seed=0)
    before = model.evaluate(X, y)["loss"]
    model.fit(X, y, epochs=15, batch_size=16, optimizer=rk.Adam(0.02))
    assert model.evaluate(X, y)["loss"] < 0.5 * before


@pytest.mark.parametrize(("cls", "options"), [
    (rk.LSTM, {"layer_norm": True, "peepholes": True, "proj_size": 2, "zoneout": (0.3, 0.1)}),
    (rk.GRU, {"layer_norm": True, "zoneout": 0.2}),
    (rk.RNN, {"zoneout": 0.4}),
])
def test_gradient_flow_jacobians_of_the_variants_are_exact(cls, options):
    from rnnkit.diagnostics.jacobians import VariantFlow, cell_flow

    layer = cls(4, **options)
    model = _perturb(rk.Sequential([layer, rk.Dense(2)], dtype="float64").build(3))
    p = {k: layer.params[k] for k in layer.cell.param_shapes(1, layer.bias)}
    flow = cell_flow(layer.cell, p, layer.zoneout)
    assert isinstance(flow, VariantFlow)
    rng = np.random.default_rng(5)
    xz = flow.input_projection(rng.normal(size=(1, 2, 3)))[0]
    s = rng.normal(size=(2, sum(flow.sizes)))
    J = flow.jacobian(flow.step(xz, s)[1], s)
    eps, numeric = 1e-6, np.empty_like(J)
    for k in range(s.shape[1]):
        e = np.zeros_like(s)
        e[:, k] = eps
        numeric[:, :, k] = (flow.step(xz, s + e)[0] - flow.step(xz, s - e)[0]) / (2 * eps)
    np.testing.assert_allclose(J, numeric, rtol=1e-6, atol=1e-8)
    X, y = _data()
    report = rk.gradient_flow(model, X, y)  # the whole tool runs on them
    assert len(report.flows) == 1 and report.verdict in report.summary()


#: the variants the compiled loops run (rnnkit.kernels), alone and together
COMPILED = [
    (rk.RNN, {"recurrent_dropout": 0.4}),
    (rk.LSTM, {"recurrent_dropout": 0.4}),
    (rk.GRU, {"recurrent_dropout": 0.4}),
    (rk.RNN, {"zoneout": 0.3}),
    (rk.GRU, {"zoneout": 0.3}),
    (rk.LSTM, {"zoneout": (0.3, 0.5)}),
    (rk.LSTM, {"zoneout": (0.0, 0.5)}),
    (rk.LSTM, {"peepholes": True}),
    (rk.LSTM, {"proj_size": 2}),
    (rk.LSTM, {"proj_size": 3, "zoneout": (0.3, 0.2)}),
    (rk.RNN, {"zoneout": 0.3, "recurrent_dropout": 0.4}),
    (rk.GRU, {"zoneout": 0.3, "recurrent_dropout": 0.4}),
    (rk.LSTM, {"peepholes": True, "zoneout": (0.4, 0.2), "recurrent_dropout": 0.4,
               "proj_size": 3}),
]
#: layer norm, alone and with every other variant of its cell (float32: test_kernels.py)
COMPILED_LN = [
    (rk.LSTM, {"layer_norm": True}),
    (rk.GRU, {"layer_norm": True}),
    (rk.GRU, {"layer_norm": True, "bias": False, "zoneout": 0.3, "recurrent_dropout": 0.4}),
    (rk.LSTM, {"layer_norm": True, "peepholes": True, "zoneout": (0.4, 0.2),
               "recurrent_dropout": 0.4, "proj_size": 3}),
]


def _both_loops(cls, options, B, T, noise, split, monkeypatch, train=True):
    """The reference loop's and the compiled loop's results for one layer (both directions,
    ragged lengths): output, dX and every gradient (training), or predict's output and
    final state."""
    if not kernels.numba_available():
        pytest.skip("numba is not installed")  # CI installs it; the reference is checked above
    if split:  # the batch in parts on two threads, each its own buffers
        monkeypatch.setattr(kernels, "SPLIT_MIN_MACS", 0)
        monkeypatch.setattr(kernels._parallel, "_threads", 2)
    X, _ = _data(B=B, T=T)
    lengths = np.random.default_rng(B).integers(1, T + 1, size=B)
    results = []
    for name in ("numpy", "numba"):
        before = kernels.get_backend()
        kernels.set_backend(name)
        try:
            layer = cls(4, return_sequences=True, return_state=not train, bidirectional=True,
                        **options)
            model = _perturb(rk.Sequential([layer], seed=0, dtype="float64").build(3))
            if not train:
                out, state = model.predict(X, lengths)
                flat = [np.ravel(a) for s in state[0] for a in s]  # (h, c) per direction
                results.append((out, np.concatenate(flat), {}))
                continue
            out = model.forward(X, lengths=lengths, noise=noise)
            tape = model._tape[0][0][0][0][3]  # layer 0, direction 0: its caches
            assert isinstance(tape, kernels.Tape) == (name == "numba")
            Y = np.random.default_rng(1).normal(size=out.shape)
            results.append((out, model.backward(Y), {k: v.copy() for k, v in
                                                     model.gradients().items()}))
        finally:
            kernels.set_backend(before)
    return results


@pytest.mark.parametrize(("cls", "options"), COMPILED + COMPILED_LN)
@pytest.mark.parametrize("masks", ["expectation", "drawn"])
def test_compiled_loop_equals_the_reference(cls, options, masks, monkeypatch):
    noise = Noise(key=3) if masks == "drawn" else None
    if masks == "drawn":  # the layer-normalised LSTM keeps its input projections (D=3)
        monkeypatch.setattr(kernels, "LN_KEEP_MIN_D", 0)
    (a, da, ga), (b, db, gb) = _both_loops(cls, options, 8, 6, noise, False, monkeypatch)
    np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(db, da, rtol=1e-12, atol=1e-14)
    for k in ga:
        np.testing.assert_allclose(gb[k], ga[k], rtol=1e-11, atol=1e-14, err_msg=k)


@pytest.mark.parametrize(("cls", "options", "keep"),
                         [(*c, False) for c in COMPILED[-3:] + COMPILED_LN[-2:]]
                         + [(*COMPILED_LN[-1], True)])
@pytest.mark.parametrize("train", [True, False])
def test_compiled_variants_split_over_threads_and_predict(cls, options, keep, train,
                                                          monkeypatch):
    # rows 0:6 and 6:13 on two threads; predict: zoneout's expectation, the LSTM's cell c
    # in a one-step buffer; keep: the layer-normalised LSTM keeps its input projections
    if keep:
        monkeypatch.setattr(kernels, "LN_KEEP_MIN_D", 0)
    (a, da, ga), (b, db, gb) = _both_loops(cls, options, 13, 5, Noise(key=4), True,
                                           monkeypatch, train)
    np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(db, da, rtol=1e-12, atol=1e-14)
    for k in ga:
        np.testing.assert_allclose(gb[k], ga[k], rtol=1e-11, atol=1e-14, err_msg=k)


def test_resume_continues_the_same_masks(tmp_path):
    X, y = _data(B=24, T=5)

    def model():
        return rk.Sequential([rk.LSTM(4, dropout=0.2, recurrent_dropout=0.3, zoneout=0.1),
                              rk.Dropout(0.3), rk.Dense(2)], seed=1)

    full = model()
    full.fit(X, y, epochs=3, batch_size=8, seed=2)
    ckpt = tmp_path / "ckpt.safetensors"
    model().fit(X, y, epochs=1, batch_size=8, seed=2, callbacks=[rk.ModelCheckpoint(ckpt)])
    resumed = model()
    resumed.fit(X, y, epochs=3, batch_size=8, seed=2, resume=str(ckpt))
    for k, v in full.parameters().items():
        np.testing.assert_array_equal(resumed.parameters()[k], v)
