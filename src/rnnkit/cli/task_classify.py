"""Classifying labelled sequences (digits row by row, long-format CSV, ``.npz``, UCR).

The split is random but seeded (``--seed``); a UCR problem keeps its own train/test split.
Features are standardised with statistics from the training sequences only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import rnnkit as rk
from rnnkit.data import Scaler, Sequences, majority_class
from rnnkit.data import classify_scores as cs
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


def scores(model: rk.Sequential, meta: dict[str, Any], X: Any, y: np.ndarray,
           train: tuple[Any, np.ndarray] | None = None):
    """The model beside the majority class and (given the training data) 1-NN on the raw
    sequences and a logistic regression on summary features; the model's per-class report
    and the confusion matrix."""
    proba = np.asarray(model.predict_proba(X), np.float64)
    pred = proba.argmax(axis=-1)
    classes = meta["classes"]
    k = len(classes)
    majority = classes.index(meta["majority"])
    preds = {describe(model): pred, "majority class": np.full(len(y), majority)}
    if train is not None:
        Xtr, ytr = train
        same = isinstance(Xtr, np.ndarray) and isinstance(X, np.ndarray)
        if same and Xtr.shape[1:] == X.shape[1:]:  # 1-NN needs sequences of one length
            preds["1-NN (raw sequences)"] = cs.nearest_neighbour(Xtr, ytr, X)
        preds["logistic regression (summary features)"] = cs.logistic_regression(
            cs.summary_features(Xtr), ytr, cs.summary_features(X), k)
    table = {}
    for name, p in preds.items():
        r = cs.report(y, p, k)
        table[name] = {"accuracy": float(np.mean(p == y)), "macro_f1": r["macro_f1"],
                       "weighted_f1": r["weighted_f1"]}
    if k == 2 and len(np.unique(y)) == 2:
        table[describe(model)]["roc_auc"] = cs.roc_auc(y, proba[:, 1])
    return table, cs.confusion(y, pred, k), cs.report(y, pred, k)


def _results(table: dict, confusion: np.ndarray, per_class: dict, classes: list, what: str,
             n: int) -> dict[str, Any]:
    columns = ["accuracy", "macro_f1", "weighted_f1"]
    if any("roc_auc" in v for v in table.values()):
        columns.append("roc_auc")
    return {
        "task": "classify",
        "what": what,
        "n": n,
        "columns": columns,
        "scores": table,
        "rows": [[k, *(v.get(c) for c in columns)] for k, v in table.items()],
        "confusion": confusion.tolist(),
        "per_class": {"classes": [str(c) for c in classes], **per_class},
    }


def text(results: dict[str, Any]) -> list[str]:
    """Per-class precision, recall, F1 and support of the model, and its verdict."""
    from .common import table

    r = results["per_class"]
    rows = [[c, r["precision"][i], r["recall"][i], r["f1"][i], r["support"][i]]
            for i, c in enumerate(r["classes"])]
    rows += [["macro avg", r["macro_precision"], r["macro_recall"], r["macro_f1"], None],
             ["weighted avg", r["weighted_precision"], r["weighted_recall"], r["weighted_f1"],
              None]]
    names = list(results["scores"])
    model, best = names[0], max(names, key=lambda k: results["scores"][k]["accuracy"])
    lines = ["", "per class (model):", table(["class", "precision", "recall", "F1", "support"],
                                             rows)]
    if best != model:
        acc = results["scores"]
        lines.append(f"{model} LOSES to {best} on accuracy ({acc[model]['accuracy']:.4g} vs "
                     f"{acc[best]['accuracy']:.4g}).")
    return lines


def report(model: rk.Sequential, p: Prepared) -> dict[str, Any]:
    h = p.held_out
    table, confusion, per_class = scores(model, p.meta, h["X"], h["y"], train=(p.X, p.y))
    what = (
        f"{p.name}: classification of {len(h['y'])} held-out ({h['part']}) of "
        f"{h['n_all']} sequences, {len(p.meta['classes'])} classes"
    )
    return _results(table, confusion, per_class, p.meta["classes"], what, len(h["y"]))


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
    table, confusion, per_class = scores(model, meta, X, codes)
    return _results(table, confusion, per_class, meta["classes"],
                    f"{seqs.name}: all {len(codes)} sequences", len(codes))


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
        f"sequences (accuracy {acc:.3f}); rows sum to 1",
    )
    return [path.name]
