"""Values that three planted one-line bugs changed without any test noticing (issue 21 F):
RMSE without its square root, early stopping counting an equal value as an improvement, and
the Gaussian NLL's quadratic term doubled in the value (its gradient untouched)."""

import math
from types import SimpleNamespace

import numpy as np

from rnnkit.callbacks import EarlyStopping
from rnnkit.losses import gaussian_nll
from rnnkit.metrics import rmse


def test_rmse_is_the_root_of_the_mean_square():
    assert rmse(np.array([3.0, 0.0]), np.array([0.0, 4.0])) == math.sqrt(12.5)


def test_early_stopping_does_not_count_an_equal_value_as_an_improvement():
    stopper = EarlyStopping(patience=2, restore_best=False)
    trainer = SimpleNamespace(stop=None, model=None)
    stopper.on_train_begin(trainer)
    for epoch, value in enumerate([1.0, 1.0, 1.0]):
        stopper.on_epoch_end(trainer, epoch, {"val_loss": value})
        if trainer.stop:
            break
    assert epoch == 2 and stopper.best_epoch == 0
    assert "best at epoch 1" in trainer.stop


def test_gaussian_nll_value_is_the_normal_log_density():
    mu, s, y = np.array([0.3, -1.0]), np.array([0.2, -0.5]), np.array([1.1, -0.4])
    sigma = np.log1p(np.exp(s)) + 1e-6
    expected = -np.mean(-0.5 * np.log(2 * np.pi * sigma**2) - (y - mu) ** 2 / (2 * sigma**2))
    value, _ = gaussian_nll(np.concatenate([mu, s])[None], y[None])
    assert abs(value - expected) < 1e-12
