"""Classification reports and the baselines a sequence classifier should beat.

``report`` gives per-class precision, recall, F1 and support with macro and weighted averages
(scikit-learn's ``classification_report`` definitions; a class never predicted has precision 0),
``roc_auc`` the area under the ROC curve of a two-class score (the Mann-Whitney U statistic, ties
counted half). The baselines: 1-nearest-neighbour on the raw sequences (Euclidean, the
classic time-series benchmark; equal lengths only) and a multinomial logistic regression on
summary features of each sequence (mean, standard deviation, minimum, maximum, last value and
least-squares slope of every feature), which works for any lengths.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.errors import DataError


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """Counts ``(k, k)``: rows true class, columns predicted."""
    t, p = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def report(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> dict[str, Any]:
    """Per-class ``precision``, ``recall``, ``f1``, ``support`` (lists of ``k``), and
    ``macro``/``weighted`` averages of the three scores."""
    c = confusion(y_true, y_pred, k).astype(np.float64)
    tp, predicted, support = np.diag(c), c.sum(axis=0), c.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    s = precision + recall
    f1 = np.divide(2 * precision * recall, s, out=np.zeros(k), where=s > 0)
    w = support / max(support.sum(), 1)
    out: dict[str, Any] = {
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": support.astype(int).tolist(),
    }
    present = support > 0  # a class absent from y_true does not drag the macro average
    for name, v in (("precision", precision), ("recall", recall), ("f1", f1)):
        out[f"macro_{name}"] = float(v[present].mean()) if present.any() else 0.0
        out[f"weighted_{name}"] = float((v * w).sum())
    return out


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve for labels in {0, 1} and scores of class 1.

    Raises:
        DataError: only one class present.
    """
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, np.float64)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        raise DataError("roc_auc: needs both classes among the labels")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    for v in np.unique(s):  # ties share their average rank
        tie = s == v
        if tie.sum() > 1:
            ranks[tie] = ranks[tie].mean()
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def nearest_neighbour(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray,
                      chunk: int = 256) -> np.ndarray:
    """1-NN labels of ``X_test`` ``(M, T, F)`` among ``X_train`` ``(N, T, F)``, Euclidean
    distance on the flattened sequences (ties: the first training sequence)."""
    a = np.asarray(X_train, np.float64).reshape(len(X_train), -1)
    b = np.asarray(X_test, np.float64).reshape(len(X_test), -1)
    if a.shape[1] != b.shape[1]:
        raise DataError(f"nearest_neighbour: sequences of {a.shape[1]} and {b.shape[1]} values")
    sq = (a * a).sum(axis=1)
    out = np.empty(len(b), np.int64)
    for i in range(0, len(b), chunk):
        d = sq[None, :] - 2 * b[i : i + chunk] @ a.T  # |b|^2 is the same for every row
        out[i : i + chunk] = np.asarray(y_train)[d.argmin(axis=1)]
    return out


def summary_features(X: Any) -> np.ndarray:
    """``(N, 6 F)``: mean, std, min, max, last value and slope of each feature of each
    sequence; ``X`` is ``(N, T, F)`` or a list of ``(T_i, F)``."""
    rows = []
    for x in X:
        x = np.asarray(x, np.float64)
        t = np.arange(len(x)) - (len(x) - 1) / 2
        slope = (t @ x) / max(float(t @ t), 1e-12)
        rows.append(np.concatenate([x.mean(0), x.std(0), x.min(0), x.max(0), x[-1], slope]))
    return np.array(rows)


def logistic_regression(F_train: np.ndarray, y_train: np.ndarray, F_test: np.ndarray, k: int,
                        *, l2: float = 1e-3, steps: int = 500, lr: float = 0.5) -> np.ndarray:
    """Labels from a multinomial logistic regression (softmax, L2 penalty ``l2``) fitted by
    ``steps`` full-batch gradient steps on standardised features; deterministic."""
    mu, sd = F_train.mean(0), F_train.std(0)
    sd[sd == 0] = 1
    A, B = (F_train - mu) / sd, (F_test - mu) / sd
    W, b = np.zeros((A.shape[1], k)), np.zeros(k)
    Y = np.eye(k)[np.asarray(y_train, np.int64)]
    for _ in range(steps):
        z = A @ W + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - Y) / len(A)
        W -= lr * (A.T @ g + l2 * W)
        b -= lr * g.sum(0)
    return (B @ W + b).argmax(1)
