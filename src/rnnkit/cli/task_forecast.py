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
from rnnkit.data import Scaler, Series, chronological_split, make_windows
from rnnkit.data.dates import continue_labels, detect_period, frequency
from rnnkit.data.scores import gaussian_quantiles, naive_scale
from rnnkit.errors import DataError
from rnnkit.losses import SCALE_FLOOR

from . import forecast_scores as fs
from .common import UsageError
from .prepared import Prepared, describe
from .settings import Settings


def prepare(series: Series, s: Settings, name: str) -> Prepared:
    values = series.values.reshape(len(series.values), -1)  # (N, F), target in column 0
    n = len(values)
    index = series.index
    period = season_period(series, s, name, n)
    W = s.window or (2 * period if period else 12)
    H = s.horizon
    check_strategy(s, series)
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
    m = period if period and tr.stop > period + 1 else 1  # MASE: the seasonal naive scale
    meta = {
        "task": "forecast",
        "dataset": name,
        "window": W,
        "horizon": H,
        "strategy": s.strategy,
        "loss": s.loss,
        "quantiles": list(s.quantiles),
        "target": s.target or series.columns[0],
        "features": list(series.columns[1:]),
        "date": s.date,
        "missing": series.missing_rule,
        "scaler": scaler.to_dict(),
        "period": period,
        "mase_scale": naive_scale(values[tr, 0], m),
        "mase_period": m,
        "unit": series.unit,
        "last_index": None if index is None else index[-1],
    }
    meta["relative"] = s.relative
    Xm, ym = (_relative(X), y - X[:, -1:, 0]) if s.relative else (X, y)
    if s.strategy == "recursive":
        ym = ym[:, :1]  # a one-step model; forecasts feed back for the other steps
    val = (Xm[parts["val"]], ym[parts["val"]]) if parts["val"].any() else None
    rows = first[parts[held]]
    loss, metric, k = _head(s)
    return Prepared(
        "forecast",
        name,
        Xm[parts["train"]],
        ym[parts["train"]],
        val,
        loss,
        metric,
        ym.shape[1] * k,
        meta,
        held_out={
            "X": X[parts[held]],
            "y": y[parts[held]],
            "part": held,
            "labels": _labels(index, rows),
            "span": None if index is None else index[rows[0] : rows[-1] + H],
            "n_rows": n,
        },
    )


def season_period(series: Series, s: Settings, name: str, n: int) -> int | None:
    """``--period``, else the dataset's own, else the one the dates' frequency implies."""
    if s.date and series.index is not None:
        frequency(series.index, f"{name}: --date {s.date}")  # unparseable or unordered: refuse
    if s.period is not None:
        if s.period >= n // 2:
            raise DataError(
                f"{name}: --period {s.period} needs at least two seasons of data "
                f"({2 * s.period} rows), the series has {n}"
            )
        return s.period
    return series.period or detect_period(series.index)


def check_strategy(s: Settings, series: Series) -> None:
    if s.strategy != "recursive":
        return
    if len(series.columns) > 1:
        raise UsageError(
            f"--strategy recursive feeds forecasts back as inputs, so the model can read "
            f"only its target; this one also reads {', '.join(series.columns[1:])} (use "
            "--strategy direct)"
        )
    if s.loss != "mse":
        raise UsageError(
            f"--strategy recursive with --loss {s.loss}: intervals of forecasts fed back "
            "as inputs would ignore the error they carry; use --strategy direct"
        )


def _head(s: Settings) -> tuple[Any, str | None, int]:
    """``(loss, metric fit logs, outputs per forecast step)`` of ``--loss``."""
    if s.loss == "quantile":
        return rk.losses.quantile_loss(s.quantiles), None, len(s.quantiles)
    if s.loss == "gaussian":
        return "gaussian_nll", None, 2
    return "mse", "rmse", 1


def _relative(X: np.ndarray) -> np.ndarray:
    """The target column as change from the window's last value: the model then learns the
    shape of the recent past, not its level, and a trend cannot take it out of range."""
    out = X.copy()
    out[:, :, 0] -= X[:, -1:, 0]
    return out


def forecast_windows(model: rk.Sequential, meta: dict[str, Any], X: np.ndarray
                     ) -> dict[str, np.ndarray | None]:
    """The model's forecasts for windows ``X`` ``(N, W, F)`` in scaled units: ``point``
    ``(N, H)``, and for a probabilistic model ``quantiles`` ``(N, H, Q)`` at
    ``meta["quantiles"]`` (and ``sigma`` ``(N, H)`` for a Gaussian one)."""
    H = meta["horizon"]
    if meta.get("strategy") == "recursive":
        window, path = X.copy(), []
        for _ in range(H):
            step = _direct(model, meta, window)["point"][:, 0]  # (N,)
            path.append(step)
            window = np.concatenate([window[:, 1:], step[:, None, None]], axis=1)
        return {"point": np.stack(path, axis=1), "quantiles": None, "sigma": None}
    return _direct(model, meta, X)


