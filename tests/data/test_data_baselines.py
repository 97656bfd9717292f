"""Forecast, classification and character-model baselines on tiny known cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnkit.data import (
    majority_class,
    make_windows,
    persistence_forecast,
    seasonal_naive_forecast,
    unigram_bits_per_char,
)
from rnnkit.errors import DataError


def test_persistence():
    X, _ = make_windows(np.arange(6.0), window=3, horizon=2)
    assert persistence_forecast(X, horizon=2).tolist() == [[2, 2], [3, 3]]
    two = np.stack([np.arange(4.0), -np.arange(4.0)], axis=1)
    Xm, _ = make_windows(two, window=2)
    assert persistence_forecast(Xm, target_col=1).tolist() == [[-1], [-2]]


def test_seasonal_naive_repeats_last_season():
    season = np.tile([1.0, 2.0, 3.0], 4)  # period 3
    X, y = make_windows(season, window=6, horizon=4)
    pred = seasonal_naive_forecast(X, period=3, horizon=4)
    assert np.array_equal(pred, y)  # exact on a purely periodic series
    assert seasonal_naive_forecast(np.array([[5.0, 6.0, 7.0]]), 2, horizon=3).tolist() == [
        [6, 7, 6]
    ]
    with pytest.raises(DataError, match=r"expected 1 <= period <= window \(3\), got period 4"):
        seasonal_naive_forecast(np.zeros((1, 3)), 4)


def test_majority_class():
    assert majority_class(np.array([2, 1, 2, 0]), 3).tolist() == [2, 2, 2]
    assert majority_class(np.array([1, 0]), 1).tolist() == [0]  # tie: smallest label
    with pytest.raises(DataError, match="at least one training label"):
        majority_class(np.array([]), 2)


def test_unigram_bits_per_char():
    # train counts a:3 b:1 c:0, V=3 -> p = (4/7, 2/7, 1/7)
    bits = unigram_bits_per_char(np.array([0, 0, 0, 1]), np.array([0, 2]), 3)
    assert bits == pytest.approx(-(math.log2(4 / 7) + math.log2(1 / 7)) / 2)
    uniform = unigram_bits_per_char(np.array([], dtype=np.int64), np.arange(4), 4)
    assert uniform == pytest.approx(2.0)
    with pytest.raises(DataError, match=r"test_ids must lie in \[0, 3\), got 0..3"):
        unigram_bits_per_char(np.array([0]), np.array([0, 3]), 3)
