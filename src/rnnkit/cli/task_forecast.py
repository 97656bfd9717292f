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
from rnnkit.data import Scaler, Series, chronological_split
from rnnkit.data.covariates import forecast_windows as cw
from rnnkit.data.dates import continue_labels, detect_period, frequency
from rnnkit.data.panel import Panel
from rnnkit.data.scores import gaussian_quantiles, naive_scale
from rnnkit.data.series_windows import BLOCK_ROWS, SeriesWindows
from rnnkit.data.series_windows import relative as _relative
from rnnkit.data.windows import check_finite
from rnnkit.errors import DataError
from rnnkit.losses import SCALE_FLOOR

from . import forecast_layout as fl
from . import forecast_scores as fs
from .common import UsageError
from .prepared import Prepared, describe
from .settings import Settings


def prepare(series: Series, s: Settings, name: str) -> Prepared:
    n = len(series.values)
    period = season_period(series, s, name, n)
    lay = fl.from_settings(series, s, name)
    W = s.window or (2 * period if period else 12)
    check_strategy(s, series, lay)
    c = cut(series, s, name, lay, W, period)
    meta = {
        **meta_of(s, name, W, lay, series, c, period),
        "mase_scales": c["scales"],
        "last_index": None if series.index is None else series.index[-1],
    }
    loss, metric, k = _head(s)
    val = c["val"]
    return Prepared("forecast", name, *c["train"], val, loss, metric,
                    (1 if s.strategy == "recursive" else s.horizon) * lay.K * k, meta,
                    held_out=c["held_out"])


def meta_of(s: Settings, name: str, W: int, lay: fl.Layout, series: Series,
            c: dict[str, Any], period: int | None) -> dict[str, Any]:
    """The model file's forecast metadata that a single series and a panel share; ``c`` is
    ``cut``'s result for ``series`` (a panel's first)."""
    return {
        "task": "forecast",
        "dataset": name,
        "window": W,
        "horizon": s.horizon,
        "strategy": s.strategy,
        "loss": s.loss,
        "quantiles": list(s.quantiles),
        **fl.to_meta(lay),
        "date": s.date,
        "missing": series.missing_rule,
        "scaler": c["scaler"].to_dict(),
        "period": period,
        "mase_scale": c["scales"][0],
        "mase_period": c["m"],
        "unit": series.unit,
        "relative": s.relative,
    }


def cut(series: Series, s: Settings, name: str, lay: fl.Layout, W: int, period: int | None
        ) -> dict[str, Any]:
    """One series split in time, scaled on its training rows and cut into windows:
    ``train`` and ``val`` ``(X, y)`` ready for ``fit`` (``val`` None when empty), the held-out
    part's windows (unchanged by ``--relative``), the ``scaler`` and the MASE ``scales``."""
    values = series.values.reshape(len(series.values), -1)  # (N, F), targets first
    n, K, H, index = len(values), lay.K, s.horizon, series.index
    tr, va, te = chronological_split(n, val=s.val, test=s.test)
    if tr.stop < W + H:
        raise DataError(
            f"{name}: --window {W} plus --horizon {H} needs at least {W + H} training rows, "
            f"but the series has {n} rows of which {tr.stop} train; use a smaller --window"
        )
    scaler = Scaler().fit(values[tr])
    blocks = range(0, n, BLOCK_ROWS)  # a long series (a memory map) a block at a time
    for i in blocks:
        scaler.transform(values[i : i + BLOCK_ROWS])  # refuses values too large
    known = None
    if lay.known:  # (N, C): a few columns, kept in memory
        known = fl.known(lay, scaler.transform(values), index)
    for i in blocks:
        check_finite(scaler.transform(values[i : i + BLOCK_ROWS])[:, : K + len(lay.features)],
                      i)
    if known is not None:
        check_finite(known, 0, "forecast_windows: known", "known-future covariates must be "
                      "given at every row")
    src = SeriesWindows(values, scaler.mean_, scaler.scale_, window=W, horizon=H, targets=K,
                        inputs=K + len(lay.features), known=known, relative=s.relative,
                        first_step=s.strategy == "recursive")
    # window i reads rows i .. i + W - 1 and forecasts rows i + W .. i + W + H - 1; it belongs
    # to the part its targets lie in (a training one whose targets reach further is dropped)
    M = src.count
    parts = {
        "train": (0, min(M, tr.stop - W - H + 1)),
        "val": (max(0, va.start - W), min(M, va.stop - W - H + 1)),
        "test": (max(0, te.start - W), M),
    }
    has = {k: hi > lo for k, (lo, hi) in parts.items()}
    if s.test > 0 and not has["test"]:
        raise DataError(
            f"{name}: no test window: the test part ({n - te.start} rows) is "
            f"shorter than --horizon {H}"
        )
    held = "test" if has["test"] else "val"
    if not has[held]:
        raise DataError(f"{name}: nothing held out to test on; use --test or --val above 0")
    m = period if period and tr.stop > period + 1 else 1  # MASE: the seasonal naive scale
    rows = np.arange(*parts[held]) + W  # the row of each held-out window's first target
    return {
        "train": (src.rows(*parts["train"], "X"), src.rows(*parts["train"], "y")),
        "val": (src.rows(*parts["val"], "X"), src.rows(*parts["val"], "y")) if has["val"]
        else None,
        "scaler": scaler,
        "scales": [naive_scale(values[tr, k], m) for k in range(K)],
        "m": m,
        "held_out": {  # unchanged by --relative and --strategy recursive
            "X": src.rows(*parts[held], "X", model=False),
            "y": src.rows(*parts[held], "y", model=False),
            "part": held,
            "labels": _labels(index, rows),
            "span": None if index is None else index[rows[0] : rows[-1] + H],
            "n_rows": n,
        },
    }


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


