"""``rnnkit predict MODEL DATA``: forecasts past the end of a series, or class labels.

Forecast models continue the series ``--steps`` steps: up to the horizon, the model's own
outputs; beyond it, one-step forecasts fed back as the newest inputs (a model with known-future
features reads them from DATA's rows after the last target value). Classifiers give one label
per sequence. The result is CSV, on stdout or in ``--output FILE``.
"""

from __future__ import annotations

import argparse
from typing import Any

from rnnkit.errors import DataError

from . import task_classify, task_forecast
from .common import (
    EXIT_OK,
    add_command,
    add_model_and_data,
    csv_text,
    emit_json,
    say,
    warn,
    write_text,
)
from .modelfile import load_data, load_trained
from .settings import _argparse_type, _positive_int

EPILOG = """examples:
  rnnkit predict runs/forecast-sunspots-20250101-120000/model.safetensors --steps 11
  rnnkit predict model.safetensors prices.csv --steps 30 --output forecast.csv
  rnnkit predict model.safetensors sales.csv --target units --date day --plot forecast.png
  rnnkit predict classifier.safetensors sequences.csv
"""


def add_parser(sub: Any) -> None:
    p = add_command(sub, "predict", "forecast or classify", __doc__, EPILOG)
    add_model_and_data(p, "a model.safetensors from rnnkit train")
    p.add_argument(
        "--steps",
        type=_argparse_type(_positive_int),
        default=None,
        metavar="N",
        help="forecast steps past the end of the series (default: the horizon)",
    )
    p.add_argument("--output", "-o", metavar="FILE", help="write the CSV here, not stdout")
    p.add_argument("--plot", metavar="FILE.png",
                   help="forecast: also draw the recent history and the forecast (with its "
                   "interval) into this PNG")


def run(args: argparse.Namespace) -> int:
    model, meta = load_trained(args.model)
    if meta["task"] == "charlm":
        raise DataError(f"{args.model} is a character model; use 'rnnkit generate' for text")
    record, name = load_data(args.data, meta, args)
    if meta["task"] == "forecast":
        steps = args.steps or meta["horizon"]
        if meta.get("series_ids"):  # a panel: one block of rows per series
            from . import task_panel

            if args.plot:
                raise DataError("--plot draws one series; a panel model forecasts many (use "
                                "the CSV)")
            each = task_panel.forecast_ahead(model, meta, record, steps)
            header, rows = _forecast_rows(meta, *each[0][1:])
            header = [meta["series_id"], *header]
            rows = [[sid, *r] for sid, *f in each for r in _forecast_rows(meta, *f)[1]]
        else:
            labels, values, quant = task_forecast.forecast_ahead(model, meta, record, steps)
            header, rows = _forecast_rows(meta, labels, values, quant)
            if args.plot:
                from . import plots

                plots.history_and_forecast(args.plot, record, meta, labels, values, quant,
                                           title=f"{name}: {steps} steps past the end")
    else:
        if args.steps is not None or args.plot:
            raise DataError("--steps and --plot are for forecast models; this model classifies")
        labels, proba = task_classify.predict_labels(model, meta, record)
        ids = getattr(record, "ids", None) or [str(i) for i in range(len(labels))]
        header = ["sequence_id", "predicted", "probability"]
        rows = [[i, c, p] for i, c, p in zip(ids, labels, proba)]
    if args.json:
        emit_json({"task": meta["task"], "data": name, "columns": header, "rows": rows})
    elif args.output:
        write_text(args.output, csv_text(header, rows))
        if not args.quiet:
            warn(f"wrote {len(rows)} rows to {args.output}")
    else:
        say(csv_text(header, rows).rstrip("\n"))
    return EXIT_OK


def _forecast_rows(meta: dict[str, Any], labels: list[str], values: Any, quant: Any
                   ) -> tuple[list[str], list[list[Any]]]:
    """The CSV header and rows of forecasts ``(steps, K)`` and quantiles ``(steps, K, Q)``."""
    targets = meta.get("targets") or [meta["target"]]
    header = ["step", "time", *(f"forecast_{t}" for t in targets)]
    rows = [[k + 1, t, *v] for k, (t, v) in enumerate(zip(labels, values))]
    if quant is not None:  # one column per quantile level: q0.1, q0.5, q0.9 (_target)
        tail = [f"_{t}" for t in targets] if len(targets) > 1 else [""]
        header += [f"q{q:g}{t}" for t in tail for q in meta["quantiles"]]
        rows = [r + [float(v) for v in q.reshape(-1)] for r, q in zip(rows, quant)]
    return header, rows
