"""Forecasting a series: windows, a chronological split, baselines, recursive forecasts.

The series is split by time *before* windowing (test = its last ``--test`` fraction of rows)
and the scaler learns from the training rows only, so nothing from the future leaks into
training. A window belongs to the part its first target row lies in; a training window whose
targets reach into the validation rows is dropped (possible when ``--horizon > 1``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import rnnkit as rk
from rnnkit.data import (
    Scaler,
    Series,
    chronological_split,
    make_windows,
    persistence_forecast,
    seasonal_naive_forecast,
)
from rnnkit.errors import DataError

from .prepared import Prepared, describe
from .settings import Settings


def prepare(series: Series, s: Settings, name: str) -> Prepared:
    values = series.values.reshape(len(series.values), -1)  # (N, F), target in column 0
    n = len(values)
    W = s.window or (2 * series.period if series.period else 12)
    H = s.horizon
    tr, va, te = chronological_split(n, val=s.val, test=s.test)
    if tr.stop < W + H:
        raise DataError(
            f"{name}: --window {W} plus --horizon {H} needs at least {W + H} training rows, "
            f"but the series has {n} rows of which {tr.stop} train; use a smaller --window"
        )
    scaler = Scaler().fit(values[tr])
    X, y = make_windows(scaler.transform(values), window=W, horizon=H)  # (M, W, F), (M, H)
    first = np.arange(len(X)) + W  # the row of each window's first target
    last = first + H - 1
    parts = {
        "train": last < tr.stop,
        "val": (first >= va.start) & (last < va.stop),
        "test": first >= te.start,
    }
    if s.test > 0 and not parts["test"].any():
        raise DataError(
            f"{name}: no test window: the test part ({n - te.start} rows) is "
            f"shorter than --horizon {H}"
        )
    held = "test" if parts["test"].any() else "val"
    if not parts[held].any():
        raise DataError(f"{name}: nothing held out to test on; use --test or --val above 0")
    index = series.index
    meta = {
        "task": "forecast",
        "dataset": name,
        "window": W,
        "horizon": H,
        "target": s.target or series.columns[0],
        "features": list(series.columns[1:]),
        "date": s.date,
        "missing": series.missing_rule,
        "scaler": scaler.to_dict(),
        "period": series.period,
        "unit": series.unit,
        "last_index": None if index is None else index[-1],
    }
    meta["relative"] = s.relative
    Xm, ym = (_relative(X), y - X[:, -1:, 0]) if s.relative else (X, y)
    val = (Xm[parts["val"]], ym[parts["val"]]) if parts["val"].any() else None
    rows = first[parts[held]]
    return Prepared(
        "forecast",
        name,
        Xm[parts["train"]],
        ym[parts["train"]],
        val,
        "mse",
        "rmse",
        H,
        meta,
        held_out={
            "X": X[parts[held]],
            "y": y[parts[held]],
            "part": held,
            "labels": _labels(index, rows),
            "n_rows": n,
        },
    )


def _relative(X: np.ndarray) -> np.ndarray:
    """The target column as change from the window's last value: the model then learns the
    shape of the recent past, not its level, and a trend cannot take it out of range."""
    out = X.copy()
    out[:, :, 0] -= X[:, -1:, 0]
    return out


def model_forecast(model: rk.Sequential, meta: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """The model's forecasts ``(N, H)`` in scaled units, for windows ``X`` ``(N, W, F)``."""
    if not meta.get("relative"):
        return np.asarray(model.predict(X), np.float64)
    return np.asarray(model.predict(_relative(X)), np.float64) + X[:, -1:, 0]


def _labels(index: list[str] | None, rows: np.ndarray) -> list[str] | None:
    return None if index is None else [index[r] for r in rows]


def scores(
    model: rk.Sequential, meta: dict[str, Any], X: np.ndarray, y: np.ndarray
) -> dict[str, Any]:
    """RMSE and MAE in original units of the model and the naive baselines on windows."""
    scaler = Scaler.from_dict(meta["scaler"])
    actual = scaler.inverse_transform(y, column=0)  # (N, H)
    pred = scaler.inverse_transform(model_forecast(model, meta, X), column=0)
    past = scaler.inverse_transform(X[:, :, 0], column=0)  # (N, W)
    H, period = meta["horizon"], meta.get("period")
    forecasts = {describe(model): pred, "persistence": persistence_forecast(past, H)}
    if period and period <= past.shape[1]:
        forecasts[f"seasonal naive ({period})"] = seasonal_naive_forecast(past, period, H)
    table = {
        k: {
            "rmse": float(np.sqrt(np.mean((f - actual) ** 2))),
            "mae": float(np.mean(np.abs(f - actual))),
        }
        for k, f in forecasts.items()
    }
    return {
        "scores": table,
        "pred": pred,
        "actual": actual,
        "persistence": forecasts["persistence"],
    }


