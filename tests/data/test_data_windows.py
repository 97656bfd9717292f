"""make_windows, chronological_split and Scaler on tiny hand-made series."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnkit.data import Scaler, chronological_split, make_windows
from rnnkit.errors import DataError


def test_windows_univariate_exact():
    X, y = make_windows(np.arange(6.0), window=3, horizon=2)
    assert X.shape == (2, 3, 1) and y.shape == (2, 2)
    assert X[..., 0].tolist() == [[0, 1, 2], [1, 2, 3]]
    assert y.tolist() == [[3, 4], [4, 5]]


def test_windows_multivariate_target_col():
    v = np.stack([np.arange(5.0), 10 * np.arange(5.0)], axis=1)  # (5, 2)
    X, y = make_windows(v, window=2, target_col=1)
    assert X.shape == (3, 2, 2) and y.tolist() == [[20], [30], [40]]
    assert X[2].tolist() == [[2, 20], [3, 30]]
    X[0, 0, 0] = 99.0  # a copy: the series is untouched
    assert v[0, 0] == 0.0


def test_windows_dtype():
    X, y = make_windows(np.arange(4, dtype=np.float32), window=2)
    assert X.dtype == np.float32 and y.dtype == np.float32
    assert make_windows(np.arange(4), window=2)[0].dtype == np.float64


def test_window_exactly_fits():
    X, y = make_windows(np.arange(4.0), window=3, horizon=1)
    assert X.shape == (1, 3, 1) and y.tolist() == [[3]]


@pytest.mark.parametrize(
    ("values", "kwargs", "match"),
    [
        (
            np.arange(5.0),
            {"window": 4, "horizon": 2},
            r"window \+ horizon = 4 \+ 2 = 6 is longer than the series \(5 rows\)",
        ),
        (np.arange(5.0), {"window": 0}, r"expected window >= 1, got 0"),
        (np.arange(5.0), {"window": 2, "horizon": 0}, r"expected horizon >= 1, got 0"),
        (np.zeros((5, 2)), {"window": 2, "target_col": 2}, r"target_col 2 is out of range"),
        (np.array([0, 1, np.nan, 3]), {"window": 2}, r"values\[2, 0\] is nan; fill missing"),
        (np.zeros((2, 2, 2)), {"window": 1}, r"expected values of shape \(N,\) or \(N, F\)"),
    ],
)
def test_window_errors(values, kwargs, match):
    with pytest.raises(DataError, match=match):
        make_windows(values, **kwargs)


def test_chronological_split():
    tr, va, te = chronological_split(10, val=0.1, test=0.2)
    assert (tr, va, te) == (slice(0, 7), slice(7, 8), slice(8, 10))
    assert chronological_split(10, val=0, test=0.3) == (slice(0, 7), slice(7, 7), slice(7, 10))
    with pytest.raises(DataError, match=r"the val part of n=3 rows is empty"):
        chronological_split(3, val=0.1, test=0.34)
    with pytest.raises(DataError, match=r"expected 0 <= test < 1, got 1.0"):
        chronological_split(10, test=1.0)
    with pytest.raises(DataError, match=r"the train part of n=10 rows is empty"):
        chronological_split(10, val=0.5, test=0.5 - 1e-9)


def test_scaler_fit_transform_inverse_and_json_round_trip():
    train = np.array([[1.0, 10.0], [3.0, 10.0]])
    s = Scaler().fit(train)
    assert s.mean_.tolist() == [2, 10] and s.scale_.tolist() == [1, 1]  # constant column: 1
    z = s.transform(np.array([[3.0, 12.0]]))
    assert z.tolist() == [[1, 2]]
    windows = np.ones((4, 3, 2))
    assert s.transform(windows).shape == (4, 3, 2)
    assert s.inverse_transform(z).tolist() == [[3, 12]]
    assert s.inverse_transform(np.array([[1.0, -1.0]]), column=0).tolist() == [[3, 1]]
    s2 = Scaler.from_dict(json.loads(json.dumps(s.to_dict())))
    assert np.array_equal(s2.mean_, s.mean_) and np.array_equal(s2.scale_, s.scale_)


def test_scaler_univariate():
    s = Scaler().fit(np.array([0.0, 2.0, 4.0, 6.0]))
    y = np.array([[4.0, 6.0]])  # forecasts (N, H) of the one column
    assert np.allclose(s.inverse_transform(s.transform(y, column=0), column=0), y)
    assert s.transform(np.array([3.0])).tolist() == [0.0]


def test_scaler_errors():
    with pytest.raises(DataError, match="Scaler is not fitted"):
        Scaler().transform(np.zeros(3))
    s = Scaler().fit(np.zeros((3, 2)))
    with pytest.raises(DataError, match=r"fitted on 2 column\(s\), got values of shape \(4, 3\)"):
        s.transform(np.zeros((4, 3)))
    with pytest.raises(DataError, match=r"column 5 is out of range"):
        s.transform(np.zeros(3), column=5)
    with pytest.raises(DataError, match=r"expected finite values"):
        Scaler().fit(np.array([1.0, np.nan]))
    with pytest.raises(DataError, match=r"expected lists 'mean' and 'scale'"):
        Scaler.from_dict({"mean": [0.0]})
    with pytest.raises(DataError, match=r"positive scales"):
        Scaler.from_dict({"mean": [0.0], "scale": [0.0]})
