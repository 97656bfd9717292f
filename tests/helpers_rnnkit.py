"""Shared test helpers (imported by test modules; conftest.py holds only fixtures)."""

import numpy as np

import rnnkit as rk


def sq_loss(out, y):
    """0.5 * sum((out - y)^2): a smooth loss with a simple exact gradient."""
    d = out - y
    return 0.5 * float(np.sum(d * d)), d


# Small models with the user metadata `rnnkit train` writes for each task (cli/metadata.py).
def forecast_model():
    model = rk.Sequential([rk.LSTM(3), rk.Dense(1)])
    model.build(1)
    return model, {"task": "forecast", "dataset": "sunspots", "source": "sunspots", "window": 4,
                   "horizon": 1, "target": "value", "features": [], "date": None,
                   "missing": "interpolate", "scaler": {"mean": [40.0], "scale": [30.0]},
                   "period": 11, "unit": "n", "last_index": "2008", "relative": False,
                   "trained": {"epochs": 1, "seconds": 0.5, "stop_reason": None,
                               "rnnkit": rk.__version__, "finished": "2026-01-01T00:00:00",
                               "settings": {"hidden": 3}}}


def classify_model():
    model = rk.Sequential([rk.GRU(3), rk.Dense(3)])
    model.build(2)
    return model, {"task": "classify", "dataset": "d", "source": "/data/d.csv",
                   "classes": ["a", "b", "c"], "majority": "b", "n_features": 2,
                   "features": ["x", "y"], "label": "label",
                   "scaler": {"mean": [0.0, 1.0], "scale": [1.0, 2.0]}}


def charlm_model():
    tokens = ["<unk>", "a", "b", " "]
    model = rk.Sequential([rk.Embedding(4, 2), rk.RNN(3, return_sequences=True), rk.Dense(4)])
    model.build(1)
    return model, {"task": "charlm", "dataset": "pydoc", "source": "pydoc", "seq_len": 5,
                   "vocab": {"level": "char", "tokens": tokens}, "unigram_counts": [0, 5, 3, 2]}


MAKERS = {"forecast": forecast_model, "classify": classify_model, "charlm": charlm_model}


def numeric_grad(fn, x, h=1e-6):
    """Central differences of the scalar ``fn(x)`` for every entry of ``x`` (changed in place
    and restored). The float-error settings are conftest's (every test raises)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = fn(x)
        x[i] = old - h
        down = fn(x)
        x[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad
