"""Windows with several targets and known-future covariates; calendar features; CSV future rows."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.data import read_series_csv
from rnnkit.data.covariates import calendar_features, calendar_names, calendar_unit
from rnnkit.data.covariates import forecast_windows as cw
from rnnkit.errors import DataError


def test_two_targets_are_target_major_and_match_make_windows():
    v = np.arange(30.0).reshape(10, 3)  # targets: columns 0 and 1, a past feature: column 2
    X, y = cw(v, window=3, horizon=2, targets=2)
    assert X.shape == (6, 3, 3) and y.shape == (6, 4)
    np.testing.assert_array_equal(X[1], v[1:4])
    np.testing.assert_array_equal(y[1], [v[4, 0], v[5, 0], v[4, 1], v[5, 1]])


def test_known_future_inputs_hold_no_value_past_the_origin():
    """Leakage: a past covariate equal to the future target, and a declared known-future one,
    both read from the same column. Changing any row at or after a window's origin must not
    change its inputs, except the known-future column at the forecast steps (declared)."""
    rng = np.random.default_rng(0)
    N, W, H = 20, 4, 3
    target = rng.normal(size=N)
    leak = np.roll(target, -1)  # row t holds the target of row t + 1
    values = np.stack([target, leak], axis=1)
    known = leak[:, None].copy()
    X, _ = cw(values, window=W, horizon=H, known=known)
    assert X.shape == (N - W - H + 1, W + H, 2 + 1 + 1)
    i = 5
    origin = i + W
    for r in range(origin, N):
        v2, k2 = values.copy(), known.copy()
        v2[r] += 100.0
        X2, _ = cw(v2, window=W, horizon=H, known=known)
        np.testing.assert_array_equal(X2[i], X[i])  # nothing of values past the origin
        k2[r] += 100.0
        X3, _ = cw(values, window=W, horizon=H, known=k2)
        changed = np.flatnonzero((X3[i] != X[i]).any(axis=1))
        expect = [W + r - origin] if r < origin + H else []
        assert changed.tolist() == expect  # the declared future row only, never later ones
    np.testing.assert_array_equal(X[i, W:, :2], 0.0)  # targets and past covariates unknown
    np.testing.assert_array_equal(X[i, :, -1], [0] * W + [1] * H)  # the future flag
    np.testing.assert_array_equal(X[i, W:, 2], known[origin : origin + H, 0])


def test_known_must_be_finite_and_as_long():
    v = np.arange(10.0)[:, None]
    with pytest.raises(DataError, match="known has 9 rows"):
        cw(v, window=2, horizon=1, known=np.zeros((9, 1)))
    k = np.zeros((10, 1))
    k[3] = np.nan
    with pytest.raises(DataError, match=r"known\[3, 0\]"):
        cw(v, window=2, horizon=1, known=k)
    with pytest.raises(DataError, match="targets <= 1"):
        cw(v, window=2, horizon=1, targets=2)


def test_calendar_features_by_frequency():
    months = ["2000-01", "2000-02", "2000-03", "2000-04"]
    assert calendar_unit(months, "x") == "month"
    c = calendar_features(months, "month")
    np.testing.assert_allclose(c[0], [0.0, 1.0], atol=1e-12)  # January
    np.testing.assert_allclose(c[3], [1.0, 0.0], atol=1e-12)  # April: a quarter turn
    days = ["2024-01-01", "2024-01-02", "2024-01-03"]  # Monday, Tuesday, Wednesday
    assert calendar_unit(days, "x") == "day"
    assert calendar_names("day") == ["day_of_week_sin", "day_of_week_cos", "day_of_year_sin",
                                     "day_of_year_cos"]
    d = calendar_features(days, "day")
    np.testing.assert_allclose(d[1, :2], [np.sin(2 * np.pi / 7), np.cos(2 * np.pi / 7)])
    iso_months = ["2000-01-01", "2000-02-01", "2000-03-01"]
    np.testing.assert_allclose(calendar_features(iso_months, "month"),
                               calendar_features(["2000-01", "2000-02", "2000-03"], "month"))
    with pytest.raises(DataError, match="yearly labels have no calendar"):
        calendar_unit(["1990", "1991", "1992"], "x")


def test_csv_with_two_targets_and_future_rows(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("date,a,b,promo\n2000-01,1,10,0\n2000-02,,11,1\n2000-03,3,12,0\n"
                 "2000-04,,,1\n2000-05,,,\n")
    s = read_series_csv(p, target=["a", "b"], features=["promo"], date="date",
                        future_rows=True)
    assert s.columns == ("a", "b", "promo") and s.values.shape == (3, 3)
    np.testing.assert_array_equal(s.values[:, 0], [1, 2, 3])  # an inner gap is filled
    assert s.future.shape == (2, 3) and s.future_index == ["2000-04", "2000-05"]
    assert s.future[0, 2] == 1 and np.isnan(s.future[1, 2])  # left as given: checked later
    s = read_series_csv(p, target=["a", "b"], date="date")
    assert s.values.shape == (5, 2) and s.future is None  # without future_rows: filled
