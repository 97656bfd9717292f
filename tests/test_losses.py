"""Losses and metrics: gradient checks, worked examples, stability, errors."""

import numpy as np
import pytest

from helpers_rnnkit import numeric_grad as _numeric_grad
from rnnkit import losses, metrics


def _away_from_kinks(rng, shape):
    """Differences with |d| in [0.2, 0.8] or [1.2, 2.5]: no kink of mae/huber within reach."""
    size = rng.choice([0.0, 1.0], size=shape)
    magnitude = np.where(size, rng.uniform(1.2, 2.5, shape), rng.uniform(0.2, 0.8, shape))
    return magnitude * rng.choice([-1.0, 1.0], size=shape)


def _case(loss, layout, rng):
    """(outputs, targets, mask) for ``loss`` in a sequence / masked / last-step layout."""
    b, t, o = 2, 4, 3
    z = rng.normal(size=(b, t, o)) * 2
    if loss is losses.cross_entropy:
        y = rng.integers(0, o, size=(b, t))
    elif loss is losses.binary_cross_entropy:
        y = rng.uniform(size=(b, t, o))
    else:
        y = z - _away_from_kinks(rng, z.shape)
    mask = np.array([[True, True, True, False], [True, False, False, False]])
    if layout == "last_step":
        return z[:, -1], y[:, -1], None
    return z, y, mask if layout == "masked" else None


ALL_LOSSES = [losses.mse, losses.mae, losses.huber, losses.cross_entropy]
ALL_LOSSES += [losses.binary_cross_entropy]


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("layout", ["sequence", "masked", "last_step"])
def test_gradient_check(loss, layout):
    rng = np.random.default_rng(0)
    z, y, mask = _case(loss, layout, rng)
    _, grad = loss(z, y, mask)
    numeric = _numeric_grad(lambda x: loss(x, y, mask)[0], z.copy())
    err = np.linalg.norm(grad - numeric) / (np.linalg.norm(grad) + np.linalg.norm(numeric))
    assert err < 1e-7
    assert grad.shape == z.shape and grad.dtype == z.dtype
    if mask is not None:
        assert not grad[~mask].any()


@pytest.mark.parametrize("layout", ["sequence", "masked", "last_step"])
def test_gradient_check_cross_entropy_probabilities(layout):
    rng = np.random.default_rng(1)
    z, _, mask = _case(losses.cross_entropy, layout, rng)
    q = rng.dirichlet(np.ones(z.shape[-1]), size=z.shape[:-1])
    _, grad = losses.cross_entropy(z, q, mask)
    numeric = _numeric_grad(lambda x: losses.cross_entropy(x, q, mask)[0], z.copy())
    err = np.linalg.norm(grad - numeric) / (np.linalg.norm(grad) + np.linalg.norm(numeric))
    assert err < 1e-7


def test_mse_worked_example():
    # d = [[0, 2], [-2, 0]]; mean(d²) = 8 / 4 = 2; grad = 2 d / 4 = [[0, 1], [-1, 0]]
    value, grad = losses.mse(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1, 0], [5, 4]]))
    assert value == 2.0
    np.testing.assert_array_equal(grad, [[0, 1], [-1, 0]])


def test_mse_masked_worked_example():
    # the padded step's NaN target is never read; mean over 2 unmasked elements:
    # d = [1, 2]; (1 + 4) / 2 = 2.5; grad = 2 d / 2 = [1, 2, 0]
    z = np.array([[[1.0], [2.0], [3.0]]])  # (B, T, O) = (1, 3, 1)
    y = np.array([[[0.0], [0.0], [np.nan]]])
    value, grad = losses.mse(z, y, mask=np.array([[True, True, False]]))
    assert value == 2.5
    np.testing.assert_array_equal(grad.ravel(), [1, 2, 0])


def test_mae_worked_example():
    # d = [0, 2, -2, 0]; mean|d| = 1; grad = sign(d) / 4 (0 at d = 0, as torch)
    value, grad = losses.mae(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1, 0], [5, 4]]))
    assert value == 1.0
    np.testing.assert_array_equal(grad, [[0, 0.25], [-0.25, 0]])


def test_huber_worked_example():
    # d = [-0.5, -2, 3]; per = [0.5·0.25, 2 - 0.5, 3 - 0.5] = [0.125, 1.5, 2.5]
    # mean = 4.125 / 3 = 1.375; grad = clip(d, -1, 1) / 3; targets (B,) fit outputs (B, 1)
    value, grad = losses.huber(np.zeros((3, 1)), np.array([0.5, 2.0, -3.0]))
    assert value == pytest.approx(1.375, rel=1e-15)
    np.testing.assert_allclose(grad.ravel(), [-0.5 / 3, -1 / 3, 1 / 3], rtol=1e-15)


