"""Constructed cases with known answers: the documented verdicts, rates, horizons and
Lyapunov exponents (diagnostics/report.py), and sequences of 2000 steps whose gradients leave
float64's range without a floating-point warning."""

import math

import numpy as np
import pytest

import rnnkit as rk


def linear_model(W_h, D=2, seed=0, activation="identity"):
    H = W_h.shape[0]
    model = rk.Sequential([rk.RNN(H, activation=activation), rk.Dense(1)], dtype="float64",
                          seed=seed)
    model.build(D)
    model.parameters()["0.W_h"][...] = W_h
    return model


def orthogonal(H, seed=0):
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((H, H)))
    return q * np.sign(np.diag(r))


def data(T, B=4, D=2, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((B, T, D)), rng.standard_normal((B, 1))


def test_half_orthogonal_vanishes_at_rate_log_half():
    X, y = data(200)
    report = rk.gradient_flow(linear_model(0.5 * orthogonal(8)), X, y)
    f = report.flows[0]
    assert f.verdict == report.verdict == "vanishing"
    assert f.rate == pytest.approx(math.log(0.5), rel=1e-9)
    np.testing.assert_allclose(f.lyapunov, math.log(0.5), rtol=1e-9)
    np.testing.assert_allclose(f.jacobian_norm, 0.5, rtol=1e-12)
    # 0.5^k < 1e-3 first at k = 10: the gradient stays within 1e3 over 10 steps
    assert f.horizon == 10
    assert f.spectral_radius == pytest.approx(0.5) and f.singular_values[0] == pytest.approx(0.5)


@pytest.mark.parametrize("eigs", [[0.95, 0.8, -0.6, 0.3, 0.1], [1.0, -0.97, 0.5, 0.2, -0.05]])
def test_lyapunov_exponents_are_log_eigenvalues_of_a_symmetric_linear_layer(eigs):
    V = orthogonal(5, seed=3)
    W = V @ np.diag(eigs) @ V.T
    X, y = data(2000, B=2)
    f = rk.gradient_flow(linear_model(W), X, y, max_samples=2).flows[0]
    expect = np.sort(np.log(np.abs(eigs)))[::-1]
    # constant J: the QR estimate converges like O(1/T); the leading one to log ρ(W_h)
    np.testing.assert_allclose(f.lyapunov, expect, atol=2e-3)
    assert f.lyapunov[0] == pytest.approx(math.log(f.spectral_radius), abs=1e-3)


def test_lyapunov_of_a_scaled_rotation_is_log_of_its_radius():
    theta = 0.3
    R = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    W = np.kron(np.diag([0.9, 0.9]), R)  # complex eigenvalues 0.9 e^{±iθ}
    X, y = data(500, B=1)
    f = rk.gradient_flow(linear_model(W), X, y).flows[0]
    assert f.spectral_radius == pytest.approx(0.9)
    np.testing.assert_allclose(f.lyapunov, math.log(0.9), rtol=1e-10)


def test_identity_initialised_relu_with_radius_above_one_explodes():
    model, X = exploding_relu()
    f = rk.gradient_flow(model, X, np.ones((4, 1))).flows[0]
    assert f.verdict == "exploding"
    assert f.rate == pytest.approx(math.log(1.05), rel=1e-9)
    assert f.horizon == math.ceil(3 / math.log10(1.05))  # 1.05^k > 1e3 first at k = 142
    assert f.saturation["dead"] == 0


def test_orthogonal_linear_layer_is_healthy():
    X, y = data(300)
    f = rk.gradient_flow(linear_model(orthogonal(6)), X, y).flows[0]
    assert f.verdict == "healthy" and f.horizon == 300
    assert abs(f.rate) < 1e-10
    np.testing.assert_allclose(f.lyapunov, 0, atol=1e-10)
    np.testing.assert_allclose(f.log10_product_norm, 0, atol=1e-10)


def test_every_step_loss_keeps_direct_terms_but_the_horizon_uses_the_last_step():
    H = 4
    model = rk.Sequential([rk.RNN(H, activation="identity", return_sequences=True),
                           rk.Dense(1)], dtype="float64")
    model.build(2)
    model.parameters()["0.W_h"][...] = 0.5 * orthogonal(H)
    X, _ = data(60)
    f = rk.gradient_flow(model, X, np.ones((4, 60, 1))).flows[0]
    assert f.verdict == "vanishing" and f.horizon == 10
    assert np.all(f.log10_grad_norm > -4)  # every step has its own loss term


@pytest.mark.parametrize("make", [
    lambda: linear_model(0.5 * orthogonal(6)),
    lambda: linear_model(1.01 * orthogonal(6)),
    lambda: rk.Sequential([rk.LSTM(5), rk.Dense(1)], dtype="float64"),
    lambda: rk.Sequential([rk.GRU(5, bidirectional=True), rk.Dense(1)], dtype="float64"),
    lambda: rk.Sequential([rk.RNN(6, activation="tanh"), rk.Dense(1)], dtype="float64"),
])
def test_two_thousand_steps_stay_finite_without_warnings(make):
    """0.5^2000 = 1e-602 and 1.01^2000 = 4e8 per direction: logs and rescaling keep every
    number representable; conftest turns over/invalid/divide into errors, and here underflow
    too."""
    X, y = data(2000, B=2)
    with np.errstate(all="raise"):
        report = rk.gradient_flow(make(), X, y, max_samples=1)
    for f in report.flows:
        assert np.all(np.isfinite(f.lyapunov)) and np.all(np.isfinite(f.jacobian_norm))
        assert np.all(~np.isnan(f.log10_grad_norm))
    report.to_json()


def exploding_relu(B=4, T=200):
    """J_t = 1.05 I at every step: every pre-activation positive."""
    model = rk.Sequential([rk.RNN(8, activation="relu", recurrent_init="identity"),
                           rk.Dense(1)], dtype="float64")
    model.build(2)
    p = model.parameters()
    p["0.W_h"] *= 1.05
    p["0.W_x"][...] = np.abs(p["0.W_x"])
    p["0.b"][...] = 0.1
    return model, np.random.default_rng(0).uniform(0, 1, (B, T, 2))


def test_a_dead_sequence_is_counted_and_left_out_of_the_verdict_and_lambda1():
    """One sequence with every relu unit off at step 151 has an exactly zero gradient before
    it: it must not turn an exploding batch into "vanishing" nor λ1 into -inf."""
    model, X = exploding_relu()
    X[0, 150] = -1e9
    f = rk.gradient_flow(model, X, np.ones((4, 1))).flows[0]
    assert f.dead_share == 0.25 and f.lyapunov_samples == 3
    assert f.verdict == "exploding" and f.horizon == 142
    assert f.rate == pytest.approx(math.log(1.05), rel=1e-9)
    np.testing.assert_allclose(f.lyapunov, math.log(1.05), rtol=1e-9)
    assert "25% of the sequences are dead" in f.reason and "grows 1e3-fold in 142 steps" in f.reason
    assert "shrinks" not in f.reason and "-inf" not in f.reason


def test_dead_sequences_in_the_sample_give_way_to_live_ones():
    """The SVDs and QRs run on max_samples sequences; when those are dead and others live,
    λ1 and the product norms come from live ones (λ1 = -inf said nothing about the batch)."""
    model, X = exploding_relu(B=6)
    X[:2, 150] = -1e9  # the first two sequences are dead
    X[2, 0] = -1e9  # every unit off at step 1: the gradient reaches h_1, but not h_0
    f = rk.gradient_flow(model, X, np.ones((6, 1)), max_samples=3).flows[0]
    assert f.dead_share == pytest.approx(2 / 6) and f.lyapunov_samples == 3
    np.testing.assert_allclose(f.lyapunov, math.log(1.05), rtol=1e-9)
    np.testing.assert_allclose(f.log10_product_norm, np.arange(199, -1, -1) * math.log10(1.05),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(f.jacobian_norm, 1.05, rtol=1e-12)
    lengths = np.array([200, 200, 120, 200, 160, 200])  # live samples padded after their end
    X[2, 100] = -1e9  # dead within its length (a short sequence used to be left out unseen)
    f = rk.gradient_flow(model, X, np.ones((6, 1)), lengths=lengths, max_samples=3).flows[0]
    assert f.dead_share == pytest.approx(3 / 6) and f.lyapunov_samples == 3
    np.testing.assert_allclose(f.lyapunov, math.log(1.05), rtol=1e-9)


def test_all_sequences_dead_is_vanishing_with_an_exact_zero():
    model, X = exploding_relu(B=2)
    X[:, 150] = -1e9
    f = rk.gradient_flow(model, X, np.ones((2, 1))).flows[0]
    assert f.dead_share == 1.0 and f.verdict == "vanishing" and f.horizon == 50
    assert f.reason.startswith("50 steps back the last step's gradient is exactly zero in "
                               "every sequence")
    assert f.lyapunov[0] == -np.inf and "exactly zero in every sampled sequence" in f.reason
    assert "in 0 steps" not in f.reason and "left out" not in f.reason
