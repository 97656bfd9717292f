"""One recurrent layer as ONNX: the RNN/LSTM/GRU operator where ONNX has the layer's
activations, else a ``Scan`` whose body is the cell's step, written as in ``cells/``.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..functional import get_activation
from .onnx_graph import Graph

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


def activations(layer: Any) -> list[str]:
    """The layer's activations in ONNX's order (canonical rnnkit names)."""
    act = get_activation(layer.activation).name
    if layer.kind == "RNN":
        return [act]
    gate = get_activation(layer.gate_activation).name
    return [gate, act, act] if layer.kind == "LSTM" else [gate, act]


def native(layer: Any) -> bool:
    return all(a in RNN_ACTS for a in activations(layer))


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
    runs = [_scan(g, layer, x, ctx, sfx, None if given is None else given[k])
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


def _scan(g: Graph, layer: Any, x: str, ctx: Context, sfx: str, given: tuple | None):
    """One direction as a ``Scan`` over ``xz = x W_x^T + b`` (and the mask), reversed within
    each sequence's length by ``ReverseSequence`` for the reverse direction."""
    p = layer.params
    lens = ctx.lens
    if sfx and lens is None:
        lens = g.op("Expand", [ctx.time, ctx.batch], "lens")
    if sfx:
        x = g.op("ReverseSequence", [x, lens], batch_axis=1, time_axis=0)
    xz = g.op("MatMul", [x, g.const(p["W_x" + sfx].T, "W_xT")])
    if layer.bias:
        xz = g.op("Add", [xz, g.const(p["b" + sfx], "b")], "xz")
    keys = list(layer.initial_options())
    if given is not None:
        s0 = list(given)
    else:
        s0 = [g.op("Squeeze", [_one_direction(g, layer, key, ctx, sfx), g.ints([0])])
              for key in keys]
    body = _body(g, layer, sfx, masked=ctx.mask_bool is not None)
    scan_in = [xz] + ([ctx.mask_bool] if ctx.mask_bool is not None else [])
    outs = g.op("Scan", s0 + scan_in, "scan", n_out=len(keys) + 1, body=body,
                num_scan_inputs=len(scan_in))
    finals, hs = tuple(outs[: len(keys)]), outs[-1]
    if sfx:
        hs = g.op("ReverseSequence", [hs, lens], batch_axis=1, time_axis=0)
    return hs, finals


def _one_direction(g: Graph, layer: Any, key: str, ctx: Context, sfx: str) -> str:
    option = layer.initial_options()[key]
    H = layer.hidden
    if isinstance(option, str) and option == "zeros":
        value = g.const(np.zeros((1, 1, H)), key)
    else:
        v = layer.params[key + sfx] if isinstance(option, str) else option
        value = g.const(np.asarray(v)[None, None, :], key)
    shape = g.op("Concat", [g.ints([1]), ctx.batch, g.ints([1])], axis=0)
    return g.op("Expand", [value, shape], key)


def _body(outer: Graph, layer: Any, sfx: str, masked: bool) -> Any:
    """The cell's step as a Scan body: states and ``xz_t (B, G·H)`` (and ``m_t (B, 1)``) in,
    new states and ``h_t`` out. Weights are the outer graph's initializers."""
    b = Graph(outer.dtype, prefix=f"{outer.name('body')}_")
    H, kind, p = layer.hidden, layer.kind, layer.params
    keys = list(layer.initial_options())
    s_in = [b.name(k) for k in keys]
    xz, m = b.name("xz_t"), b.name("m_t")
    W_hT = outer.const(p["W_h" + sfx].T, "W_hT")
    acts = activations(layer)
    hz = b.op("MatMul", [s_in[0], W_hT], "hz")
    if kind == "RNN":  # h = σ(xz + h_prev W_h^T)
        new = [b.act(acts[0], b.op("Add", [xz, hz], "a"))]
    elif kind == "LSTM":  # i, f, g, o = γ, γ, φ, γ of z;  c = f c_prev + i g;  h = o φ(c)
        z = b.op("Split", [b.op("Add", [xz, hz], "z"), outer.ints([H] * 4)], n_out=4, axis=1)
        peep = None
        if getattr(layer, "peepholes", False):  # z_i += P_i c_prev, z_f += P_f c_prev
            peep = b.op("Split", [outer.const(p["P" + sfx], "P"), outer.ints([H] * 3)],
                        n_out=3, axis=0)  # i, o, f
            z[0] = b.op("Add", [z[0], b.op("Mul", [peep[0], s_in[1]])])
            z[1] = b.op("Add", [z[1], b.op("Mul", [peep[2], s_in[1]])])
        i, f, gg = b.act(acts[0], z[0]), b.act(acts[0], z[1]), b.act(acts[1], z[2])
        c = b.op("Add", [b.op("Mul", [f, s_in[1]]), b.op("Mul", [i, gg])], "c")
        if peep is not None:  # z_o += P_o c, with the new c
            z[3] = b.op("Add", [z[3], b.op("Mul", [peep[1], c])])
        new = [b.op("Mul", [b.act(acts[0], z[3]), b.act(acts[2], c)], "h"), c]
    else:  # r, u = γ(xz + hz);  n = φ(xz_n + r (hz_n + b_hn));  h = (1 - u) n + u h_prev
        xr, xu, xn = b.op("Split", [xz, outer.ints([H] * 3)], n_out=3, axis=1)
        hr, hu, hn = b.op("Split", [hz, outer.ints([H] * 3)], n_out=3, axis=1)
        if layer.bias:
            hn = b.op("Add", [hn, outer.const(p["b_hn" + sfx], "b_hn")])
        r = b.act(acts[0], b.op("Add", [xr, hr]))
        u = b.act(acts[0], b.op("Add", [xu, hu]))
        n = b.act(acts[1], b.op("Add", [xn, b.op("Mul", [r, hn])]))
        one_minus_u = b.op("Sub", [outer.const(1.0, "one"), u])
        new = [b.op("Add", [b.op("Mul", [one_minus_u, n]), b.op("Mul", [u, s_in[0]])], "h")]
    if masked:  # a padded step carries the state unchanged
        new = [b.op("Where", [m, v, s], "keep") for v, s in zip(new, s_in)]
    outs = [b.op("Identity", [v], "state") for v in new] + [b.op("Identity", [new[0]], "h_t")]
    helper = b.onnx.helper
    inputs = [b.value_info(n, ["batch", H]) for n in s_in] + [b.value_info(xz, ["batch", None])]
    if masked:
        inputs.append(b.value_info(m, ["batch", 1], b.onnx.TensorProto.BOOL))
    outputs = [b.value_info(n, ["batch", H]) for n in outs]
    return helper.make_graph(b.nodes, b.name("step"), inputs, outputs, b.inits)
