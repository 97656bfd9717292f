"""``rnnkit evaluate MODEL DATA``: score a trained model on data, beside the baselines.

The data is read as at training (same target, features, scaler, window, vocabulary) and
every window, sequence or character of it is scored: for a fresh file that is all of it.
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import EXIT_OK, emit_json, output_flags, say, summary, table
from .modelfile import load_data, load_trained
from .train import TASKS

EPILOG = """examples:
  rnnkit evaluate runs/forecast-sunspots-20250101-120000/model.safetensors sunspots
  rnnkit evaluate model.safetensors new_prices.csv --json
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        parents=[output_flags()],
        help="score a model on data",
        description=summary(__doc__),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", help="a model.safetensors from rnnkit train")
    p.add_argument(
        "data",
        nargs="?",
        metavar="DATA",
        help="dataset name or file (default: the dataset it was trained on)",
    )


def run(args: argparse.Namespace) -> int:
    model, meta = load_trained(args.model)
    record, _ = load_data(args.data, meta)
    results = TASKS[meta["task"]].evaluate(model, meta, record)
    if args.json:
        emit_json({k: v for k, v in results.items() if k != "rows"})
        return EXIT_OK
    unit = f" ({results['unit']})" if results.get("unit") else ""
    cols = [c.upper() if c != "bits_per_char" else "bits/char" for c in results["columns"]]
    say(results["what"])
    say(table(["model" + unit, *cols], results["rows"]))
    return EXIT_OK
