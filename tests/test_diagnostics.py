"""Gradient flow: the analytic step Jacobians against finite differences and against
backpropagation through time, the report's gradients against the layer's own BPTT, the
report/monitor outputs and the ``diagnose`` command."""

import json
import subprocess
import sys

import numpy as np
import pytest

import rnnkit as rk
from rnnkit.diagnostics import cell_flow, state_jacobians

CELLS = {
    "rnn_tanh": lambda h, **k: rk.RNN(h, activation="tanh", **k),
    "rnn_relu": lambda h, **k: rk.RNN(h, activation="relu", **k),
    "lstm": lambda h, **k: rk.LSTM(h, **k),
    "gru": lambda h, **k: rk.GRU(h, **k),
}


def built(cell, H=4, D=3, seed=0, **options):
    model = rk.Sequential([CELLS[cell](H, **options)], dtype="float64", seed=seed)
    model.build(D)
    layer = model.layers[0]
    rng = np.random.default_rng(seed + 1)
    for v in layer.params.values():  # biases too, so that every term of J is exercised
        v += 0.3 * rng.standard_normal(v.shape)
    return model, layer


def dir_params(layer, sfx=""):
    return {k: layer.params[k + sfx] for k in layer.cell.param_shapes(1, layer.bias)}


def library_step(layer, p, xz, s):
    """The library cell's own step on a concatenated state (for finite differences)."""
    H = layer.hidden
    parts = (s[:, :H], s[:, H:]) if len(layer.cell.state_names) == 2 else (s,)
    new, _ = layer.cell.step(p, xz, parts)
    return np.concatenate(new, axis=1)


@pytest.mark.parametrize("cell", CELLS)
def test_step_jacobian_equals_central_differences(cell):
    _, layer = built(cell)
    p = dir_params(layer)
    flow = cell_flow(layer.cell, p)
    rng = np.random.default_rng(2)
    n = layer.hidden * flow.state_factor
    B, eps = 3, 1e-6
    xz = rng.standard_normal((B, p["W_h"].shape[0]))
    s = rng.standard_normal((B, n))
    _, aux = flow.step(xz, s)
    J = flow.jacobian(aux, s)
    numeric = np.empty_like(J)
    for k in range(n):
        e = np.zeros(n)
        e[k] = eps
        numeric[:, :, k] = (library_step(layer, p, xz, s + e)
                            - library_step(layer, p, xz, s - e)) / (2 * eps)
    np.testing.assert_allclose(J, numeric, rtol=0, atol=1e-8)
    np.testing.assert_allclose(flow.step(xz, s)[0], library_step(layer, p, xz, s), rtol=1e-14)