def _direct(model: rk.Sequential, meta: dict[str, Any], X: np.ndarray
            ) -> dict[str, np.ndarray | None]:
    rel = bool(meta.get("relative"))
    out = np.asarray(model.predict(_relative(X) if rel else X), np.float64)  # (N, steps * k)
    base = X[:, -1:, 0] if rel else np.zeros((len(X), 1))
    n, loss, levels = len(X), meta.get("loss", "mse"), meta.get("quantiles") or [0.5]
    if loss == "quantile":
        q = np.sort(out.reshape(n, -1, len(levels)), axis=-1)  # crossing quantiles: reorder
        mid = int(np.argmin(np.abs(np.asarray(levels) - 0.5)))
        return {"point": q[..., mid] + base, "quantiles": q + base[..., None], "sigma": None}
    if loss == "gaussian":
        steps = out.shape[1] // 2
        mu, sigma = out[:, :steps] + base, rk.losses.softplus(out[:, steps:]) + SCALE_FLOOR
        return {"point": mu, "quantiles": gaussian_quantiles(mu, sigma, levels), "sigma": sigma}
    return {"point": out + base, "quantiles": None, "sigma": None}


def model_forecast(model: rk.Sequential, meta: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """The model's point forecasts ``(N, H)`` in scaled units, for windows ``X``."""
    return forecast_windows(model, meta, X)["point"]


def _labels(index: list[str] | None, rows: np.ndarray) -> list[str] | None:
    return None if index is None else [index[r] for r in rows]


def scores(
    model: rk.Sequential, meta: dict[str, Any], X: np.ndarray, y: np.ndarray
) -> dict[str, Any]:
    """The model and the baselines on windows, in original units (``forecast_scores``)."""
    scaler = Scaler.from_dict(meta["scaler"])
    f = forecast_windows(model, meta, X)
    unscale = lambda a: scaler.inverse_transform(a, column=0)  # noqa: E731
    quantiles = None if f["quantiles"] is None else unscale(f["quantiles"])
    sigma = None if f["sigma"] is None else f["sigma"] * scaler.scale_[0]
    return fs.score(
        describe(model),
        meta,
        past=unscale(X[:, :, 0]),
        actual=unscale(y),
        pred=unscale(f["point"]),
        quantiles=quantiles,
        sigma=sigma,
    )


def report(model: rk.Sequential, p: Prepared) -> dict[str, Any]:
    h = p.held_out
    sc = scores(model, p.meta, h["X"], h["y"])
    labels = h["labels"]
    span = f" ({labels[0]} to {labels[-1]})" if labels else ""
    what = (
        f"{p.name}: {p.meta['horizon']}-step forecast on the {h['part']} part, the last "
        f"{len(h['y'])} of {h['n_rows']} rows{span}"
    )
    out = fs.results(sc, p.meta, what, len(h["y"]))
    out["_plot"] = {**sc, "labels": labels, "span": h["span"]}
    return out


def evaluate(model: rk.Sequential, meta: dict[str, Any], series: Series) -> dict[str, Any]:
    """Every window of ``series`` scored, with the model file's scaler and window."""
    values = _values(series, meta)
    scaled = Scaler.from_dict(meta["scaler"]).transform(values)
    X, y = make_windows(scaled, window=meta["window"], horizon=meta["horizon"])
    what = f"{series.name}: {meta['horizon']}-step forecast on all {len(y)} windows"
    return fs.results(scores(model, meta, X, y), meta, what, len(y))


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
) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """``steps`` values past the end of ``series`` and, for a probabilistic model, their
    quantiles ``(steps, Q)``: the model's ``horizon`` outputs, or (a univariate model, more
    steps than the horizon) forecasts fed back as the newest inputs."""
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
    if steps > H and meta.get("loss", "mse") != "mse":
        raise DataError(
            f"--steps {steps}: a probabilistic model's intervals hold for its --horizon {H} "
            "steps only; forecasts fed back would ignore their own error"
        )
    out: list[float] = []
    quant = None
    while len(out) < steps:
        f = forecast_windows(model, meta, window[None])
        if values.shape[1] > 1 or steps <= H:
            out = list(f["point"][0, :steps])
            if f["quantiles"] is not None:
                quant = scaler.inverse_transform(f["quantiles"][0, :steps], column=0)
            break
        out.append(float(f["point"][0, 0]))
        window = np.concatenate([window[1:], f["point"][0, :1, None]])
    pred = scaler.inverse_transform(np.array(out)[None], column=0)[0]
    return future_labels(series.index, steps), pred, quant


def future_labels(index: list[str] | None, steps: int) -> list[str]:
    """The dates after the series' last one (years, quarters, months, ISO dates); else
    ``+1, +2, ...``."""
    if index and len(index) >= 2:
        try:
            return continue_labels(index, steps)
        except DataError:
            pass
    return [f"+{k + 1}" for k in range(steps)]


def plots(model: rk.Sequential, p: Prepared, results: dict[str, Any], out: Any) -> list[str]:
    return fs.plots(describe(model), p, results, out)
