"""``rnnkit diagnose``: gradient flow of a saved model on data, or of a fresh model.

Two forms::

    rnnkit diagnose MODEL DATA [--out flow.png] [--json]
    rnnkit diagnose --cell rnn --hidden 64 --seq-len 200 [--activation tanh]
                    [--init orthogonal|identity] [--scale 1.0] [--out flow.png] [--json]

``DATA`` is an ``.npz`` with ``X`` and ``y`` (see ``rnnkit.data.load_npz``) or a bundled
dataset name (``rnnkit.data.load_dataset``; a series is cut into windows of ``--seq-len``).
The second form builds an untrained model on synthetic data (standard normal inputs, a
last-step regression target), which shows what an initialisation does to the gradient.

Errors go through ``rnnkit.cli.main`` like every command's: exit 3 for bad input (data,
options), 4 for a bad model file.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from .common import (
    EXIT_OK,
    add_command,
    say,
    write_text,
)

CELLS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
EPILOG = """examples:
  rnnkit diagnose --cell rnn --hidden 64 --seq-len 200            # a fresh tanh layer
  rnnkit diagnose --cell rnn --activation relu --init identity --scale 1.1 --out flow.png
  rnnkit diagnose runs/X/model.safetensors sunspots --seq-len 22 --json
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``diagnose`` on an ``argparse`` subparsers object."""
    p = add_command(subparsers, "diagnose",
                    "gradient flow: vanishing / exploding gradients of a recurrent model",
                    __doc__, EPILOG)
    p.add_argument("model", nargs="?", help="a model file written by rnnkit (safetensors)")
    p.add_argument("data", nargs="?", help="an .npz with X and y, or a bundled dataset name")
    p.add_argument("--cell", choices=sorted(CELLS), help="diagnose a fresh model of this cell")
    p.add_argument("--hidden", type=int, default=64, help="hidden units of the fresh model")
    p.add_argument("--seq-len", type=int, default=100,
                   help="sequence length (synthetic data, or windows of a series)")
    p.add_argument("--activation", default="tanh", help="activation of the fresh model")
    p.add_argument("--init", default="orthogonal", help="recurrent_init of the fresh model")
    p.add_argument("--scale", type=float, default=1.0, help="multiply W_h by this after init")
    p.add_argument("--features", type=int, default=1, help="input features (synthetic data)")
    p.add_argument("--batch", type=int, default=32, help="sequences used for the diagnosis")
    p.add_argument("--loss", default=None, help="loss (default: the model's, else mse/"
                   "cross_entropy from the targets)")
    p.add_argument("--samples", type=int, default=4,
                   help="sequences used for Jacobian norms and Lyapunov exponents")
    p.add_argument("--seed", type=int, default=0, help="seed for weights and synthetic data")
    p.add_argument("--out", default=None, help="write the figure to this PNG")
    p.add_argument("--save-json", default=None, metavar="PATH",
                   help="also write the report as JSON to this file")
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``diagnose``; returns the exit code (errors propagate to ``rnnkit.cli.main``)."""
    from ..diagnostics import gradient_flow

    model, X, y, loss = _fresh(args) if args.cell else _from_files(args)
    report = gradient_flow(model, X, y, loss=loss, max_samples=args.samples)
    say(report.to_json() if args.json else report.summary())
    if args.save_json:
        write_text(args.save_json, report.to_json())
    if args.out:
        report.plot(args.out)
    if not args.json and not args.quiet:
        for path in (args.save_json, args.out):
            if path:
                print(f"wrote {path}", file=sys.stderr)
    return EXIT_OK


def _fresh(args: argparse.Namespace):
    import rnnkit as rk

    if args.model or args.data:
        raise ValueError("diagnose: give either MODEL DATA or --cell, not both")
    for name in ("hidden", "seq_len", "features", "batch"):
        if getattr(args, name) < 1:
            raise ValueError(f"diagnose: --{name.replace('_', '-')} must be >= 1, "
                             f"got {getattr(args, name)}")
    if not (np.isfinite(args.scale) and args.scale > 0):
        raise ValueError(f"diagnose: --scale must be a positive number, got {args.scale}")
    kind = getattr(rk, CELLS[args.cell])
    options = {"activation": args.activation} if args.cell == "rnn" else {}
    layer = kind(args.hidden, recurrent_init=args.init, **options)
    model = rk.Sequential([layer, rk.Dense(1)], seed=args.seed, dtype="float64")
    model.build(args.features)
    model.parameters()["0.W_h"][...] *= args.scale
    rng = np.random.default_rng(args.seed)
    X = rng.standard_normal((args.batch, args.seq_len, args.features))
    y = rng.standard_normal((args.batch, 1))
    return model, X, y, args.loss or "mse"


def _from_files(args: argparse.Namespace):
    import rnnkit as rk

    from ..data import Sequences, Series, load_dataset, load_npz, make_windows

    if not (args.model and args.data):
        raise ValueError("diagnose: give MODEL DATA (a model file and an .npz or dataset "
                         "name), or --cell rnn|lstm|gru for a fresh model")
    model = rk.load(args.model)
    data = load_npz(args.data) if str(args.data).endswith(".npz") else load_dataset(args.data)
    if isinstance(data, Series):
        X, y = make_windows(data.values, window=args.seq_len)
        y = y.reshape(len(y), -1)
    elif isinstance(data, Sequences):
        X, y = data.X, data.y
    else:
        raise ValueError(f"diagnose: dataset {args.data!r} is text; give an .npz with X, y")
    n = min(args.batch, len(y))
    X = X[:n] if isinstance(X, np.ndarray) else list(X[:n])
    loss = args.loss or getattr(model, "metadata", {}).get("loss")
    if loss is None:
        loss = "cross_entropy" if np.asarray(y).dtype.kind in "iub" else "mse"
    return model, X, np.asarray(y)[:n], loss