@pytest.mark.parametrize("cell", CELLS)
def test_jacobian_product_applied_to_grad_hT_equals_bptt_at_h1(cell):
    """spec: ∇_{h_1} L = ∏_{i=2}^{T} J_i^T ∇_{h_T} L, on the (h, c) state for the LSTM. The
    BPTT side runs steps 2..T from a learned initial state set to s_1."""
    T, D, H = 15, 3, 4
    model, layer = built(cell, H, D)
    X = np.random.default_rng(3).standard_normal((T, 1, D))
    flow = cell_flow(layer.cell, dir_params(layer))
    n = H * flow.state_factor
    S, J = state_jacobians(flow, X, np.zeros((1, n)))
    np.testing.assert_allclose(S[1:, 0, :H], model.predict(X[:, 0]) if layer.return_sequences
                               else S[1:, 0, :H], rtol=1e-13)
    target = np.random.default_rng(4).standard_normal(H)
    g = np.zeros(n)
    g[:H] = S[T, 0, :H] - target  # L = 0.5 |h_T - target|²
    for t in range(T - 1, 0, -1):  # J_T^T .. J_2^T (jacs[t] = ∂s_{t+1}/∂s_t, 0-based)
        g = J[t, 0].T @ g
    learned = {"h0": "learned", **({"c0": "learned"} if cell == "lstm" else {})}
    tail, tl = built(cell, H, D, **learned)
    for k in dir_params(layer):
        tl.params[k][...] = layer.params[k]
    tl.params["h0"][...] = S[1, 0, :H]
    if cell == "lstm":
        tl.params["c0"][...] = S[1, 0, H:]
    out = tail.forward(X[1:, 0])
    np.testing.assert_allclose(out, S[T, 0, :H], rtol=1e-13)
    tail.zero_grad()
    tail.backward(out - target)
    bptt = np.concatenate([tl.grads["h0"], tl.grads["c0"]] if cell == "lstm" else [tl.grads["h0"]])
    np.testing.assert_allclose(g, bptt, rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("case", ["last_step", "every_step", "readout_y", "bidirectional"])
def test_report_gradient_at_s0_equals_bptt(cell, case):
    """The report's ‖∂L/∂s_0‖ (walked back through every step with the analytic Jacobians,
    from the loss gradient) equals the layer's own BPTT gradient of a learned initial state."""
    T, D, H = 12, 2, 3
    options = {"h0": "learned", **({"c0": "learned"} if cell == "lstm" else {})}
    if case == "every_step":
        options["return_sequences"] = True
    if case == "readout_y":
        options.update(readout=rk.Dense(2), output="y", return_sequences=True)
    if case == "bidirectional":
        options["bidirectional"] = True
    model, layer = built(cell, H, D, **options)
    rng = np.random.default_rng(5)
    X = rng.standard_normal((1, T, D))
    y = rng.standard_normal(model.predict(X).shape)
    report = rk.gradient_flow(model, X, y, loss="mse")
    model.zero_grad()
    out = model.forward(X)
    model.backward(2 * (out - y) / out.size)  # d mse
    for flow, sfx in zip(report.flows, layer.directions):
        keys = ["h0", "c0"] if cell == "lstm" else ["h0"]
        bptt = np.sqrt(sum(np.sum(layer.grads[k + sfx] ** 2) for k in keys))
        np.testing.assert_allclose(10**flow.log10_grad_h0, bptt, rtol=1e-9)
    assert len(report.flows) == (2 if case == "bidirectional" else 1)


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm"])
def test_padded_batch_equals_each_sequence_alone(cell):
    model, _ = built(cell, 3, 2, h0="learned", **({"c0": "learned"} if cell == "lstm" else {}))
    rng = np.random.default_rng(6)
    seqs = [rng.standard_normal((n, 2)) for n in (7, 4)]
    y = rng.standard_normal((2, 1))
    model = rk.Sequential([model.layers[0], rk.Dense(1)], dtype="float64", seed=1)
    padded = rk.gradient_flow(model, seqs, y).flows[0]
    alone = [rk.gradient_flow(model, s[None], y[i : i + 1]).flows[0] for i, s in enumerate(seqs)]
    # the batch mean halves each sequence's gradient; the report averages the two norms
    expect = (10**alone[0].log10_grad_h0 + 10**alone[1].log10_grad_h0) / 4
    np.testing.assert_allclose(10**padded.log10_grad_h0, expect, rtol=1e-10)
    np.testing.assert_allclose(padded.lyapunov, np.mean([a.lyapunov for a in alone], axis=0),
                               rtol=1e-10)


def test_report_outputs(tmp_path):
    rng = np.random.default_rng(7)
    model = rk.Sequential([rk.LSTM(4, return_sequences=True), rk.GRU(3), rk.Dense(2)])
    X, y = rng.standard_normal((5, 20, 2)), rng.integers(0, 2, 5)
    report = rk.gradient_flow(model, X, y, loss="cross_entropy", max_samples=2)
    d = json.loads(report.to_json())
    assert d["verdict"] in ("vanishing", "exploding", "healthy")
    assert [f["layer"] for f in d["flows"]] == [0, 1] and d["loss_on"] == "last_step"
    assert len(d["flows"][0]["log10_grad_norm"]) == 20 and len(d["flows"][0]["lyapunov"]) == 8
    assert set(d["flows"][0]["saturation"]) >= {"f_closed", "f_open", "c_saturated"}
    text = report.summary()
    assert "0:LSTM" in text and "1:GRU" in text and f"verdict: {report.verdict}" in text
    report.plot(tmp_path / "flow.png")
    assert (tmp_path / "flow.png").read_bytes()[:4] == b"\x89PNG"


def test_saturation_and_dead_units():
    model = rk.Sequential([rk.RNN(4, activation="relu")], dtype="float64")
    model.build(1)
    model.parameters()["0.b"][:] = [-50, -50, 1, 1]  # two units can never switch on
    X = np.random.default_rng(0).uniform(0, 1, (3, 10, 1))
    flow = rk.gradient_flow(model, X, np.zeros((3, 4))).flows[0]
    assert flow.saturation["dead"] == 0.5
    tanh = rk.Sequential([rk.RNN(2)], dtype="float64")
    tanh.build(1)
    tanh.parameters()["0.b"][:] = [10.0, 0.0]  # tanh'(10) = 8e-9 < 0.01
    tanh.parameters()["0.W_h"][:] = 0
    tanh.parameters()["0.W_x"][:] = 0
    assert rk.gradient_flow(tanh, X, np.zeros((3, 2))).flows[0].saturation["saturated"] == 0.5


def test_monitor_records_during_fit(tmp_path):
    rng = np.random.default_rng(8)
    X, y = rng.standard_normal((16, 12, 2)), rng.standard_normal((16, 1))
    model = rk.Sequential([rk.RNN(4), rk.Dense(1)])
    monitor = rk.GradientFlowMonitor(every=2, X=X[:4], y=y[:4])
    model.fit(X, y, epochs=4, batch_size=8, callbacks=[monitor])
    assert [r["epoch"] for r in monitor.records] == [0, 2, 4]
    r = monitor.records[-1]
    assert r["verdict"] in ("vanishing", "exploding", "healthy") and r["loss"] > 0
    assert r["spectral_radius"] > 0 and r["log10_grad_last"] > r["log10_grad_first"] - 50
    assert json.loads(monitor.to_json())["records"][0]["loss"] is None
    monitor.plot(tmp_path / "monitor.png")
    assert (tmp_path / "monitor.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="needs a batch"):
        model.fit(X, y, epochs=1, callbacks=[rk.GradientFlowMonitor()])


def test_import_does_not_load_matplotlib():
    code = "import sys, rnnkit; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_diagnose_command(tmp_path, capsys):
    from rnnkit.cli import main

    png, js = tmp_path / "f.png", tmp_path / "f.json"
    argv = ["diagnose", "--cell", "rnn", "--hidden", "8", "--seq-len", "40", "--scale", "0.5",
            "--out", str(png), "--save-json", str(js)]
    assert main(argv) == 0
    assert "vanishing" in capsys.readouterr().out and png.exists()
    assert json.loads(js.read_text())["verdict"] == "vanishing"
    assert main(["diagnose", "--cell", "gru", "--hidden", "0"]) == 3
    assert "--hidden must be >= 1" in capsys.readouterr().err
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    assert main(["diagnose", str(bad), "nile"]) == 4
    model = rk.Sequential([rk.GRU(3), rk.Dense(1)])
    model.build(1)
    model.save(tmp_path / "m.safetensors")
    assert main(["diagnose", str(tmp_path / "m.safetensors"), "no_such_dataset"]) == 3
    assert main(["diagnose", str(tmp_path / "m.safetensors"), "nile", "--seq-len", "20"]) == 0
    assert "1:GRU" not in capsys.readouterr().out
    assert main(["diagnose", "--cell", "lstm", "--hidden", "4", "--seq-len", "10",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] in ("vanishing", "healthy",
                                                               "exploding")
