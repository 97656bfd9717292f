"""Windows cut on demand equal the copied windows, and block sums equal NumPy's, bit for bit."""

import numpy as np
import pytest

from rnnkit.data import Scaler
from rnnkit.data.covariates import forecast_windows
from rnnkit.data.scores import naive_scale
from rnnkit.data.series_windows import SeriesWindows, WindowRows, column_sum


def copied(values, scaler, W, H, K, P, known, rel, first):
    """The windows as forecasting copied them: the whole series scaled, then windowed."""
    X, y = forecast_windows(scaler.transform(values)[:, :P], window=W, horizon=H, targets=K,
                            known=known)
    if not rel and not first:
        return X, y, X, y
    Xm, ym = X.copy(), y
    if rel:  # as task_forecast computed them before windows were cut on demand
        Xm[:, :W, :K] -= X[:, W - 1 : W, :K]
        ym = y - np.repeat(X[:, W - 1, :K], H, axis=1)
    if first:
        ym = ym.reshape(len(ym), K, H)[:, :, 0]
    return Xm, ym, X, y


@pytest.mark.parametrize("K, P, H, with_known, rel, first", [
    (1, 1, 1, False, False, False),
    (2, 3, 3, False, True, False),
    (1, 2, 2, True, True, False),
    (1, 1, 3, False, True, True),
])
def test_windows_cut_on_demand_equal_the_copied_ones(K, P, H, with_known, rel, first):
    r = np.random.default_rng(0)
    values = r.normal(size=(40, P + 1)) * [1, 10, 100, 5][: P + 1] + 3  # the last: unread
    scaler = Scaler().fit(values[:30])
    known = r.normal(size=(40, 2)) if with_known else None
    W = 5
    src = SeriesWindows(values, scaler.mean_, scaler.scale_, window=W, horizon=H, targets=K,
                        inputs=P, known=known, relative=rel, first_step=first)
    Xm, ym, X, y = copied(values, scaler, W, H, K, P, known, rel, first)
    assert src.count == len(X)
    lo, hi = 3, len(X) - 2
    for got, want in ((src.rows(lo, hi, "X"), Xm), (src.rows(lo, hi, "y"), ym),
                      (src.rows(lo, hi, "X", model=False), X),
                      (src.rows(lo, hi, "y", model=False), y)):
        part = want[lo:hi]
        assert got.shape == part.shape and len(got) == len(part) and got.ndim == part.ndim
        np.testing.assert_array_equal(np.asarray(got), part, strict=True)
        idx = np.array([4, 0, 4, len(part) - 1])  # a shuffled batch, a repeat
        np.testing.assert_array_equal(got[idx], part[idx], strict=True)
        np.testing.assert_array_equal(got[-1], part[-1], strict=True)
        assert isinstance(got[2:9], WindowRows)  # a slice stays lazy, as a memory map's
        np.testing.assert_array_equal(np.asarray(got[2:9][1:3]), part[2:9][1:3], strict=True)
        np.testing.assert_array_equal(got[:, 0], part[:, 0], strict=True)
        np.testing.assert_array_equal(got[idx[:0]], part[:0], strict=True)  # an empty share
    assert len(src.rows(7, 7, "X")) == 0


@pytest.mark.parametrize("F", [1, 3])
def test_scaler_and_mase_scale_summed_in_blocks_equal_numpy(F):
    n = 150_001  # above the block: summed as NumPy sums (pairwise for one column)
    v = np.random.default_rng(F).normal(size=(n, F)) * 1e3 + 7
    s = Scaler().fit(v)
    np.testing.assert_array_equal(s.mean_, v.mean(axis=0), strict=True)
    np.testing.assert_array_equal(s.scale_, v.std(axis=0), strict=True)
    assert naive_scale(v[:, 0], 7) == float(np.mean(np.abs(v[7:, 0] - v[:-7, 0])))
    parts = column_sum(lambda lo, hi: v[lo:hi], n, F == 1, rows=4096)
    np.testing.assert_array_equal(parts, np.add.reduce(v, axis=0), strict=True)


def test_a_value_too_large_in_a_later_block_is_named_by_its_row():
    v = np.zeros((70_000, 2))
    v[69_999, 1] = 1e200
    with pytest.raises(Exception, match=r"row 69999, column 1"):
        Scaler().fit(v)
