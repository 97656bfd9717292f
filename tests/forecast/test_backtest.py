"""Rolling-origin backtests: fold layout, no fold sees its future, baselines, statsmodels."""

import numpy as np
import pytest

from rnnkit.data.backtest import backtest, baselines, rolling_origins
from rnnkit.errors import DataError


def test_expanding_and_sliding_folds():
    folds = rolling_origins(20, horizon=3, folds=3, step=2)
    assert [(f.train.start, f.train.stop, f.test.start, f.test.stop) for f in folds] == [
        (0, 13, 13, 16), (0, 15, 15, 18), (0, 17, 17, 20)]
    sliding = rolling_origins(20, horizon=3, folds=3, step=2, scheme="sliding")
    assert [(f.train.start, f.train.stop) for f in sliding] == [(0, 13), (2, 15), (4, 17)]
    with pytest.raises(DataError, match="needs 22 rows; the series has 20"):
        rolling_origins(20, horizon=3, folds=3, step=2, min_train=15)


@pytest.mark.parametrize("scheme", ["expanding", "sliding"])
def test_no_fold_sees_its_future(scheme):
    """Values are their own row numbers: a forecaster that was handed any row at or after
    its origin would see a value >= the origin."""
    values = np.arange(40.0)[:, None] * np.ones((1, 2))  # target and one feature
    folds = rolling_origins(40, horizon=4, folds=4, step=3, scheme=scheme, min_train=10)
    seen = []

    def spy(history, H):
        seen.append(history.copy())
        history[:] = 1e9  # scribbling on its copy must not reach the data or other folds
        return np.zeros(H)

    out = backtest(values, folds, {"spy": spy})
    for f, h, rec in zip(folds, seen, out["folds"]):
        np.testing.assert_array_equal(h, values[f.train])
        assert h.max() < f.test.start == rec["test"][0]
        assert rec["actual"] == list(range(f.test.start, f.test.stop))
    assert values.max() == 39


def test_baselines_forecast_from_the_history():
    h = np.array([1.0, 5.0, 2.0, 6.0, 3.0, 7.0])[:, None]
    f = baselines(period=2)
    np.testing.assert_allclose(f["naive"](h, 3), [7, 7, 7])
    np.testing.assert_allclose(f["seasonal naive (2)"](h, 3), [3, 7, 3])
    np.testing.assert_allclose(f["drift"](h, 2), [7 + 1.2, 7 + 2.4])


def test_scores_average_over_folds_with_each_folds_own_scale():
    values = np.array([0.0, 1, 2, 3, 4, 5, 6, 8])  # naive MAE in sample: 1
    folds = rolling_origins(8, horizon=1, folds=2, min_train=3)  # origins 6, 7
    out = backtest(values, folds, baselines(None))
    # naive: fold 1 forecasts 5 for 6 (error 1), fold 2 forecasts 6 for 8 (error 2)
    assert [f["scores"]["naive"]["mae"] for f in out["folds"]] == [1.0, 2.0]
    assert out["overall"]["naive"]["mae"] == 1.5 and out["overall"]["naive"]["mase"] == 1.5


def test_ets_and_arima_baselines():
    """statsmodels' fits through ``baselines`` (seasonal ETS, non-seasonal ARIMA: a seasonal
    ARIMA fit takes seconds, too slow for the suite; docs/forecasting.md runs it)."""
    pytest.importorskip("statsmodels")
    t = np.arange(48)
    y = 10 + 0.5 * t + 3 * np.sin(2 * np.pi * t / 12)
    ets = baselines(12, classical=True)["ETS"](y[:36, None], 12)
    assert ets.shape == (12,) and np.abs(ets - y[36:]).mean() < 0.5
    walk = np.cumsum(np.random.default_rng(0).normal(0.5, 1, 30))
    arima = baselines(None, classical=True)["ARIMA"](walk[:, None], 3)
    assert arima.shape == (3,) and np.all(np.isfinite(arima))


def test_known_future_columns_only_at_the_test_rows():
    """Leakage: column 1 equals the target; declared known-future (``known=1``), a
    forecaster may read it at the test rows only: no other column, no later row."""
    values = np.arange(30.0)[:, None] * np.ones((1, 2))
    folds = rolling_origins(30, horizon=3, folds=2, step=3, min_train=10)
    seen = []

    def spy(history, H, future, labels):
        seen.append((history.copy(), future.copy(), labels))
        return np.zeros(H)

    spy.reads_future = True
    backtest(values, folds, {"spy": spy}, known=1, index=[str(2000 + i) for i in range(30)])
    for f, (h, fut, labels) in zip(folds, seen):
        assert h.max() < f.test.start
        assert np.isnan(fut[:, 0]).all()  # the target at the test rows: never given
        np.testing.assert_array_equal(fut[:, 1], values[f.test, 1])
        assert labels == [str(2000 + i) for i in range(f.test.stop)]


def test_two_targets_are_scored_each_and_together():
    t = np.arange(24.0)
    values = np.stack([t, 100 + 10 * (t % 2) + t], axis=1)  # another scale, a 2-cycle
    folds = rolling_origins(24, horizon=2, folds=2, min_train=6)
    out = backtest(values, folds, baselines(2, targets=2), period=2, targets=2)
    a, b = out["overall_per_target"]
    assert a["naive"]["mae"] == 1.5 and b["seasonal naive (2)"]["mae"] == 2.0
    assert b["naive"]["mae"] == 5.5  # 129 -> 120, 131: errors 9 and 2
    assert out["overall"]["naive"]["mase"] == pytest.approx((a["naive"]["mase"]
                                                             + b["naive"]["mase"]) / 2)
