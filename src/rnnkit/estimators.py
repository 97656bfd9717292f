"""scikit-learn estimators: ``RNNRegressor`` and ``RNNClassifier``.

They follow scikit-learn's contract (the constructor only stores hyperparameters, ``fit``
returns ``self``, learned attributes end in ``_``, ``get_params``/``set_params``, ``score``)
so they work inside ``Pipeline`` and ``GridSearchCV``. scikit-learn itself is optional: when
it is installed they subclass its ``BaseEstimator`` and mixins.

Inputs: ``X (N, T, D)`` sequences, a list of ``(T_i, D)`` arrays, or a 2-D ``X (N, T)``, read
as N univariate sequences of T steps — so that scikit-learn transformers that need 2-D tables
(``StandardScaler``, ``SelectKBest``) can sit in front of the estimator in a pipeline.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from .functional import softmax
from .layers import GRU, LSTM, RNN, Dense
from .model import Sequential
from .optim import get_optimizer

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils import check_array
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, column_or_1d
except ImportError:  # scikit-learn is an optional extra
    check_array = check_classification_targets = check_is_fitted = column_or_1d = None

    class BaseEstimator:  # type: ignore[no-redef]
        """The part of scikit-learn's BaseEstimator these estimators rely on."""

        def get_params(self, deep: bool = True) -> dict[str, Any]:
            names = [p for p in inspect.signature(type(self).__init__).parameters
                     if p != "self"]
            return {n: getattr(self, n) for n in names}

        def set_params(self, **params: Any):
            valid = self.get_params()
            for k, v in params.items():
                if k not in valid:
                    raise ValueError(f"{type(self).__name__}: invalid parameter {k!r}; valid: "
                                     f"{', '.join(valid)}")
                setattr(self, k, v)
            return self

    ClassifierMixin = RegressorMixin = object  # type: ignore[assignment,misc]

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


