"""Classifying labelled sequences (digits row by row, long-format CSV, ``.npz``, UCR).

The split is random but seeded (``--seed``); a UCR problem keeps its own train/test split.
Features are standardised with statistics from the training sequences only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import rnnkit as rk
from rnnkit.data import Scaler, Sequences, majority_class
from rnnkit.errors import DataError

from .prepared import Prepared, describe
from .settings import Settings


def _take(X: Any, idx: np.ndarray) -> Any:
    return X[idx] if isinstance(X, np.ndarray) else [X[i] for i in idx]


def _scale(scaler: Scaler, X: Any) -> Any:
    if isinstance(X, np.ndarray):
        return scaler.transform(X)
    return [scaler.transform(x) for x in X]


def _steps(X: Any) -> np.ndarray:
    """Every time step of every sequence as rows ``(sum T_i, F)``."""
    if isinstance(X, np.ndarray):
        return X.reshape(-1, X.shape[-1])
    return np.concatenate(X)


def prepare(seqs: Sequences, s: Settings, name: str) -> Prepared:
    n = len(seqs.y)
    rng = np.random.default_rng(s.seed)
    if seqs.n_train:  # the archive's own split is the one results are compared on
        train_idx, test_idx = rng.permutation(seqs.n_train), np.arange(seqs.n_train, n)
    else:
        perm = rng.permutation(n)
        n_test = round(n * s.test)
        train_idx, test_idx = perm[n_test:], perm[:n_test]
    n_val = round(n * s.val)
    val_idx, train_idx = train_idx[:n_val], train_idx[n_val:]
    if len(train_idx) == 0:
        raise DataError(f"{name}: no training sequences left out of {n}; lower --val/--test")
    train_classes = np.unique(seqs.y[train_idx])
    if len(train_classes) < 2:
        raise DataError(
            f"{name}: the training part has a single class "
            f"({seqs.classes[train_classes[0]]!r}); a classifier needs two or more"
        )
    held = test_idx if len(test_idx) else val_idx
    if len(held) == 0:
        raise DataError(f"{name}: nothing held out to test on; use --test or --val above 0")
    Xtr = _take(seqs.X, train_idx)
    scaler = Scaler().fit(_steps(Xtr))
    majority = int(majority_class(seqs.y[train_idx], 1)[0])
    classes = seqs.classes.tolist()
    meta = {
        "task": "classify",
        "dataset": name,
        "classes": classes,
        "scaler": scaler.to_dict(),
        "features": list(seqs.features),
        "label": s.target or "label",
        "majority": classes[majority],
        "n_features": int(_steps(Xtr).shape[1]),
    }
    val = (_scale(scaler, _take(seqs.X, val_idx)), seqs.y[val_idx]) if len(val_idx) else None
    return Prepared(
        "classify",
        name,
        _scale(scaler, Xtr),
        seqs.y[train_idx],
        val,
        "cross_entropy",
        "accuracy",
        len(classes),
        meta,
        held_out={
            "X": _scale(scaler, _take(seqs.X, held)),
            "y": seqs.y[held],
            "part": "test" if len(test_idx) else "val",
            "n_all": n,
        },
    )


def scores(model: rk.Sequential, meta: dict[str, Any], X: Any, y: np.ndarray):
    """Accuracy of the model and of the majority class, and the confusion matrix."""
    pred = np.asarray(model.predict(X)).argmax(axis=-1)
    classes = meta["classes"]
    majority = classes.index(meta["majority"])
    k = len(classes)
    confusion = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)  # rows: true
    table = {
        describe(model): {"accuracy": float(np.mean(pred == y))},
        "majority class": {"accuracy": float(np.mean(y == majority))},
    }
    return table, confusion


def _results(table: dict, confusion: np.ndarray, what: str, n: int) -> dict[str, Any]:
    return {
        "task": "classify",
        "what": what,
        "n": n,
        "columns": ["accuracy"],
        "scores": table,
        "rows": [[k, v["accuracy"]] for k, v in table.items()],
        "confusion": confusion.tolist(),
    }


def report(model: rk.Sequential, p: Prepared) -> dict[str, Any]:
    h = p.held_out
    table, confusion = scores(model, p.meta, h["X"], h["y"])
    what = (
        f"{p.name}: classification of {len(h['y'])} held-out ({h['part']}) of "
        f"{h['n_all']} sequences, {len(p.meta['classes'])} classes"
    )
    return _results(table, confusion, what, len(h["y"]))


def evaluate(model: rk.Sequential, meta: dict[str, Any], seqs: Sequences) -> dict[str, Any]:
    """Accuracy on every sequence of ``seqs``, labels matched to the model's classes."""
    known = {str(c): i for i, c in enumerate(meta["classes"])}
    unknown = sorted({str(c) for c in seqs.classes.tolist()} - set(known))
    if unknown:
        raise DataError(
            f"{seqs.name}: labels {unknown} are not among the model's classes {meta['classes']}"
        )
    codes = np.array([known[str(c)] for c in seqs.classes.tolist()])[seqs.y]
    X = _scale(Scaler.from_dict(meta["scaler"]), seqs.X)
    table, confusion = scores(model, meta, X, codes)
    return _results(table, confusion, f"{seqs.name}: all {len(codes)} sequences", len(codes))


def predict_labels(model: rk.Sequential, meta: dict[str, Any], seqs: Sequences):
    """``(labels, probabilities of those labels)`` for every sequence."""
    X = _scale(Scaler.from_dict(meta["scaler"]), seqs.X)
    proba = np.asarray(model.predict_proba(X), np.float64)
    best = proba.argmax(axis=-1)
    return [meta["classes"][i] for i in best], proba[np.arange(len(best)), best]


def plots(model: rk.Sequential, p: Prepared, results: dict[str, Any], out: Any) -> list[str]:
    from . import plots as pl

    path = out / "confusion.png"
    acc = results["rows"][0][1]
    pl.confusion_matrix(
        path,
        np.array(results["confusion"]),
        p.meta["classes"],
        title=f"{p.name}: {describe(model)} on {results['n']} held-out "
        f"sequences (accuracy {acc:.3f})",
    )
    return [path.name]
