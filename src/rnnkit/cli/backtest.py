"""``rnnkit backtest DATA``: a rolling-origin backtest of recurrent forecasters beside baselines.

From each of ``--folds`` origins (``--step`` rows apart, the last one ``--horizon`` rows before
the end) the model is trained on the rows before the origin only (``--refit``, the default;
``--no-refit`` trains once, at the first origin) and forecasts the next ``--horizon`` rows, as
do naive, seasonal naive, drift and, with statsmodels installed, ETS and ARIMA. Every score
(MAE, RMSE, MASE, sMAPE; coverage for interval forecasts) is per fold and averaged over folds.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any

import numpy as np

import rnnkit as rk
from rnnkit.data import Series
from rnnkit.data import classical as cl
from rnnkit.data.backtest import SCHEMES, backtest, baselines, rolling_origins

from . import forecast_layout, sources, task_forecast
from . import forecast_scores as fs
from . import settings as st
from .common import (
    EXIT_OK,
    UsageError,
    add_command,
    csv_text,
    emit_json,
    say,
    table,
    warn,
    write_json,
    write_text,
)
from .prepared import build_model, build_schedule, describe

EPILOG = """examples:
  rnnkit backtest airline --horizon 12 --folds 4 --epochs 30
  rnnkit backtest sunspots --cells lstm,gru --horizon 5 --scheme sliding
  rnnkit backtest prices.csv --target close --date day --period 7 --no-refit
  rnnkit backtest nile --loss gaussian --folds 5 --horizon 3
