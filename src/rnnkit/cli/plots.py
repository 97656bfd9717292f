"""PNG plots of a run. Only the CLI imports this module, and only when it draws: the Agg
backend is chosen here (files, no display), never at ``import rnnkit``."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: render to files on machines without a display

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from rnnkit.fileio import write_atomic


def _save(fig: Any, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")  # tight: nothing cut off
    plt.close(fig)
    write_atomic(path, buf.getvalue())


def loss_curve(path: Path, history: list[dict[str, float]], loss: str, title: str) -> None:
    """Training and validation loss per epoch."""
    fig, ax = plt.subplots(figsize=(7, 4))
    epochs = [e["epoch"] for e in history]
    ax.plot(epochs, [e["loss"] for e in history], marker=".", label="training")
    if history and "val_loss" in history[0]:
        val = [e["val_loss"] for e in history]
        ax.plot(epochs, val, marker=".", label="validation")
        best = int(np.argmin(val))
        ax.axvline(
            epochs[best], color="gray", ls=":", label=f"best validation (epoch {epochs[best]})"
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel(loss)
    values = [e[k] for e in history for k in ("loss", "val_loss") if k in e]
    if values and min(values) > 0 and max(values) > 10 * min(values):
        ax.set_yscale("log")  # the loss fell by orders of magnitude: show all of it
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)  # beside, not over, data
    _save(fig, path)


def _time_axis(labels: list[str] | None, n: int) -> tuple[Any, str]:
    """Years as numbers, ISO dates as dates, anything else as row positions."""
    if labels:
        try:
            return np.array([int(v) for v in labels]), "year"
        except ValueError:
            pass
        try:
            return np.array(labels, dtype="datetime64[D]"), "date"
        except ValueError:
            pass
    return np.arange(n), "time step"


def forecast_vs_actual(
    path: Path,
    labels: list[str] | None,
    actual: np.ndarray,
    pred: np.ndarray,
    persistence: np.ndarray,
    *,
    model_name: str,
    ylabel: str,
    title: str,
    band: tuple | None = None,
) -> None:
    """The held-out span: what happened, the model's forecast and persistence's, and the
    model's interval ``band = (low, high, label)`` when it has one."""
    x, xlabel = _time_axis(labels, len(actual))
    fig, ax = plt.subplots(figsize=(9, 4))
    if band is not None:
        ax.fill_between(x, band[0], band[1], color="tab:blue", alpha=0.2, label=band[2])
    ax.plot(x, actual, color="black", lw=1.6, label="actual")
    ax.plot(x, pred, color="tab:blue", lw=1.4, label=f"{model_name} forecast")
    ax.plot(x, persistence, color="tab:gray", lw=1, ls="--", label="persistence (last value)")
    _finish(fig, ax, xlabel, ylabel, title)
    _save(fig, path)


def _finish(fig: Any, ax: Any, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)  # beside, not over, data
    if xlabel == "year":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no 1990.5
    if xlabel == "date":
        fig.autofmt_xdate()  # slanted dates do not overlap


def forecast_paths(
    path: Path,
    span: list[str] | None,
    actual: np.ndarray,
    pred: np.ndarray,
    band: tuple | None,
    *,
    model_name: str,
    ylabel: str,
    title: str,
    origins: int = 5,
) -> None:
    """Whole H-step forecast paths (with their interval) from a few origins spread over the
    held-out span, over what happened. ``actual``/``pred`` are ``(N, H)``, one row per origin
    in time order, row ``i`` covering span positions ``i .. i + H - 1``."""
    n, H = actual.shape
    truth = np.concatenate([actual[:, 0], actual[-1, 1:]])  # (N + H - 1,)
    x, xlabel = _time_axis(span if span and len(span) == len(truth) else None, len(truth))
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(x, truth, color="black", lw=1.6, label="actual")
    picks = np.unique(np.linspace(0, n - 1, min(origins, n)).round().astype(int))
    for j, i in enumerate(picks):
        xs = x[i : i + H]
        if band is not None:
            ax.fill_between(xs, band[0][i], band[1][i], color="tab:blue", alpha=0.15,
                            label=band[2] if j == 0 else None)
        ax.plot(xs, pred[i], color="tab:blue", lw=1.4, marker=".",
                label=f"{model_name} forecast paths" if j == 0 else None)
        ax.plot(xs[:1], pred[i][:1], "o", color="tab:blue", ms=4)
    _finish(fig, ax, xlabel, ylabel, title)
    _save(fig, path)


