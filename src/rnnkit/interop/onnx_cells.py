"""One recurrent layer as ONNX: the RNN/LSTM/GRU operator where ONNX has the layer's
activations and options, else a ``Scan`` whose body is the cell's step (``onnx_scan.py``).

Mapping (rnnkit keeps PyTorch's layout ``(out, in)``; ONNX wants the same, per direction):

==========  ==================  ===================  ===========================================
layer       rnnkit gates        ONNX gates           biases ``B = [Wb, Rb]``
==========  ==================  ===================  ===========================================
RNN         (one)               (one)                ``Wb = b``, ``Rb = 0``
LSTM        i, f, g, o          i, o, f, c           ``Wb = b`` reordered, ``Rb = 0``
GRU         r, z, n             z, r, h              ``Wb = b``, ``Rb = [0, 0, b_hn]``;
                                                     ``linear_before_reset=1`` (reset after)
==========  ==================  ===================  ===========================================

Activations: ONNX's own (``Tanh``, ``Sigmoid``, ``Relu``, ``Affine`` 1·x+0 for identity,
``LeakyRelu`` 0.01, ``Elu`` 1.0, ``Softsign``); ``hard_tanh`` has none, so that layer is a
``Scan``. LSTM activations are ``[gate, act, act]`` (ONNX's f, g, h), GRU ``[gate, act]``.

Variants: peepholes are the LSTM operator's ``P`` (rnnkit keeps ONNX's order i, o, f); layer
norm, projection and zoneout have no operator form, so such a layer is a ``Scan``
(``onnx_scan.py``); dropout and recurrent dropout are identities at inference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .onnx_graph import Graph
from .onnx_scan import activations, scan

# rnnkit activation -> (ONNX RNN-family activation name, alpha, beta)
RNN_ACTS: dict[str, tuple[str, float | None, float | None]] = {
    "tanh": ("Tanh", None, None), "sigmoid": ("Sigmoid", None, None),
    "relu": ("Relu", None, None), "identity": ("Affine", 1.0, 0.0),
    "leaky_relu": ("LeakyRelu", 0.01, None), "elu": ("Elu", 1.0, None),
    "softsign": ("Softsign", None, None),
}
GATE_ORDER = {"RNN": [0], "LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2]}  # ONNX block k = rnnkit's


@dataclass
class Context:
    """What every layer of one graph shares: the batch size as a 1-D int64 tensor, the time
    length likewise, the lengths ``(B,)`` and the masks ``(T, B, 1)`` (float and bool) when
    the graph takes ``sequence_lens``."""

    batch: str
    time: str
    lens: str | None = None
    lens32: str | None = None  # the RNN operators take int32 lengths
    scan: bool = False  # every recurrent layer as a Scan, even where ONNX has its operator
    mask: str | None = None
    mask_bool: str | None = None


def native(layer: Any) -> bool:
    """Whether ONNX's operator computes the layer: its activations, no variant but peepholes."""
    variants = layer.layer_norm or layer.proj_size or any(layer.zoneout)
    return not variants and all(a in RNN_ACTS for a in activations(layer))


def reorder(a: np.ndarray, kind: str, H: int) -> np.ndarray:
    return np.concatenate([a[k * H : (k + 1) * H] for k in GATE_ORDER[kind]], axis=0)


def initial(g: Graph, layer: Any, key: str, ctx: Context, given: list | None, n: int) -> str:
    """The ``(directions, B, H)`` initial state ``key`` ("h0"/"c0"), or "" for zeros."""
    if given is not None:
        parts = [g.op("Unsqueeze", [s[n], g.ints([0])]) for s in given]
        return parts[0] if len(parts) == 1 else g.op("Concat", parts, axis=0)
    option = layer.initial_options()[key]
    if isinstance(option, str) and option == "zeros":
        return ""
    rows = [layer.params[key + sfx] if isinstance(option, str) else option
            for sfx in layer.directions]
    value = g.const(np.stack(rows)[:, None, :], key)  # (directions, 1, H)
    shape = g.op("Concat", [g.ints([1]), ctx.batch, g.ints([1])], axis=0)
    return g.op("Expand", [value, shape], key)


def recurrent(g: Graph, layer: Any, x: str, ctx: Context, given: list | None):
    """``x (T, B, D)`` → ``(h_seq (T, B, dirs·H), finals)``, ``finals`` a list over directions
    of state tuples ``(h (B, H)[, c (B, H)])``."""
    if native(layer) and not ctx.scan:
        return _operator(g, layer, x, ctx, given)
    runs = [scan(g, layer, x, ctx, sfx, None if given is None else given[k])
            for k, sfx in enumerate(layer.directions)]
    h_seq = runs[0][0] if len(runs) == 1 else g.op("Concat", [r[0] for r in runs], axis=2)
    return h_seq, [r[1] for r in runs]


def _operator(g: Graph, layer: Any, x: str, ctx: Context, given: list | None):
    H, kind, p = layer.hidden, layer.kind, layer.params
    dirs = layer.directions
    W = g.const(np.stack([reorder(p["W_x" + s], kind, H) for s in dirs]), "W")
    R = g.const(np.stack([reorder(p["W_h" + s], kind, H) for s in dirs]), "R")
    B = ""
    if layer.bias:
        rb = [np.zeros_like(p["b" + s]) for s in dirs]
        if kind == "GRU":
            for r, s in zip(rb, dirs):
                r[2 * H :] = p["b_hn" + s]
        B = g.const(np.stack([np.concatenate([reorder(p["b" + s], kind, H), reorder(r, kind, H)])
                              for s, r in zip(dirs, rb)]), "B")
    keys = list(layer.initial_options())
    inits = [initial(g, layer, key, ctx, given, n) for n, key in enumerate(keys)]
    inputs = [x, W, R, B, ctx.lens32 or "", *inits]
    if getattr(layer, "peepholes", False):  # rnnkit's P is in ONNX's order i, o, f
        inputs.append(g.const(np.stack([p["P" + s] for s in dirs]), "P"))
    while inputs[-1] == "":
        inputs.pop()
    acts = [RNN_ACTS[a] for a in activations(layer)] * len(dirs)
    attrs: dict[str, Any] = {"hidden_size": H, "activations": [a[0] for a in acts],
                             "direction": "bidirectional" if layer.bidirectional else "forward"}
    alpha = [a[1] for a in acts if a[1] is not None]
    beta = [a[2] for a in acts if a[2] is not None]
    if alpha:
        attrs["activation_alpha"] = alpha
    if beta:
        attrs["activation_beta"] = beta
    if kind == "GRU":
        attrs["linear_before_reset"] = 1
    outs = g.op(kind, inputs, kind.lower(), n_out=1 + len(keys), **attrs)
    Y, finals_all = outs[0], outs[1:]
    h_seq = g.op("Reshape", [g.op("Transpose", [Y], perm=[0, 2, 1, 3]), g.ints([0, 0, -1])])
    finals = [tuple(g.op("Gather", [f, g.const(np.int64(k), "k", np.int64)], axis=0)
                    for f in finals_all) for k in range(len(dirs))]
    return h_seq, finals
