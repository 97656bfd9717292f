"""``rnnkit generate MODEL``: sample text from a character model, one step at a time.

The prime text is fed through ``model.stream()``; each next character is drawn from the
softmax of the logits divided by ``--temperature`` (0: always the likeliest character).
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from rnnkit.data import Vocab
from rnnkit.errors import DataError

from .common import (
    EXIT_OK,
    add_command,
    emit_json,
    say,
)
from .modelfile import load_trained
from .settings import _argparse_type, _non_negative_int, _positive_int
from .task_charlm import sample

EPILOG = """examples:
  rnnkit generate runs/charlm-pydoc-20250101-120000/model.safetensors --prime "def " \\
      --length 300 --temperature 0.7
"""


def _temperature(text: str) -> float:
    v = float(text)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"expected a number >= 0, got {text!r}")
    return v


def add_parser(sub: Any) -> None:
    p = add_command(sub, "generate", "sample text from a model", __doc__, EPILOG)
    p.add_argument("model", metavar="MODEL", help="a charlm model.safetensors")
    p.add_argument("--prime", default="", help="text to start from (default: a new line)")
    p.add_argument(
        "--length",
        type=_argparse_type(_positive_int),
        default=400,
        metavar="N",
        help="characters to generate (default: 400)",
    )
    p.add_argument(
        "--temperature",
        type=_argparse_type(_temperature),
        default=0.8,
        metavar="T",
        help="sampling temperature, 0 = greedy (default: 0.8)",
    )
    p.add_argument(
        "--seed",
        type=_argparse_type(_non_negative_int),
        default=0,
        metavar="N",
        help="random seed (default: 0)",
    )


def run(args: argparse.Namespace) -> int:
    model, meta = load_trained(args.model)
    if meta["task"] != "charlm":
        raise DataError(
            f"{args.model} is a {meta['task']} model; generate needs a character "
            "model (rnnkit train TEXT --task charlm)"
        )
    text = sample(
        model, Vocab.from_dict(meta["vocab"]), args.prime, args.length, args.temperature, args.seed
    )
    if args.json:
        emit_json(
            {"prime": args.prime, "text": text, "temperature": args.temperature, "seed": args.seed}
        )
    else:
        say(args.prime + text)
    return EXIT_OK
