"""scikit-learn estimators: the estimator checks, pipelines and grid search."""

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

from rnnkit.estimators import RNNClassifier, RNNRegressor  # noqa: E402


@pytest.mark.parametrize("est", [RNNRegressor(cell="gru", hidden=16, epochs=60),
                                 RNNClassifier(cell="gru", hidden=8, epochs=30)],
                         ids=["regressor", "classifier"])
def test_scikit_learn_estimator_checks(est):
    # tabular checks read each 2-D row as a univariate sequence; all of them apply and pass
    results = check_estimator(est, on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results
              if r["status"] == "failed"]
    assert len(results) > 40 and not failed


def sequences(n=120, T=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, T, 2))
    return X, X[:, :3, 0].sum(axis=1)


def test_regressor_on_3d_sequences_learns_and_scores():
    X, y = sequences()
    est = RNNRegressor(cell="lstm", hidden=12, epochs=40, lr=1e-2)
    assert est.fit(X, y) is est
    assert est.n_features_in_ == 2 and est.n_outputs_ == 1
    assert est.predict(X).shape == (120,)
    assert est.score(X, y) > 0.8
    assert len(est.history_) == 40


def test_classifier_keeps_label_values_and_variable_lengths():
    X, y = sequences()
    labels = np.where(y > 0, "up", "down")
    seqs = [x[: 5 + i % 5] for i, x in enumerate(X)]
    est = RNNClassifier(cell="gru", hidden=8, epochs=25).fit(seqs, labels)
    assert list(est.classes_) == ["down", "up"]
    assert set(est.predict(seqs)) <= {"down", "up"}
    np.testing.assert_allclose(est.predict_proba(seqs).sum(axis=1), 1, rtol=1e-12)
    assert est.score(seqs, labels) > 0.8


def test_pipeline_and_grid_search():
    X, y = sequences(n=90)
    pipe = make_pipeline(StandardScaler(), RNNRegressor(hidden=6, epochs=5))
    pipe.fit(X[:, :, 0], y)  # 2-D: 90 univariate sequences of 10 steps
    assert pipe.predict(X[:, :, 0]).shape == (90,)
    search = GridSearchCV(RNNRegressor(epochs=3), {"hidden": [4, 8], "cell": ["rnn", "gru"]},
                          cv=2)
    search.fit(X, y)  # 3-D input goes through the folds unchanged
    assert search.best_params_["hidden"] in (4, 8)
    assert RNNRegressor().set_params(hidden=5).get_params()["hidden"] == 5


def test_bad_settings_are_reported():
    X, y = sequences(n=10)
    with pytest.raises(ValueError, match="cell must be one of"):
        RNNRegressor(cell="transformer").fit(X, y)
    with pytest.raises(ValueError, match="1 class"):
        RNNClassifier().fit(X, np.zeros(10))
    with pytest.raises(ValueError, match="expecting 2 features"):
        RNNRegressor(epochs=1).fit(X, y).predict(X[:, :, :1])