"""


def add_parser(sub: Any) -> None:
    p = add_command(sub, "backtest", "rolling-origin backtest against baselines", __doc__,
                    EPILOG)
    p.add_argument("data", nargs="?", metavar="DATA",
                   help="bundled series or .csv file (default: sunspots)")
    p.add_argument("--config", metavar="FILE.toml", help="settings file; flags override it")
    g = p.add_argument_group("backtest")
    g.add_argument("--folds", type=st._argparse_type(st._positive_int), default=5, metavar="K",
                   help="forecast origins (default: 5)")
    g.add_argument("--step", type=st._argparse_type(st._positive_int), default=None,
                   metavar="N", help="rows between origins (default: --horizon)")
    g.add_argument("--scheme", choices=SCHEMES, default="expanding",
                   help="expanding: all rows before each origin; sliding: a window of the first "
                   "fold's length (default: expanding)")
    g.add_argument("--refit", action=argparse.BooleanOptionalAction, default=True,
                   help="train again at every origin (default: on)")
    g.add_argument("--cells", type=st._argparse_type(st._columns), default=None,
                   metavar="CELLS", help="compare several cells, e.g. lstm,gru (default: --cell)")
    g.add_argument("--classical", action=argparse.BooleanOptionalAction, default=None,
                   help="ETS and ARIMA baselines (default: on when statsmodels is installed)")
    st.add_flags(p)


def run(args: argparse.Namespace) -> int:
    s = st.from_args(args)
    cells = list(args.cells or (s.cell,))
    bad = [c for c in cells if c not in st.CELLS]
    if bad:
        raise UsageError(
            f"--cells: unknown cell {bad[0]!r}; expected some of {', '.join(st.CELLS)}"
        )
    if s.series_id:
        raise UsageError("backtest --series-id: panel backtests are not built; backtest one "
                         "series at a time (its rows as a CSV of their own)")
    if s.resume or s.diagnose:
        raise UsageError("backtest trains one model per fold: --resume and --diagnose do not apply")
    if not s.val > 0:
        raise UsageError("backtest: --val must be above 0: each fold's training stops early "
                         "on the last rows before its origin")
    classical = args.classical
    if classical and not cl.available():
        raise UsageError("--classical needs statsmodels: pip install 'rnnkit[stats]'")
    classical = cl.available() if classical is None else classical
    record, name = sources.load_source(s.dataset, s)
    sources.infer_task(record, "forecast", name)
    s = st.resolve(s, "forecast")
    series: Series = record
    values = series.values.reshape(len(series.values), -1)
    n = len(values)
    period = task_forecast.season_period(series, s, name, n)
    W = s.window or (2 * period if period else 12)
    s = dataclasses.replace(s, window=W, test=0.0, period=None)
    lay = forecast_layout.from_settings(series, s, name)
    task_forecast.check_strategy(s, series, lay)
    H = s.horizon
    # each fold's history: W + H rows to train on, then a validation part of at least H rows
    min_train = max(int(np.ceil((W + H) / (1 - s.val))), W + 2 * H) + 1
    folds = rolling_origins(n, horizon=H, folds=args.folds, step=args.step, scheme=args.scheme,
                            min_train=min_train)
    from .train import run_folder

    out = run_folder(s, name, kind="backtest")
    forecasters: dict[str, Any] = {}
    for cell in cells:
        sc = dataclasses.replace(s, cell=cell)
        label = describe(build_model(sc, _dummy(sc, series)))
        fits = [f.train.stop - (f.train.start or 0) for f in folds]
        forecasters[label] = _rnn(series, sc, period, fits if args.refit else fits[:1], name,
                                  label, args.quiet)
    forecasters.update(baselines(period, classical, targets=lay.K))
    levels = list(s.quantiles) if s.loss != "mse" else None
    start = time.perf_counter()
    result = backtest(values, folds, forecasters, period=period, levels=levels,
                      known=len(lay.future), index=series.index, targets=lay.K)
    seconds = time.perf_counter() - start
    doc = _document(result, s, args, name, series, period, cells, list(forecasters), seconds)
    if lay.K > 1:
        doc["unit"] = "MAE, RMSE in standard deviations"
        doc["per_target"] = {
            t: {"overall": o, "scores": o, "columns": _columns(o), "unit": "",
                **dict(zip(("best", "verdict"), _judge(o, doc["models"])))}
            for t, o in zip(lay.targets, result["overall_per_target"])}
    files = ["metrics.json", "backtest.csv", "config.toml", "backtest.png", "report.html"]
    doc["run_folder"], doc["files"] = str(out), files
    write_json(out / "metrics.json", doc)
    write_text(out / "backtest.csv", _csv(doc))
    write_text(out / "config.toml", st.to_toml(s))
    from . import plots

    plots.backtest(out / "backtest.png", doc, values[:, 0], series.index,
                   title=f"{name}: {len(folds)}-fold rolling-origin backtest, {H} steps ahead")
    from .report import write_report

    write_report(out)
    if args.json:
        emit_json(doc)
    else:
        _print(doc)
    return EXIT_OK


def _dummy(s: st.Settings, series: Series) -> Any:
    """Just enough of a ``Prepared`` for ``build_model`` to name the model."""
    from .prepared import Prepared

    return Prepared("forecast", "", None, None, None, "mse", None, 1, {})


def _rnn(series: Series, s: st.Settings, period: int | None, fits: list[int], name: str,
         label: str, quiet: bool) -> Any:
    """A forecaster ``(history, H) -> forecasts`` that trains on ``history`` alone, once per
    fold or, when ``fits`` (the rows of history of each training) has one entry, on the
    first fold's. All of its fits and forecasts are one job for ``kernels.for_job``: the first
    fit's size scaled by the rows of all of them, so that a small backtest runs NumPy's loop
    instead of compiling, and every fold runs the same loop."""
    from rnnkit import kernels

    from .train import job_size

    refit = len(fits) > 1
    state: dict[str, Any] = {"fold": 0}

    def forecast(history: np.ndarray, H: int, future: np.ndarray | None = None,
                 labels: list[str] | None = None) -> Any:
        state["fold"] += 1
        if refit or "model" not in state:
            t0 = time.perf_counter()
            index = None if labels is None else labels[: len(history)]
            sub = dataclasses.replace(series, values=history, index=index, period=period,
                                      future=None)
            val = max(s.val, (H + 0.5) / len(history))  # room for one validation forecast
            p = task_forecast.prepare(sub, dataclasses.replace(s, val=val), name)
            model = build_model(s, p)
            if "job" not in state:
                steps, macs = job_size(s, p, model)
                scale = sum(fits) / len(history)
                state["job"] = (int(steps * scale), macs * scale)
            callbacks = [rk.EarlyStopping(patience=s.patience)] if s.patience else []
            opt = rk.optim.get_optimizer(s.optimizer, s.lr)
            with kernels.for_job(*state["job"]):
                model.fit(p.X, p.y, loss=p.loss, optimizer=opt, schedule=build_schedule(s, opt),
                          epochs=s.epochs, batch_size=s.batch_size, clip_norm=s.clip_norm,
                          clip_value=s.clip_value, validation_data=p.val,
                          metrics=None if p.metric else [], callbacks=callbacks, seed=s.seed)
            state.update(model=model, meta=p.meta)
            if not quiet:
                warn(f"fold {state['fold']}: {label} trained on {len(history)} rows in "
                     f"{time.perf_counter() - t0:.1f}s")
        model, meta = state["model"], state["meta"]
        L = len(history)
        now = dataclasses.replace(series, values=history, future=future,
                                  index=None if labels is None else labels[:L])
        with kernels.for_job(*state["job"]):
            _, point, quant = task_forecast.forecast_ahead(model, meta, now, H)  # (H, K), (H, K, Q)
        if point.shape[1] == 1:
            point, quant = point[:, 0], None if quant is None else quant[:, 0]
        return point if quant is None else (point, quant)

    forecast.reads_future = True  # type: ignore[attr-defined]
    return forecast


def _document(result: dict[str, Any], s: st.Settings, args: Any, name: str, series: Series,
              period: int | None, cells: list[str], names: list[str], seconds: float
              ) -> dict[str, Any]:
    index = series.index
    for f in result["folds"]:
        f["origin"] = index[f["test"][0]] if index else str(f["test"][0])
    models = names[: len(cells)]
    overall = result["overall"]
    best, verdict = _judge(overall, models)
    return {
        "task": "backtest",
        "dataset": name,
        "what": f"{name}: {len(result['folds'])} folds ({args.scheme} window, "
        f"{'refit at every origin' if args.refit else 'trained once'}), {s.horizon} steps "
        f"ahead; scores averaged over folds",
        "unit": series.unit,
        "period": period,
        "models": models,
        "columns": _columns(overall),
        "overall": overall,
        "scores": overall,
        "best": best,
        "verdict": verdict,
        "folds": result["folds"],
        "seconds": round(seconds, 2),
        "settings": {**{k: list(v) if isinstance(v, tuple) else v for k, v in vars(s).items()},
                     "folds": args.folds, "step": args.step or s.horizon, "scheme": args.scheme,
                     "refit": args.refit, "cells": cells},
    }


def _judge(overall: dict[str, dict[str, float]], models: list[str]) -> tuple[dict, str]:
    """The best forecaster per metric, and each model's verdict against the baselines."""
    best, _ = fs.best_and_verdict(overall, models[0])
    base = {k: v for k, v in overall.items() if k not in models}
    return best, " ".join(fs.best_and_verdict({m: overall[m], **base}, m)[1] for m in models)


