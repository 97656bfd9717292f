"""ReduceLROnPlateau in mode "max": a worked example of torch's rule, ``improved`` when
``metric > best * (1 + threshold)`` ("rel") or ``metric > best + threshold`` ("abs")."""

import pytest

import rnnkit as rk
from rnnkit.optim import ReduceLROnPlateau


@pytest.mark.parametrize("threshold_mode, metrics, lrs", [
    # rel, threshold 0.1: 1.05 is not above 1.0 * 1.1, so it is a bad epoch (patience 0:
    # halve); 1.2 is above 1.1: improved; 1.25 is not above 1.2 * 1.1 = 1.32: halve
    ("rel", [1.0, 1.05, 1.2, 1.25], [1.0, 0.5, 0.5, 0.25]),
    # abs, threshold 0.1: improved only above best + 0.1
    ("abs", [1.0, 1.05, 1.2, 1.25], [1.0, 0.5, 0.5, 0.25]),
    # a metric that falls is never an improvement in mode "max"
    ("rel", [1.0, 0.95, 0.99], [1.0, 0.5, 0.25]),
])
def test_plateau_mode_max(threshold_mode, metrics, lrs):
    opt = rk.SGD(1.0)
    schedule = ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=0, threshold=0.1,
                                 threshold_mode=threshold_mode)
    seen = []
    for m in metrics:
        schedule.step(m)
        seen.append(opt.lr)
    assert seen == lrs