class _RNNEstimator(BaseEstimator):
    _loss = "mse"

    def __init__(self, cell: str = "lstm", hidden: int = 32, layers: int = 1,
                 bidirectional: bool = False, activation: str = "tanh", epochs: int = 20,
                 batch_size: int = 32, lr: float = 1e-2, optimizer: str = "adam",
                 clip_norm: float | None = 1.0, seed: int = 0, dtype: str = "float64") -> None:
        self.cell = cell
        self.hidden = hidden
        self.layers = layers
        self.bidirectional = bidirectional
        self.activation = activation
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.clip_norm = clip_norm
        self.seed = seed
        self.dtype = dtype

    def _sequences(self, X: Any, *, reset: bool) -> Any:
        """Check ``X`` (with scikit-learn's own messages when it is installed) and return
        sequences ``(N, T, D)`` or a list of ``(T_i, D)``; records/checks ``n_features_in_``
        (columns of a 2-D table, D of sequences)."""
        name = type(self).__name__
        if isinstance(X, list) and X and isinstance(X[0], np.ndarray) and X[0].ndim == 2:
            seqs, features = X, X[0].shape[1]
        else:
            if check_array is not None:
                arr = check_array(X, allow_nd=True, dtype=np.float64)
            else:
                arr = np.asarray(X, dtype=np.float64)
            if arr.ndim not in (2, 3):
                raise ValueError(f"{name}: X must be (N, T, D), (N, T) or a list of (T_i, D) "
                                 f"arrays, got shape {arr.shape}")
            seqs = arr[..., None] if arr.ndim == 2 else arr
            features = arr.shape[1] if arr.ndim == 2 else arr.shape[2]
        if reset:
            self.n_features_in_ = features
        elif features != self.n_features_in_:
            raise ValueError(f"X has {features} features, but {name} is expecting "
                             f"{self.n_features_in_} features as input.")
        return seqs

    def _targets(self, y: Any) -> np.ndarray:
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target "
                             "y is None")
        t = np.asarray(y)
        if t.dtype.kind == "f" and not np.all(np.isfinite(t)):
            i = int(np.argmax(~np.isfinite(t).reshape(len(t), -1).all(axis=1)))
            raise ValueError(f"{type(self).__name__}: y must be finite; sample {i} is "
                             f"{t[i]}")
        return t

    def _build(self, n_out: int) -> Sequential:
        if self.cell not in CELLS:
            raise ValueError(f"{type(self).__name__}: cell must be one of "
                             f"{', '.join(CELLS)}, got {self.cell!r}")
        if isinstance(self.layers, bool) or not isinstance(self.layers, int) or self.layers < 1:
            raise ValueError(f"{type(self).__name__}: layers must be a positive integer, got "
                             f"{self.layers!r}")
        stack = [CELLS[self.cell](self.hidden, activation=self.activation,
                                  bidirectional=self.bidirectional,
                                  return_sequences=i < self.layers - 1)
                 for i in range(self.layers)]
        return Sequential([*stack, Dense(n_out)], seed=self.seed, dtype=self.dtype)

    def _fit(self, seqs: Any, targets: np.ndarray, n_out: int):
        if len(seqs) != len(targets):
            raise ValueError(f"{type(self).__name__}: X has {len(seqs)} samples but y has "
                             f"{len(targets)}")
        self.model_ = self._build(n_out)
        self.history_ = self.model_.fit(
            seqs, targets, loss=self._loss,
            optimizer=get_optimizer(self.optimizer, lr=self.lr), epochs=self.epochs,
            batch_size=self.batch_size, clip_norm=self.clip_norm, seed=self.seed,
            distributed="off")  # one model per process: joblib workers are not MPI ranks
        return self

    def _outputs(self, X: Any) -> np.ndarray:
        if check_is_fitted is not None:
            check_is_fitted(self, "model_")
        elif not hasattr(self, "model_"):
            raise ValueError(f"This {type(self).__name__} instance is not fitted yet; call "
                             "'fit' first.")
        seqs = self._sequences(X, reset=False)
        return np.asarray(self.model_.predict(seqs), dtype=np.float64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


class RNNRegressor(RegressorMixin, _RNNEstimator):
    """A recurrent network regressor: the last step's hidden state through a ``Dense`` layer,
    trained with mean squared error. ``y`` is ``(N,)`` or ``(N, O)``."""

    _loss = "mse"

    def fit(self, X: Any, y: Any) -> RNNRegressor:
        seqs = self._sequences(X, reset=True)
        t = self._targets(y).astype(np.float64)
        if t.ndim not in (1, 2):
            raise ValueError(f"RNNRegressor: y must be (N,) or (N, O), got shape {t.shape}")
        self.n_outputs_ = 1 if t.ndim == 1 else t.shape[1]
        self._y_1d = t.ndim == 1
        return self._fit(seqs, t.reshape(len(t), -1), self.n_outputs_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def predict(self, X: Any) -> np.ndarray:
        out = self._outputs(X)
        return out[:, 0] if self._y_1d else out

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R² of the predictions, as scikit-learn regressors."""
        t = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        p = self.predict(X).reshape(len(t), -1)
        w = np.ones(len(t)) if sample_weight is None else np.asarray(sample_weight, float)
        ss_res = (w[:, None] * (t - p) ** 2).sum(axis=0)
        mean = np.average(t, axis=0, weights=w)
        ss_tot = (w[:, None] * (t - mean) ** 2).sum(axis=0)
        r2 = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), 0.0)
        return float(r2.mean())


class RNNClassifier(ClassifierMixin, _RNNEstimator):
    """A recurrent network classifier trained with cross-entropy; labels may be any values
    (``classes_`` holds them in sorted order)."""

    _loss = "cross_entropy"

    def fit(self, X: Any, y: Any) -> RNNClassifier:
        seqs = self._sequences(X, reset=True)
        labels = self._targets(y)
        if column_or_1d is not None:
            check_classification_targets(labels)
            labels = column_or_1d(labels, warn=True)
        if labels.ndim != 1:
            raise ValueError(f"RNNClassifier: y must be 1-D labels, got shape {labels.shape}")
        self.classes_, codes = np.unique(labels, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"RNNClassifier: y has 1 class ({self.classes_[0]!r}); need at "
                             "least 2 classes to learn anything")
        return self._fit(seqs, codes.astype(np.int64), len(self.classes_))

    def predict_proba(self, X: Any) -> np.ndarray:
        return softmax(self._outputs(X))

    def predict(self, X: Any) -> np.ndarray:
        z = self._outputs(X)
        return self.classes_[z.argmax(axis=1)]

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits ``(N, n_classes)``; for two classes, the positive class's margin ``(N,)``
        (logit 1 − logit 0), as scikit-learn's binary classifiers."""
        z = self._outputs(X)
        return z[:, 1] - z[:, 0] if z.shape[1] == 2 else z

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy (weighted by ``sample_weight`` if given)."""
        correct = self.predict(X) == np.asarray(y)
        return float(np.average(correct, weights=sample_weight))
