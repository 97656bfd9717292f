"""Probabilistic losses (pinball, Gaussian NLL): exact gradients, worked examples, calibration."""

import numpy as np
import pytest

import rnnkit as rk
from helpers_rnnkit import numeric_grad as _numeric_grad
from rnnkit import losses
from rnnkit.data.scores import crps_gaussian, gaussian_quantiles, interval_scores


def _rel_err(a, b):
    return np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b))


MASK = np.array([[True, True, True, False], [True, False, False, False]])


@pytest.mark.parametrize("layout", ["sequence", "masked", "last_step"])
def test_pinball_gradient_check(layout):
    rng = np.random.default_rng(0)
    q = (0.1, 0.5, 0.9)
    y = rng.normal(size=(2, 4, 2))  # (B, T, K)
    gap = rng.uniform(0.1, 1.0, (2, 4, 2, 3)) * rng.choice([-1.0, 1.0], (2, 4, 2, 3))
    z = (y[..., None] + gap).reshape(2, 4, 6)  # no output within 0.1 of its kink
    mask = MASK if layout == "masked" else None
    if layout == "last_step":
        z, y = z[:, -1], y[:, -1]
    _, grad = losses.pinball(z, y, mask, q)
    numeric = _numeric_grad(lambda x: losses.pinball(x, y, mask, q)[0], z.copy())
    assert _rel_err(grad, numeric) < 1e-7 and grad.shape == z.shape
    if mask is not None:
        assert not grad[~mask].any()


@pytest.mark.parametrize("layout", ["sequence", "masked", "last_step"])
def test_gaussian_nll_gradient_check(layout):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(2, 4, 6)) * 2  # K = 3 means, then 3 raw scales
    y = rng.normal(size=(2, 4, 3))
    mask = MASK if layout == "masked" else None
    if layout == "last_step":
        z, y = z[:, -1], y[:, -1]
    _, grad = losses.gaussian_nll(z, y, mask)
    numeric = _numeric_grad(lambda x: losses.gaussian_nll(x, y, mask)[0], z.copy())
    assert _rel_err(grad, numeric) < 1e-7 and grad.shape == z.shape
    if mask is not None:
        assert not grad[~mask].any()


def test_pinball_worked_example():
    # y = 1; quantile 0.1 at 2 (over): 0.9 * 1; median at 0 (under): 0.5 * 1; 0.9 at 1: 0
    value, grad = losses.pinball(np.array([[2.0, 0.0, 1.0]]), np.array([1.0]), None,
                                 (0.1, 0.5, 0.9))
    assert value == pytest.approx((0.9 + 0.5 + 0.0) / 3, rel=1e-15)
    np.testing.assert_allclose(grad, [[0.9 / 3, -0.5 / 3, 0.1 / 3]], rtol=1e-15)


def test_gaussian_nll_worked_example():
    # mu = 0, s with softplus(s) = 1 (s = log(e - 1)), y = 1: log(2 pi) / 2 + 0 + 1 / 2
    s = np.log(np.e - 1)
    value, _ = losses.gaussian_nll(np.array([[0.0, s]]), np.array([1.0]))
    assert value == pytest.approx(0.5 * np.log(2 * np.pi) + 0.5, rel=1e-6)


@pytest.mark.parametrize("bad", [(0.5, 0.1), (0.0, 0.5), (0.5, 1.0), ()])
def test_quantiles_must_be_increasing_inside_0_1(bad):
    with pytest.raises(ValueError, match="increasing levels strictly between 0 and 1"):
        losses.quantile_loss(bad)


def test_interval_scores_worked_example():
    # two forecasts with the interval [0, 2]: 1 inside, 3 outside -> coverage 0.5, width 2
    qf = np.array([[[0.0, 1.0, 2.0]], [[0.0, 1.0, 2.0]]])  # (N=2, H=1, Q=3)
    out = interval_scores(qf, [0.1, 0.5, 0.9], np.array([[1.0], [3.0]]))
    assert out["intervals"] == [{"nominal": 0.8, "coverage": 0.5, "width": 2.0}]
    # pinball: y=1: (0.1*1 + 0 + 0.1*1)/3; y=3: (0.1*3 + 0.5*2 + 0.9*1)/3
    assert out["pinball"] == pytest.approx((0.2 + 2.2) / 6, rel=1e-12)


def test_crps_of_many_quantiles_approaches_the_exact_gaussian_crps():
    rng = np.random.default_rng(2)
    mu, sigma = rng.normal(size=(50, 2)), rng.uniform(0.5, 2, (50, 2))
    y = mu + sigma * rng.normal(size=(50, 2))
    levels = np.linspace(0.005, 0.995, 199)
    approx = interval_scores(gaussian_quantiles(mu, sigma, levels), levels, y)["crps"]
    assert approx == pytest.approx(crps_gaussian(mu, sigma, y), rel=0.01)


def test_gaussian_model_is_calibrated_on_data_with_known_noise():
    """An AR(1) series with noise sd 0.5: a GRU trained with the Gaussian NLL must cover
    80% and 95% of fresh data within 3 points of nominal (n = 4000: 3 points > 4 se)."""
    rng = np.random.default_rng(0)

    def windows(n):
        x = np.zeros((n, 4))
        for t in range(1, 4):
            x[:, t] = 0.8 * x[:, t - 1] + rng.normal(0, 1, n)
        y = 0.8 * x[:, -1] + rng.normal(0, 0.5, n)
        return x[:, :, None], y[:, None]

    X, y = windows(4000)
    model = rk.Sequential([rk.GRU(8), rk.Dense(2)], seed=0)
    model.fit(X, y, loss="gaussian_nll", optimizer=rk.Adam(1e-2), epochs=6, batch_size=64,
              metrics=[], seed=0)
    Xt, yt = windows(4000)
    out = np.asarray(model.predict(Xt), np.float64)
    sigma = losses.softplus(out[:, 1:]) + losses.SCALE_FLOOR
    assert np.median(sigma) == pytest.approx(0.5, rel=0.1)
    levels = [0.025, 0.1, 0.9, 0.975]
    scores = interval_scores(gaussian_quantiles(out[:, :1], sigma, levels), levels, yt)
    for iv in scores["intervals"]:
        assert abs(iv["coverage"] - iv["nominal"]) < 0.03, iv