def _results(sc: dict[str, Any], meta: dict[str, Any], what: str, n: int) -> dict[str, Any]:
    unit = meta.get("unit") or meta.get("target") or ""
    return {
        "task": "forecast",
        "what": what,
        "n": n,
        "unit": unit,
        "columns": ["rmse", "mae"],
        "scores": sc["scores"],
        "rows": [[k, v["rmse"], v["mae"]] for k, v in sc["scores"].items()],
    }


def report(model: rk.Sequential, p: Prepared) -> dict[str, Any]:
    h = p.held_out
    sc = scores(model, p.meta, h["X"], h["y"])
    labels = h["labels"]
    span = f" ({labels[0]} to {labels[-1]})" if labels else ""
    what = (
        f"{p.name}: {p.meta['horizon']}-step forecast on the {h['part']} part, the last "
        f"{len(h['y'])} of {h['n_rows']} rows{span}"
    )
    out = _results(sc, p.meta, what, len(h["y"]))
    out["_plot"] = {
        "labels": labels,
        "actual": sc["actual"][:, 0],
        "pred": sc["pred"][:, 0],
        "persistence": sc["persistence"][:, 0],
    }
    return out


def evaluate(model: rk.Sequential, meta: dict[str, Any], series: Series) -> dict[str, Any]:
    """Every window of ``series`` scored, with the model file's scaler and window."""
    values = _values(series, meta)
    scaled = Scaler.from_dict(meta["scaler"]).transform(values)
    X, y = make_windows(scaled, window=meta["window"], horizon=meta["horizon"])
    what = f"{series.name}: {meta['horizon']}-step forecast on all {len(y)} windows"
    return _results(scores(model, meta, X, y), meta, what, len(y))


def _values(series: Series, meta: dict[str, Any]) -> np.ndarray:
    values = series.values.reshape(len(series.values), -1)
    n_feat = 1 + len(meta["features"])
    if values.shape[1] != n_feat:
        raise DataError(
            f"{series.name}: the model reads {n_feat} column(s) "
            f"({', '.join([meta['target'], *meta['features']])}), the data has "
            f"{values.shape[1]}"
        )
    return values


def forecast_ahead(
    model: rk.Sequential, meta: dict[str, Any], series: Series, steps: int
) -> tuple[list[str], np.ndarray]:
    """``steps`` values past the end of ``series``: recursive one-step forecasts, each fed
    back as the newest input (a univariate model), or the model's own ``horizon`` outputs."""
    values = _values(series, meta)
    W, H = meta["window"], meta["horizon"]
    if len(values) < W:
        raise DataError(
            f"{series.name}: the model reads windows of {W} rows, the series has only {len(values)}"
        )
    scaler = Scaler.from_dict(meta["scaler"])
    window = scaler.transform(values[-W:])  # (W, F)
    if values.shape[1] > 1 and steps > H:
        raise DataError(
            f"--steps {steps}: this model also reads {', '.join(meta['features'])}"
            f", whose future is unknown, so it forecasts at most --horizon {H} "
            "steps"
        )
    out: list[float] = []
    while len(out) < steps:
        step = model_forecast(model, meta, window[None])[0]  # (H,)
        if values.shape[1] > 1 or steps <= H:
            out = list(step[:steps])
            break
        out.append(float(step[0]))
        window = np.concatenate([window[1:], step[:1, None]])
    pred = scaler.inverse_transform(np.array(out)[None], column=0)[0]
    return _future_labels(series.index, steps), pred


def _future_labels(index: list[str] | None, steps: int) -> list[str]:
    """Continue integer time labels (years) past the end; else ``+1, +2, ...``."""
    if index and len(index) >= 2 and all(v.lstrip("-").isdigit() for v in index[-2:]):
        last, step = int(index[-1]), int(index[-1]) - int(index[-2])
        return [str(last + step * (k + 1)) for k in range(steps)]
    return [f"+{k + 1}" for k in range(steps)]


def plots(model: rk.Sequential, p: Prepared, results: dict[str, Any], out: Any) -> list[str]:
    from . import plots as pl

    d = results["_plot"]
    unit = p.meta.get("unit")
    target = p.meta["target"]
    ylabel = unit if target == "value" and unit else f"{target} ({unit})" if unit else target
    path = out / "forecast.png"
    pl.forecast_vs_actual(
        path,
        d["labels"],
        d["actual"],
        d["pred"],
        d["persistence"],
        model_name=describe(model),
        ylabel=ylabel,
        title=f"{p.name}: one-step forecasts on the held-out {p.held_out['part']} part"
        if p.meta["horizon"] == 1
        else f"{p.name}: first step of each forecast, held-out part",
    )
    return [path.name]