def error_by_step(path: Path, mae: dict[str, list[float]], *, ylabel: str, title: str) -> None:
    """Mean absolute error against the step ahead, one line per forecaster."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for j, (name, values) in enumerate(mae.items()):
        steps = np.arange(1, len(values) + 1)
        ax.plot(steps, values, marker=".", lw=2 if j == 0 else 1, ls="-" if j == 0 else "--",
                label=name)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _finish(fig, ax, "step ahead", ylabel, title)
    _save(fig, path)


def confusion_matrix(path: Path, counts: np.ndarray, classes: list[Any], title: str) -> None:
    """True (rows) against predicted (columns) classes, normalised so each row sums to 1 (a
    rare class is as visible as a common one); each cell shows the fraction and the count."""
    k = len(classes)
    totals = counts.sum(axis=1, keepdims=True)
    frac = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    size = min(4 + 0.5 * k, 12)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, label="fraction of the true class")
    if k <= 30:  # beyond that the numbers no longer fit in the cells
        names = [str(c) for c in classes]
        ax.set_xticks(range(k), names, rotation=90 if max(map(len, names)) > 3 else 0)
        ax.set_yticks(range(k), names)
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{frac[i, j]:.2f}\n({counts[i, j]})", ha="center", va="center",
                        fontsize=7, color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    _save(fig, path)


def backtest(path: Path, doc: dict[str, Any], target: np.ndarray, index: list[str] | None,
             *, title: str) -> None:
    """The series from a little before the first origin, and each fold's forecasts by the
    recurrent models and the best baseline (by MASE), one colour per forecaster."""
    folds = doc["folds"]
    start = max(0, folds[0]["test"][0] - 3 * (folds[0]["test"][1] - folds[0]["test"][0]))
    end = folds[-1]["test"][1]
    x, xlabel = _time_axis(index[start:end] if index else None, end - start)
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(x, target[start:end], color="black", lw=1.4, label="actual")
    baselines = [k for k in doc["overall"] if k not in doc["models"]]
    best = min(baselines, key=lambda k: doc["overall"][k]["mase"]) if baselines else None
    names = doc["models"] + ([best] if best else [])
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, name in enumerate(names):
        for i, f in enumerate(folds):
            xs = x[f["test"][0] - start : f["test"][1] - start]
            if name in f["quantiles"]:
                q = np.asarray(f["quantiles"][name])
                ax.fill_between(xs, q[:, 0], q[:, -1], color=colours[j % 10], alpha=0.15)
            ax.plot(xs, f["forecasts"][name], color=colours[j % 10], lw=1.3,
                    ls="-" if name in doc["models"] else "--",
                    label=(name if name in doc["models"] else f"{name} (best baseline)")
                    if i == 0 else None)
    for f in folds:
        ax.axvline(x[f["test"][0] - start], color="gray", lw=0.6, ls=":")
    _finish(fig, ax, xlabel, "", title)
    _save(fig, path)


def history_and_forecast(path: Any, series: Any, meta: dict[str, Any], labels: list[str],
                         pred: np.ndarray, quant: np.ndarray | None, *, title: str) -> None:
    """The last three windows of the series and the forecast ``(steps, K)`` past its end, with
    the outer interval of an interval model (``quant`` ``(steps, K, Q)``); one panel per
    target."""
    values = np.asarray(series.values, np.float64).reshape(len(series.values), -1)
    targets = meta.get("targets") or [meta["target"]]
    n = min(len(values), 3 * int(meta["window"]))
    index = series.index[-n:] if series.index else None
    steps = len(pred)
    x, xlabel = _time_axis([*index, *labels] if index else None, n + steps)
    if xlabel == "time step":
        x = np.arange(-n + 1, steps + 1)  # 0 = the last observed row
    fig, axes = plt.subplots(len(targets), 1, figsize=(9, 1 + 3 * len(targets)), squeeze=False,
                             sharex=True)
    unit = (meta.get("unit") or "") if len(targets) == 1 else ""
    for k, (ax, target) in enumerate(zip(axes[:, 0], targets)):
        ax.plot(x[:n], values[-n:, k], color="black", lw=1.4, label="history")
        if quant is not None and quant.shape[-1] >= 2:
            lv = meta["quantiles"]
            ax.fill_between(x[n:], quant[:, k, 0], quant[:, k, -1], color="tab:blue",
                            alpha=0.2, label=f"{lv[-1] - lv[0]:.0%} interval")
        ax.plot(x[n - 1 :], [values[-1, k], *pred[:, k]], color="tab:blue", lw=1.6,
                marker=".", label="forecast")
        last = k == len(targets) - 1
        _finish(fig, ax, xlabel if last else "", f"{target} ({unit})" if unit else target,
                title if k == 0 else "")
    _save(fig, Path(path))