def test_huber_worked_example_delta_2():
    # delta = 2, d = [-0.5, -3, 5]: per = [0.125, 2 (3 - 1), 2 (5 - 1)] = [0.125, 4, 8];
    # mean = 12.125 / 3; grad = clip(d, -2, 2) / 3 = [-0.5, -2, 2] / 3
    value, grad = losses.huber(np.zeros((3, 1)), np.array([0.5, 3.0, -5.0]), delta=2.0)
    assert value == pytest.approx(12.125 / 3, rel=1e-15)
    np.testing.assert_allclose(grad.ravel(), [-0.5 / 3, -2 / 3, 2 / 3], rtol=1e-15)
    # continuous at |d| = delta, for a delta that is not 1
    for delta in (0.3, 2.5):
        inside, _ = losses.huber(np.zeros(1), np.array([delta * (1 - 1e-12)]), delta=delta)
        outside, _ = losses.huber(np.zeros(1), np.array([delta * (1 + 1e-12)]), delta=delta)
        assert inside == pytest.approx(outside, rel=1e-9) == pytest.approx(delta**2 / 2)


def test_cross_entropy_worked_example():
    # row 0: logits [0, 0], label 0: p = [1/2, 1/2], loss ln 2, d = [-1/2, 1/2]
    # row 1: logits [0, ln 3], label 1: p = [1/4, 3/4], loss -ln(3/4), d = [1/4, -1/4]
    # mean = (ln 2 - ln 0.75) / 2; grad rows / 2
    z = np.array([[0.0, 0.0], [0.0, np.log(3.0)]])
    value, grad = losses.cross_entropy(z, np.array([0, 1]))
    assert value == pytest.approx((np.log(2) - np.log(0.75)) / 2, rel=1e-15)
    np.testing.assert_allclose(grad, [[-0.25, 0.25], [0.125, -0.125]], rtol=1e-15)
    # the same targets one-hot give the same loss
    same = losses.cross_entropy(z, np.eye(2))
    assert same[0] == pytest.approx(value, rel=1e-15)
    np.testing.assert_allclose(same[1], grad, rtol=1e-15)


def test_binary_cross_entropy_worked_example():
    # z = 0, y = 1: loss ln 2, d = 1/2 - 1; z = ln 3 (sigmoid 3/4), y = 0: loss ln 4, d = 3/4
    # mean = 1.5 ln 2; grad = [-1/4, 3/8]
    value, grad = losses.binary_cross_entropy(np.array([[0.0], [np.log(3)]]), np.array([1, 0]))
    assert value == pytest.approx(1.5 * np.log(2), rel=1e-15)
    np.testing.assert_allclose(grad.ravel(), [-0.25, 0.375], rtol=1e-15)


def test_extreme_logits_are_finite():
    # p = [1, 0] exactly: loss = 2e4, grad = p - onehot(1) = [1, -1]
    value, grad = losses.cross_entropy(np.array([[1e4, -1e4]]), np.array([1]))
    assert value == 2e4
    np.testing.assert_array_equal(grad, [[1.0, -1.0]])
    value, grad = losses.cross_entropy(np.array([[1e4, -1e4]]), np.array([[0.0, 1.0]]))
    assert value == 2e4
    # (z, y) = (1e4, 0): 1e4, d = 1; (-1e4, 0): 0, d = 0; (1e4, 1): 0; (-1e4, 1): 1e4, d = -1
    z = np.array([1e4, -1e4, 1e4, -1e4])[:, None]
    value, grad = losses.binary_cross_entropy(z, np.array([0, 0, 1, 1]))
    assert value == 5e3
    np.testing.assert_array_equal(grad.ravel(), [0.25, 0, 0, -0.25])


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda f: f.__name__)
def test_float32_stays_float32(loss):
    z, y, mask = _case(loss, "masked", np.random.default_rng(2))
    v64, g64 = loss(z, y, mask)
    v32, g32 = loss(z.astype(np.float32), y, mask)
    assert g32.dtype == np.float32 and isinstance(v32, float)
    assert v32 == pytest.approx(v64, rel=1e-5)
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-6)


