"""``rnnkit export MODEL --format onnx``: the model as an ONNX file, for ONNX Runtime and
other runtimes (needs ``pip install 'rnnkit[onnx]'``)."""

from __future__ import annotations

import argparse
import os
from typing import Any

import rnnkit as rk
from rnnkit.errors import ModelFileError

from .common import EXIT_OK, UsageError, add_command, emit_json, say

EPILOG = """examples:
  rnnkit export runs/classify-ecg-20250101-120000/model.safetensors --format onnx
  rnnkit export model.safetensors --format onnx --stream -o model-step.onnx
  rnnkit export model.safetensors --format onnx --lengths --probabilities
"""


def add_parser(sub: Any) -> None:
    p = add_command(sub, "export", "write a model in another format (ONNX)", __doc__, EPILOG)
    p.add_argument("model", metavar="MODEL", help="a .safetensors model file")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="output format")
    p.add_argument("-o", "--output", metavar="PATH",
                   help="output file (default: MODEL with .onnx, or -step.onnx with --stream)")
    p.add_argument("--stream", action="store_true",
                   help="the one-step graph with the state as input and output, for serving")
    p.add_argument("--lengths", action="store_true",
                   help="add a sequence_lens input for variable-length batches")
    p.add_argument("--probabilities", action="store_true",
                   help="add a probabilities output (softmax, or sigmoid for one output)")
    p.add_argument("--rnn-ops", choices=["auto", "native", "scan"], default="auto",
                   help="ONNX's RNN/LSTM/GRU operators or Scan loops (auto: native in float32)")


def run(args: argparse.Namespace) -> int:
    if not os.path.exists(args.model):
        raise ModelFileError(f"{args.model}: file not found")
    if args.stream and args.lengths:
        raise UsageError("--lengths needs the whole-sequence graph; drop --stream or --lengths")
    model = rk.load(args.model)
    out = args.output or os.path.splitext(args.model)[0] + ("-step" if args.stream else "") \
        + ".onnx"
    proto = model.to_onnx(out, stream=args.stream, lengths=args.lengths,
                          probabilities=args.probabilities, rnn_ops=args.rnn_ops)
    doc = {"file": out, "format": "onnx", "bytes": os.path.getsize(out),
           "inputs": [i.name for i in proto.graph.input],
           "outputs": [o.name for o in proto.graph.output]}
    if args.json:
        emit_json(doc)
    elif not getattr(args, "quiet", False):
        say(f"wrote {out} ({doc['bytes']:,} bytes): inputs {', '.join(doc['inputs'])}; "
            f"outputs {', '.join(doc['outputs'])}")
    return EXIT_OK
