"""``rnnkit evaluate MODEL DATA``: score a trained model on data, beside the baselines.

The data is read as at training (same target, features, scaler, window, vocabulary) and
every window, sequence or character of it is scored: for a fresh file that is all of it.
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import (
    EXIT_OK,
    add_command,
    add_model_and_data,
    emit_json,
    say,
    table,
)
from .forecast_scores import LABELS, text
from .forecast_scores import marks as forecast_marks
from .modelfile import load_data, load_trained
from .train import TASKS

EPILOG = """examples:
  rnnkit evaluate runs/forecast-sunspots-20250101-120000/model.safetensors sunspots
  rnnkit evaluate model.safetensors new_prices.csv --json
"""


def add_parser(sub: Any) -> None:
    p = add_command(sub, "evaluate", "score a model on data", __doc__, EPILOG)
    add_model_and_data(p, "a model.safetensors from rnnkit train")


def run(args: argparse.Namespace) -> int:
    model, meta = load_trained(args.model)
    record, _ = load_data(args.data, meta, args)
    results = TASKS[meta["task"]].evaluate(model, meta, record)
    if args.json:
        emit_json({k: v for k, v in results.items() if k != "rows"})
        return EXIT_OK
    unit = f" ({results['unit']})" if results.get("unit") else ""
    cols = [LABELS.get(c, c.replace("_", " ").upper()) if c != "bits_per_char" else "bits/char"
            for c in results["columns"]]
    say(results["what"])
    marks = forecast_marks(results) if results["task"] == "forecast" else None
    say(table(["model" + unit, *cols], results["rows"], marks))
    if results["task"] == "forecast":
        say("\n".join(text(results)))
    elif results["task"] == "classify":
        from .task_classify import text as classify_text

        say("\n".join(classify_text(results)))
    return EXIT_OK
