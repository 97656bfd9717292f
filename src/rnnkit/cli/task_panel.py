"""Panel data (``--series-id COL``): many series in one long CSV, one global model.

Each series is split in time, scaled on its own training rows and cut into windows on its own
(``task_forecast.cut``), so no window crosses two series and a large series' level does not
swamp a small one's. The model reads, at every step, a one-hot code of its series (a static
covariate: the series' identity) after the usual columns; training pools every series'
windows. Scores are per series, in its own units, and overall (MASE and sMAPE averaged over
the series, MAE and RMSE in each series' training standard deviations).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import rnnkit as rk
from rnnkit.data.panel import Panel
from rnnkit.errors import DataError

from . import forecast_layout as fl
from . import forecast_scores as fs
from . import task_forecast as tf
from .common import UsageError
from .prepared import Prepared
from .settings import Settings


def prepare(panel: Panel, s: Settings, name: str) -> Prepared:
    first = panel.series[0]
    lay = fl.from_settings(first, s, name)
    if lay.K > 1:
        raise UsageError(f"--series-id with --target {s.target}: a panel model forecasts one "
                         "target (give one column)")
    for series in panel.series:  # every series' dates parse and increase; --period fits it
        period = tf.season_period(series, s, f"{name} series {series.name!r}",
                                  len(series.values))
    period = tf.season_period(first, s, name, len(first.values))
    W = s.window or (2 * period if period else 12)
    tf.check_strategy(s, first, lay)
    S = len(panel.series)
    cuts, held = [], []
    for j, series in enumerate(panel.series):
        try:
            c = tf.cut(series, s, name, lay, W, period)
        except DataError as e:
            why = str(e).removeprefix(f"{name}: ")
            raise DataError(f"{name}: series {series.name!r} has {len(series.values)} rows, too "
                            f"few for --window {W}, --horizon {s.horizon}, --val {s.val} and "
                            f"--test {s.test} ({why})") from None
        code = np.eye(S)[j]
        c["train"] = tuple(_with_code(a, code) if i == 0 else a for i, a in enumerate(c["train"]))
        if c["val"] is not None:
            c["val"] = (_with_code(c["val"][0], code), c["val"][1])
        cuts.append(c)
        held.append({**c["held_out"], "series": series.name})
    X = np.concatenate([c["train"][0] for c in cuts])
    y = np.concatenate([c["train"][1] for c in cuts])
    vals = [c["val"] for c in cuts if c["val"] is not None]
    val = (np.concatenate([v[0] for v in vals]), np.concatenate([v[1] for v in vals])) \
        if vals else None
    meta = {
        **tf.meta_of(s, name, W, lay, first, cuts[0], period),
        "series_id": s.series_id,
        "series_ids": panel.ids,
        "series_scalers": [c["scaler"].to_dict() for c in cuts],
        "series_mase_scales": [c["scales"][0] for c in cuts],
    }
    loss, metric, k = tf._head(s)
    steps = 1 if s.strategy == "recursive" else s.horizon
    n_rows = sum(len(x.values) for x in panel.series)
    return Prepared("forecast", name, X, y, val, loss, metric, steps * k, meta,
                    held_out={"X": _with_code(held[0]["X"], np.eye(S)[0]), "y": held[0]["y"],
                              "series": held, "n_rows": n_rows, "part": held[0]["part"]})


def _with_code(X: np.ndarray, code: np.ndarray) -> np.ndarray:
    return np.concatenate([X, np.broadcast_to(code.astype(X.dtype), (*X.shape[:2], len(code)))],
                          axis=2)


def series_meta(meta: dict[str, Any], j: int) -> dict[str, Any]:
    """The metadata ``task_forecast`` reads for series ``j``: its scaler, MASE scale and
    one-hot code (``static``)."""
    ids = meta["series_ids"]
    return {**meta, "scaler": meta["series_scalers"][j],
            "mase_scale": meta["series_mase_scales"][j],
            "mase_scales": [meta["series_mase_scales"][j]],
            "static": np.eye(len(ids))[j]}


def _index(meta: dict[str, Any], sid: str, name: str) -> int:
    ids = meta["series_ids"]
    if sid not in ids:
        raise DataError(f"{name}: series {sid!r} is not one the model was trained on "
                        f"({', '.join(ids[:10])}{', ...' if len(ids) > 10 else ''}): a global "
                        "model knows each series by its one-hot code")
    return ids.index(sid)


def report(model: rk.Sequential, p: Any) -> dict[str, Any]:
    per, stds = {}, []
    for j, h in enumerate(p.held_out["series"]):
        mj = series_meta(p.meta, j)
        sc = tf.scores(model, mj, h["X"], h["y"])
        per[h["series"]] = {**sc, "labels": h["labels"], "span": h["span"]}
        stds.append(mj["scaler"]["scale"][0])
    sc = fs.overall(per, stds, key="per_series")
    n = sum(len(h["y"]) for h in p.held_out["series"])
    what = (f"{p.name}: {p.meta['horizon']}-step forecasts of {len(per)} series by one model, "
            f"on each series' {p.held_out['part']} part ({n} windows of {p.held_out['n_rows']} "
            "rows)")
    out = fs.results(sc, p.meta, what, n)
    out["_plot"] = sc
    return out


def evaluate(model: rk.Sequential, meta: dict[str, Any], panel: Any) -> dict[str, Any]:
    if not isinstance(panel, Panel):
        raise DataError(f"this model forecasts a panel (--series-id {meta['series_id']}): give "
                        "the long CSV with that column")
    per, stds, n = {}, [], 0
    for series in panel.series:
        j = _index(meta, series.name, panel.name)
        mj = series_meta(meta, j)
        X, y = tf.windows_of(mj, series)
        per[series.name] = tf.scores(model, mj, X, y)
        stds.append(mj["scaler"]["scale"][0])
        n += len(y)
    sc = fs.overall(per, stds, key="per_series")
    what = f"{panel.name}: {meta['horizon']}-step forecasts of {len(per)} series, all windows"
    return fs.results(sc, meta, what, n)


def forecast_ahead(model: rk.Sequential, meta: dict[str, Any], panel: Any, steps: int
                   ) -> list[tuple[str, list[str], np.ndarray, np.ndarray | None]]:
    """``(series id, labels, forecasts (steps, 1), quantiles)`` for each series of ``panel``."""
    if not isinstance(panel, Panel):
        raise DataError(f"this model forecasts a panel (--series-id {meta['series_id']}): give "
                        "the long CSV with that column")
    out = []
    for series in panel.series:
        mj = series_meta(meta, _index(meta, series.name, panel.name))
        out.append((series.name, *tf.forecast_ahead(model, mj, series, steps)))
    return out
