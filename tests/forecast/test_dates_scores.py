"""Dates (parse, order, frequency, continuation), point scores and the drift baseline."""

import numpy as np
import pytest

from rnnkit.data.baselines import drift_forecast
from rnnkit.data.dates import continue_labels, detect_period, frequency
from rnnkit.data.scores import naive_scale, per_step, point_scores, smape
from rnnkit.errors import DataError


@pytest.mark.parametrize(
    ("index", "expected", "period"),
    [
        (["1998", "1999", "2000"], ["2001", "2002"], None),
        (["1960-11", "1960-12"] * 1, ["1961-01", "1961-02"], None),
        (["1999Q3", "1999Q4", "2000Q1"], ["2000Q2", "2000Q3"], 4),
        (["1999-Q4", "2000-Q1", "2000-Q2"], ["2000-Q3", "2000-Q4"], 4),
        (["2000-01-31", "2000-02-29", "2000-03-31"], ["2000-04-30", "2000-05-31"], 12),
        (["2001-12-15", "2001-12-22", "2001-12-29"], ["2002-01-05", "2002-01-12"], 52),
        (["2001-02-27", "2001-02-28", "2001-03-01"], ["2001-03-02", "2001-03-03"], 7),
    ],
)
def test_dates_continue_in_their_own_form(index, expected, period):
    assert continue_labels(index, 2) == expected
    assert detect_period(index) == period or len(index) < 3


def test_monthly_iso_dates_keep_their_day_clipped_to_the_month():
    assert continue_labels(["2000-11-30", "2000-12-30", "2001-01-30"], 2) == [
        "2001-02-28",
        "2001-03-30",
    ]


def test_dates_must_increase_and_parse():
    with pytest.raises(DataError, match=r"row 3 \('1999'\) does not come after row 2"):
        frequency(["1998", "2000", "1999"])
    with pytest.raises(DataError, match=r"expected a year .* an ISO date"):
        frequency(["2000-01-01", "soon"])
    with pytest.raises(DataError, match="mixed date forms"):
        frequency(["1999", "2000-01"])


def test_point_scores_worked_example():
    # errors [1, -1, 2, 0]: MAE 1, RMSE sqrt(6/4), MASE 1 / 0.5
    pred, actual = np.array([[2.0, 1.0], [5.0, 4.0]]), np.array([[1.0, 2.0], [3.0, 4.0]])
    s = point_scores(pred, actual, scale=0.5)
    assert s["mae"] == 1.0 and s["mase"] == 2.0 and s["rmse"] == pytest.approx(np.sqrt(1.5))
    # sMAPE: 2|f-y|/(|f|+|y|): 2/3, 2/3, 4/8, 0 -> mean 11/24, in percent
    assert s["smape"] == pytest.approx(100 * (2 / 3 + 2 / 3 + 0.5) / 4)
    assert smape(np.zeros(2), np.zeros(2)) == 0.0
    assert per_step(pred, actual) == {"mae": [1.5, 0.5], "rmse": [np.sqrt(2.5), np.sqrt(0.5)]}


def test_naive_scale_is_the_in_sample_seasonal_naive_mae():
    h = np.array([1.0, 2.0, 4.0, 7.0])
    assert naive_scale(h, 1) == pytest.approx((1 + 2 + 3) / 3)
    assert naive_scale(h, 2) == pytest.approx((3 + 5) / 2)
    with pytest.raises(DataError, match="more than period=4 values"):
        naive_scale(h, 4)
    with pytest.raises(DataError, match="do not change"):
        naive_scale(np.ones(5), 1)


def test_drift_extends_the_line_from_first_to_last():
    # slope (7 - 1) / 3 = 2: 9, 11, 13
    np.testing.assert_allclose(drift_forecast(np.array([[1.0, 2.0, 4.0, 7.0]]), 3),
                               [[9.0, 11.0, 13.0]])
