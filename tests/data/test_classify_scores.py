"""Classification report, ROC AUC and the sequence baselines against scikit-learn."""

import numpy as np
import pytest

from rnnkit.data import classify_scores as cs
from rnnkit.errors import DataError

sk = pytest.importorskip("sklearn.metrics")


def test_report_matches_scikit_learn():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    p[p == 3] = 2  # class 3 is never predicted: precision 0, as scikit-learn's zero_division=0
    r = cs.report(y, p, 4)
    prec, rec, f1, sup = sk.precision_recall_fscore_support(y, p, labels=range(4),
                                                            zero_division=0)
    np.testing.assert_allclose(r["precision"], prec, rtol=1e-12)
    np.testing.assert_allclose(r["recall"], rec, rtol=1e-12)
    np.testing.assert_allclose(r["f1"], f1, rtol=1e-12)
    assert r["support"] == sup.tolist()
    for avg in ("macro", "weighted"):
        assert r[f"{avg}_f1"] == pytest.approx(
            sk.f1_score(y, p, average=avg, zero_division=0), rel=1e-12)


def test_roc_auc_matches_scikit_learn_with_ties():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    score = np.round(rng.normal(y * 0.8, 1), 1)  # rounding makes ties
    assert cs.roc_auc(y, score) == pytest.approx(sk.roc_auc_score(y, score), rel=1e-12)
    with pytest.raises(DataError, match="both classes"):
        cs.roc_auc(np.ones(3), np.arange(3.0))


def test_nearest_neighbour_matches_scikit_learn():
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(2)
    Xtr, ytr = rng.normal(size=(60, 7, 2)), rng.integers(0, 3, 60)
    Xte = rng.normal(size=(25, 7, 2))
    ref = KNeighborsClassifier(1).fit(Xtr.reshape(60, -1), ytr).predict(Xte.reshape(25, -1))
    np.testing.assert_array_equal(cs.nearest_neighbour(Xtr, ytr, Xte, chunk=10), ref)


def test_summary_logistic_regression_separates_rising_from_falling():
    rng = np.random.default_rng(3)
    X = [np.cumsum(rng.normal(0.3 if i % 2 else -0.3, 0.2, (5 + i % 4, 1)), 0)
         for i in range(80)]
    y = np.arange(80) % 2
    F = cs.summary_features(X)
    assert F.shape == (80, 6)
    pred = cs.logistic_regression(F[:60], y[:60], F[60:], 2)
    assert np.mean(pred == y[60:]) >= 0.95