def _columns(overall: dict[str, dict[str, float]]) -> list[str]:
    cols = list(fs.POINT)
    for scores in overall.values():
        cols += [k for k in scores if k not in cols and k.startswith(("coverage", "width"))]
    return cols


def _rows(doc: dict[str, Any]) -> list[list[Any]]:
    return [[k, *(v.get(c) for c in doc["columns"])] for k, v in doc["overall"].items()]


def _print(doc: dict[str, Any]) -> None:
    say(doc["what"])
    _print_table(doc, "forecaster")
    for target, d in (doc.get("per_target") or {}).items():
        say(f"\ntarget {target}:")
        _print_table(d, target)
    names = list(doc["overall"])
    say("\nMASE per fold (origin):")
    say(table(["fold", "origin", *names],
              [[f["fold"] + 1, f["origin"], *(f["scores"][k]["mase"] for k in names)]
               for f in doc["folds"]]))
    say(f"\nrun folder: {doc['run_folder']}")


def _print_table(doc: dict[str, Any], first: str) -> None:
    unit = f" ({doc['unit']})" if doc.get("unit") else ""
    cols = [fs.LABELS[c] if c in fs.LABELS else "{} ({}%)".format(*c.split("_"))
            for c in doc["columns"]]
    rows = _rows(doc)
    res = {"rows": rows, "columns": doc["columns"], "best": doc["best"]}
    say(table([first + unit, *cols], rows, fs.marks(res)))
    say(doc["verdict"])


def _csv(doc: dict[str, Any]) -> str:
    keys = sorted({k for f in doc["folds"] for v in f["scores"].values() for k in v})
    rows = [[f["fold"] + 1, f["origin"], f["train"][0], f["train"][1], name,
             *(sc.get(k) for k in keys)]
            for f in doc["folds"] for name, sc in f["scores"].items()]
    return csv_text(["fold", "origin", "train_start", "train_stop", "forecaster", *keys], rows)