def test_label_errors():
    z = np.zeros((5, 5))
    with pytest.raises(ValueError, match="targets: label 7 at sample 3 is out of range for 5"):
        losses.cross_entropy(z, np.array([0, 1, 2, 7, 9]))
    with pytest.raises(ValueError, match="label -1 at sample 0"):
        losses.cross_entropy(z, np.array([-1, 1, 2, 3, 4]))
    with pytest.raises(ValueError, match=r"label 4 at sample \(1, 2\) is out of range for 3"):
        losses.cross_entropy(np.zeros((2, 3, 3)), np.array([[0, 1, 2], [0, 1, 4]]))
    with pytest.raises(ValueError, match=r"expected integer class labels, got 1\.5 at sample 1"):
        losses.cross_entropy(z[:2], np.array([0.0, 1.5]))
    # a padded step may hold any label (here -100, as torch's ignore_index)
    y = np.array([[0, 1, -100]])
    value, _ = losses.cross_entropy(np.zeros((1, 3, 2)), y, np.array([[1, 1, 0]]))
    assert value == pytest.approx(np.log(2), rel=1e-15)


def test_shape_and_value_errors():
    with pytest.raises(
        ValueError, match=r"targets: expected shape \(2, 3\) to match outputs, got \(3, 2\)"
    ):
        losses.mse(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"targets: expected labels of shape \(2,\)"):
        losses.cross_entropy(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"targets: expected finite values, got nan at \(1, 0\)"):
        losses.mse(np.zeros((2, 3)), np.array([[0, 0, 0], [np.nan, 0, 0]]))
    with pytest.raises(ValueError, match="targets: expected finite values, got inf"):
        losses.binary_cross_entropy(np.zeros((2, 1)), np.array([np.inf, 0]))
    with pytest.raises(ValueError, match=r"mask: expected shape \(2, 4\) \(B, T\)"):
        losses.mse(np.zeros((2, 4, 1)), np.zeros((2, 4, 1)), mask=np.ones((4, 2), bool))
    with pytest.raises(ValueError, match="mask: only for sequence outputs"):
        losses.mse(np.zeros((2, 1)), np.zeros((2, 1)), mask=np.ones((2, 1), bool))
    with pytest.raises(ValueError, match="mask: every step is masked"):
        losses.mse(np.zeros((2, 4, 1)), np.zeros((2, 4, 1)), mask=np.zeros((2, 4), bool))
    with pytest.raises(ValueError, match="delta: expected a number > 0"):
        losses.huber(np.zeros(2), np.zeros(2), delta=0)


def test_get_loss():
    assert losses.get_loss("MSE") is losses.mse
    assert losses.get_loss(losses.huber) is losses.huber
    with pytest.raises(ValueError, match="loss: unknown loss 'l2'; known losses: mse, mae, huber"):
        losses.get_loss("l2")


def test_accuracy():
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert metrics.accuracy(logits, np.array([0, 1, 1])) == pytest.approx(2 / 3)
    assert metrics.accuracy(logits, np.eye(2)[[0, 1, 1]]) == pytest.approx(2 / 3)
    assert metrics.accuracy(np.array([0, 1, 1]), np.array([0, 1, 0])) == pytest.approx(2 / 3)
    # binary logits: predicted 1 when the logit is > 0
    assert metrics.accuracy(np.array([[-1.0], [2.0]]), np.array([[0.0], [0.0]])) == 0.5
    # sequences: 3 unmasked steps, 2 of them right
    z = np.zeros((2, 2, 2))
    z[..., 1] = [[1, -1], [1, 1]]  # predicted labels [[1, 0], [1, 1]]
    y = np.array([[1, 1], [1, 0]])
    assert metrics.accuracy(z, y, mask=np.array([[1, 0], [1, 1]])) == pytest.approx(2 / 3)


def test_regression_metrics():
    p, t = np.array([1.0, 2.0, 4.0]), np.array([2.0, 2.0, 2.0])  # errors [-1, 0, 2]
    assert metrics.mse(p, t) == pytest.approx(5 / 3)
    assert metrics.rmse(p, t) == pytest.approx(np.sqrt(5 / 3))
    assert metrics.mae(p, t) == pytest.approx(1.0)
    assert metrics.mape(p, t) == pytest.approx(50.0)  # (50% + 0% + 100%) / 3
    # a zero target is excluded: only |3 - 2| / 2 counts
    assert metrics.mape(np.array([1.0, 3.0]), np.array([0.0, 2.0])) == pytest.approx(50.0)
    with pytest.raises(ValueError, match="every target is zero"):
        metrics.mape(np.ones(2), np.zeros(2))
    seq_p, seq_t = np.zeros((1, 3, 1)), np.array([[[1.0], [2.0], [100.0]]])
    assert metrics.mae(seq_p, seq_t, mask=np.array([[1, 1, 0]])) == pytest.approx(1.5)


def test_get_metric():
    assert metrics.get_metric("rmse") is metrics.rmse
    with pytest.raises(ValueError, match="metric: unknown metric 'r2'; known metrics: accuracy"):
        metrics.get_metric("r2")