def check_strategy(s: Settings, series: Series, lay: fl.Layout | None = None) -> None:
    if s.strategy != "recursive":
        return
    lay = lay or fl.Layout(tuple(series.columns[:1]), tuple(series.columns[1:]))
    others = [*lay.features, *lay.future, *lay.calendar]
    if others:
        raise UsageError(
            f"--strategy recursive feeds forecasts back as inputs, so the model can read "
            f"only its targets; this one also reads {', '.join(others)} (use "
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


def forecast_windows(model: rk.Sequential, meta: dict[str, Any], X: np.ndarray
                     ) -> dict[str, np.ndarray | None]:
    """The model's forecasts for windows ``X`` ``(N, T, D)`` in scaled units: ``point``
    ``(N, K, H)``, and for a probabilistic model ``quantiles`` ``(N, K, H, Q)`` at
    ``meta["quantiles"]`` (and ``sigma`` ``(N, K, H)`` for a Gaussian one)."""
    H = meta["horizon"]
    if meta.get("strategy") == "recursive":
        window, path = X.copy(), []
        for _ in range(H):
            step = _direct(model, meta, window)["point"][:, :, 0]  # (N, K)
            path.append(step)
            window = np.concatenate([window[:, 1:], step[:, None, :]], axis=1)
        return {"point": np.stack(path, axis=2), "quantiles": None, "sigma": None}
    return _direct(model, meta, X)


def _direct(model: rk.Sequential, meta: dict[str, Any], X: np.ndarray
            ) -> dict[str, np.ndarray | None]:
    K, W = len(meta.get("targets") or [0]), meta["window"]
    rel = bool(meta.get("relative"))
    Xin = _relative(X, K, W) if rel else X
    static = meta.get("static")
    if static is not None:  # a panel's series: its one-hot code at every step
        code = np.broadcast_to(np.asarray(static, Xin.dtype), (*Xin.shape[:2], len(static)))
        Xin = np.concatenate([Xin, code], axis=2)
    out = np.asarray(model.predict(Xin), np.float64)
    n, loss, levels = len(X), meta.get("loss", "mse"), meta.get("quantiles") or [0.5]
    base = X[:, W - 1, :K][:, :, None] if rel else np.zeros((n, K, 1))  # (N, K, 1)
    if loss == "quantile":
        q = np.sort(out.reshape(n, K, -1, len(levels)), axis=-1)  # crossing quantiles: reorder
        mid = int(np.argmin(np.abs(np.asarray(levels) - 0.5)))
        return {"point": q[..., mid] + base, "quantiles": q + base[..., None], "sigma": None}
    if loss == "gaussian":
        half = out.shape[1] // 2
        mu = out[:, :half].reshape(n, K, -1) + base
        sigma = rk.losses.softplus(out[:, half:]).reshape(n, K, -1) + SCALE_FLOOR
        return {"point": mu, "quantiles": gaussian_quantiles(mu, sigma, levels), "sigma": sigma}
    return {"point": out.reshape(n, K, -1) + base, "quantiles": None, "sigma": None}


def model_forecast(model: rk.Sequential, meta: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """The model's point forecasts ``(N, K, H)`` in scaled units, for windows ``X``."""
    return forecast_windows(model, meta, X)["point"]


def _labels(index: list[str] | None, rows: np.ndarray) -> list[str] | None:
    return None if index is None else [index[r] for r in rows]


def scores(
    model: rk.Sequential, meta: dict[str, Any], X: np.ndarray, y: np.ndarray
) -> dict[str, Any]:
    """The model and the baselines on windows, in original units (``forecast_scores``): one
    target's scores, or with several, ``per_target`` scores and the ``overall`` ones."""
    X, y = np.asarray(X), np.asarray(y)  # windows cut on demand (SeriesWindows): all of them
    scaler = Scaler.from_dict(meta["scaler"])
    f = forecast_windows(model, meta, X)
    W, H = meta["window"], meta["horizon"]
    targets = list(meta.get("targets") or [meta["target"]])
    scales = meta.get("mase_scales") or [meta.get("mase_scale")]
    yk = y.reshape(len(y), len(targets), H)
    per = {}
    for k, name in enumerate(targets):
        unscale = lambda a, k=k: scaler.inverse_transform(a, column=k)  # noqa: E731
        per[name] = fs.score(
            describe(model),
            {**meta, "mase_scale": scales[k]},
            past=unscale(X[:, :W, k]),
            actual=unscale(yk[:, k]),
            pred=unscale(f["point"][:, k]),
            quantiles=None if f["quantiles"] is None else unscale(f["quantiles"][:, k]),
            sigma=None if f["sigma"] is None else f["sigma"][:, k] * scaler.scale_[k],
        )
    if len(targets) == 1:
        return per[targets[0]]
    return fs.overall(per, [float(scaler.scale_[k]) for k in range(len(targets))])


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
    if isinstance(series, Panel):
        raise DataError(f"{series.name}: this model forecasts one series; it was not trained "
                        "with --series-id")
    X, y = windows_of(meta, series)
    what = f"{series.name}: {meta['horizon']}-step forecast on all {len(y)} windows"
    return fs.results(scores(model, meta, X, y), meta, what, len(y))


def windows_of(meta: dict[str, Any], series: Series) -> tuple[np.ndarray, np.ndarray]:
    """All windows of ``series`` and their targets, scaled with the model file's scaler."""
    lay = fl.from_meta(meta)
    values = _values(series, meta)
    scaled = Scaler.from_dict(meta["scaler"]).transform(values)
    return cw(scaled[:, : lay.K + len(lay.features)], window=meta["window"],
              horizon=meta["horizon"], targets=lay.K, known=fl.known(lay, scaled, series.index))


def _values(series: Series, meta: dict[str, Any]) -> np.ndarray:
    values = series.values.reshape(len(series.values), -1)
    cols = fl.from_meta(meta).columns
    if values.shape[1] != len(cols):
        raise DataError(
            f"{series.name}: the model reads {len(cols)} column(s) ({', '.join(cols)}), the "
            f"data has {values.shape[1]}"
        )
    return values


def forecast_ahead(
    model: rk.Sequential, meta: dict[str, Any], series: Series, steps: int
) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """``steps`` values of each target past the end of ``series`` ``(steps, K)`` and, for a
    probabilistic model, their quantiles ``(steps, K, Q)``.

    Up to ``horizon`` steps are the model's outputs from the series' end. Beyond it (a model
    that reads no past covariates, whose future would be unknown), the origin moves on one
    step at a time, each forecast becoming the newest input, until the last ``horizon`` steps
    come from one forecast. Known-future covariates are read from the data's rows past its
    last target value; calendar features from the continued dates."""
    lay = fl.from_meta(meta)
    values = _values(series, meta)
    W, H, K = meta["window"], meta["horizon"], lay.K
    if len(values) < W:
        raise DataError(
            f"{series.name}: the model reads windows of {W} rows, the series has only {len(values)}"
        )
    if lay.features and steps > H:
        raise DataError(
            f"--steps {steps}: this model also reads {', '.join(lay.features)}"
            f", whose future is unknown, so it forecasts at most --horizon {H} "
            "steps"
        )
    if steps > H and meta.get("loss", "mse") != "mse":
        raise DataError(
            f"--steps {steps}: a probabilistic model's intervals hold for its --horizon {H} "
            "steps only; forecasts fed back would ignore their own error"
        )
    scaler = Scaler.from_dict(meta["scaler"])
    scaled = scaler.transform(values)
    n_in = K + len(lay.features)
    past_known = fl.known(lay, scaled, series.index)
    ahead = fl.future_known(lay, scaler, series, max(steps, H), series.name)
    known = None if past_known is None else np.concatenate([past_known, ahead])  # (N + S, C)
    hist = scaled[-W:, :n_in]  # (W, K + P): the newest rows, forecasts appended
    out: list[np.ndarray] = []
    quant = None
    while True:
        o = len(values) + len(out)  # the origin's row
        pad = np.concatenate([hist[-W:], np.zeros((H, n_in))])
        Xo, _ = cw(pad, window=W, horizon=H, targets=K,
                   known=None if known is None else known[o - W : o + H])
        f = forecast_windows(model, meta, Xo)
        left = steps - len(out)
        if left <= H:
            out += list(f["point"][0, :, :left].T)  # (left, K)
            if f["quantiles"] is not None:
                quant = np.stack([scaler.inverse_transform(f["quantiles"][0, k, :left], column=k)
                                  for k in range(K)], axis=1)  # (steps, K, Q)
            break
        out.append(f["point"][0, :, 0])
        hist = np.concatenate([hist, f["point"][0, :, :1].T])
    pred = np.stack([scaler.inverse_transform(np.array(out)[:, k], column=k)
                     for k in range(K)], axis=1)  # (steps, K)
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
