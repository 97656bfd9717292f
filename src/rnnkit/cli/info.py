"""``rnnkit info MODEL``: layers, parameter counts, dtype and how the model was trained."""

from __future__ import annotations

import argparse
from typing import Any

import rnnkit as rk
from rnnkit.errors import ModelFileError

from .common import (
    EXIT_OK,
    add_command,
    emit_json,
    say,
    table,
)
from .metadata import check_metadata

EPILOG = """examples:
  rnnkit info runs/forecast-sunspots-20250101-120000/model.safetensors
  rnnkit info model.safetensors --json
"""


def add_parser(sub: Any) -> None:
    p = add_command(sub, "info", "describe a model file", __doc__, EPILOG)
    p.add_argument("model", metavar="MODEL", help="a .safetensors model file")


def _layer_row(i: int, layer: Any) -> list[Any]:
    cfg = layer.get_config()
    shown = {
        k: v
        for k, v in cfg.items()
        if k
        in (
            "hidden",
            "units",
            "activation",
            "return_sequences",
            "bidirectional",
            "vocab_size",
            "dim",
            "input_size",
            "p",
            "dropout",
            "recurrent_dropout",
            "zoneout",
            "layer_norm",
            "peepholes",
            "proj_size",
        )
        and v not in (None, False)
    }
    n = sum(v.size for v in layer.params.values())
    return [i, layer.kind, ", ".join(f"{k}={v}" for k, v in shown.items()), n]


def run(args: argparse.Namespace) -> int:
    model = rk.load(args.model)
    meta = getattr(model, "metadata", None)
    if isinstance(meta, dict) and "task" in meta:  # written by rnnkit train: check it all
        try:
            meta = check_metadata(meta, model)
        except ModelFileError as e:
            raise ModelFileError(f"{args.model}: {e}") from None
    else:  # a library user's own metadata: nothing of it is shown, so nothing is trusted
        meta = {}
    rows = [_layer_row(i, layer) for i, layer in enumerate(model.layers)]
    total = sum(r[3] for r in rows)
    summary = {
        k: meta[k]
        for k in (
            "task",
            "dataset",
            "window",
            "horizon",
            "target",
            "features",
            "classes",
            "seq_len",
        )
        if k in meta
    }
    if "vocab" in meta:
        summary["vocabulary"] = len(meta["vocab"]["tokens"])
    trained = meta.get("trained", {})
    if args.json:
        emit_json(
            {
                "file": args.model,
                "dtype": model.dtype.name,
                "parameters": total,
                "layers": [dict(zip(("index", "kind", "options", "parameters"), r)) for r in rows],
                "metadata": summary,
                "trained": trained,
            }
        )
        return EXIT_OK
    say(f"{args.model}: {len(rows)} layers, {total:,} parameters, {model.dtype.name}")
    say(table(["#", "layer", "options", "parameters"], rows))
    for k, v in summary.items():
        say(f"{k}: {v}")
    if trained:
        say(
            f"trained: {trained.get('epochs')} epochs in {trained.get('seconds')}s, "
            f"finished {trained.get('finished')} with rnnkit {trained.get('rnnkit')}"
            + (f" ({trained['stop_reason']})" if trained.get("stop_reason") else "")
        )
    return EXIT_OK
