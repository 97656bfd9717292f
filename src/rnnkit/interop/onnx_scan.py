"""One direction of a recurrent layer as an ONNX ``Scan`` whose body is the cell's step, written
as in ``cells/``: for the activations ONNX's RNN operators lack, for the variants they lack
(layer norm, projection, zoneout), in float64 (ONNX Runtime has no float64 RNN kernels) and
for ``rnn_ops="scan"``.

Outside the loop, for all steps at once (as ``layers/recurrent.py``): ``xz = x W_x^T + b``, or
with ``layer_norm`` ``xz = LN(x W_x^T; g_x) + b``. The body takes the states and ``xz_t`` (and
the mask ``m_t``) and gives the new states and ``h_t``. Variants, in the cells' order:

- ``layer_norm``: ``hz = LN(h_prev W_h^T; g_h)``; the LSTM's ``c`` goes through
  ``LN(c; g_c) + b_c`` before φ. ``LN`` is ONNX's ``LayerNormalization`` (opset 17) in
  float32; in float64 it is written out (ReduceMean, Sub, Mul, Sqrt, Div), because
  ``LayerNormalization``'s epsilon is a float32 attribute (1e-5 in float32 is 2.5e-13 off).
- ``peepholes``: ``z_i += P_i c_prev``, ``z_f += P_f c_prev``, ``z_o += P_o c``.
- ``proj_size``: ``h = (o φ(c)) W_hr^T``.
- ``zoneout`` (inference: its expectation): ``s = p s_prev + (1 - p) cell(s_prev)`` per state
  vector, before the mask.
- dropout and recurrent dropout are identities at inference: nothing is emitted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..cells.base import LN_EPS
from ..functional import get_activation
from .onnx_graph import Graph


def activations(layer: Any) -> list[str]:
    """The layer's activations in ONNX's order (canonical rnnkit names)."""
    act = get_activation(layer.activation).name
    if layer.kind == "RNN":
        return [act]
    gate = get_activation(layer.gate_activation).name
    return [gate, act, act] if layer.kind == "LSTM" else [gate, act]


def scan(g: Graph, layer: Any, x: str, ctx: Any, sfx: str, given: tuple | None):
    """One direction as a ``Scan`` over ``xz`` (and the mask), reversed within each
    sequence's length by ``ReverseSequence`` for the reverse direction → ``(hs, finals)``."""
    p = layer.params
    lens = ctx.lens
    if sfx and lens is None:
        lens = g.op("Expand", [ctx.time, ctx.batch], "lens")
    if sfx:
        x = g.op("ReverseSequence", [x, lens], batch_axis=1, time_axis=0)
    xz = g.op("MatMul", [x, g.const(p["W_x" + sfx].T, "W_xT")])
    bias = g.const(p["b" + sfx], "b") if layer.bias else None
    if layer.layer_norm:
        xz = layer_norm(g, xz, g.const(p["g_x" + sfx], "g_x"), bias)
    elif bias:
        xz = g.op("Add", [xz, bias], "xz")
    keys = list(layer.initial_options())
    if given is not None:
        s0 = list(given)
    else:
        s0 = [_initial(g, layer, key, ctx, sfx) for key in keys]
    body = _body(g, layer, sfx, masked=ctx.mask_bool is not None)
    scan_in = [xz] + ([ctx.mask_bool] if ctx.mask_bool is not None else [])
    outs = g.op("Scan", s0 + scan_in, "scan", n_out=len(keys) + 1, body=body,
                num_scan_inputs=len(scan_in))
    finals, hs = tuple(outs[: len(keys)]), outs[-1]
    if sfx:
        hs = g.op("ReverseSequence", [hs, lens], batch_axis=1, time_axis=0)
    return hs, finals


def layer_norm(b: Graph, a: str, gain: str, shift: str | None) -> str:
    """``gain * (a - mean(a)) / sqrt(var(a) + eps) (+ shift)`` over the last axis, as
    ``cells/base.layer_norm``."""
    if b.dtype == np.float32:
        return b.op("LayerNormalization", [a, gain] + ([shift] if shift else []), "ln",
                    axis=-1, epsilon=LN_EPS)
    d = b.op("Sub", [a, b.op("ReduceMean", [a], "mean", axes=[-1])], "centred")
    var = b.op("ReduceMean", [b.op("Mul", [d, d])], "var", axes=[-1])
    std = b.op("Sqrt", [b.op("Add", [var, b.const(LN_EPS, "eps")])], "std")
    y = b.op("Mul", [gain, b.op("Div", [d, std])], "ln")
    return b.op("Add", [y, shift], "ln") if shift else y


def _initial(g: Graph, layer: Any, key: str, ctx: Any, sfx: str) -> str:
    """The initial state ``key`` of direction ``sfx``, ``(B, n)``."""
    option, n = layer.initial_options()[key], layer._state_size(key)
    if isinstance(option, str) and option == "zeros":
        value = np.zeros((1, n))
    else:
        value = np.asarray(layer.params[key + sfx] if isinstance(option, str) else option)[None]
    shape = g.op("Concat", [ctx.batch, g.ints([1])], axis=0)
    return g.op("Expand", [g.const(value, key), shape], key)


def _body(outer: Graph, layer: Any, sfx: str, masked: bool) -> Any:
    """The cell's step as a Scan body: states and ``xz_t (B, G·H)`` (and ``m_t (B, 1)``) in,
    new states and ``h_t`` out. Weights are the outer graph's initializers."""
    b = Graph(outer.dtype, prefix=f"{outer.name('body')}_")
    kind, p = layer.kind, {k: layer.params[k + sfx] for k in layer._cell_keys}
    keys = list(layer.initial_options())
    s_in = [b.name(k) for k in keys]
    xz, m = b.name("xz_t"), b.name("m_t")
    hz = b.op("MatMul", [s_in[0], outer.const(p["W_h"].T, "W_hT")], "hz")
    if layer.layer_norm:
        hz = layer_norm(b, hz, outer.const(p["g_h"], "g_h"), None)
    step = {"RNN": _elman, "LSTM": _lstm, "GRU": _gru}[kind]
    new = step(b, outer, layer, p, xz, hz, s_in)
    for k, rate in enumerate(layer.zoneout):
        if rate:  # the expectation of zoneout's mask: keep a share p of the old state
            keep = np.asarray(rate, outer.dtype)
            new[k] = b.op("Add", [b.op("Mul", [outer.const(keep, "p_zone"), s_in[k]]),
                                  b.op("Mul", [outer.const(1 - keep, "q_zone"), new[k]])],
                          "zoneout")
    if masked:  # a padded step carries the state unchanged
        new = [b.op("Where", [m, v, s], "keep") for v, s in zip(new, s_in)]
    outs = [b.op("Identity", [v], "state") for v in new] + [b.op("Identity", [new[0]], "h_t")]
    sizes = [layer._state_size(k) for k in keys]
    inputs = [b.value_info(n, ["batch", s]) for n, s in zip(s_in, sizes)]
    inputs.append(b.value_info(xz, ["batch", None]))
    if masked:
        inputs.append(b.value_info(m, ["batch", 1], b.onnx.TensorProto.BOOL))
    outputs = [b.value_info(n, ["batch", s]) for n, s in zip(outs, [*sizes, sizes[0]])]
    return b.onnx.helper.make_graph(b.nodes, b.name("step"), inputs, outputs, b.inits)


def _elman(b: Graph, outer: Graph, layer: Any, p: dict, xz: str, hz: str, s_in: list) -> list:
    """h = σ(xz + h_prev W_h^T)"""
    return [b.act(activations(layer)[0], b.op("Add", [xz, hz], "a"))]


def _lstm(b: Graph, outer: Graph, layer: Any, p: dict, xz: str, hz: str, s_in: list) -> list:
    """i, f, g, o = γ, γ, φ, γ of z;  c = f c_prev + i g;  h = o φ(c) (W_hr^T)"""
    H, acts = layer.hidden, activations(layer)
    z = b.op("Split", [b.op("Add", [xz, hz], "z"), outer.ints([H] * 4)], n_out=4, axis=1)
    peep = None
    if layer.peepholes:  # z_i += P_i c_prev, z_f += P_f c_prev
        peep = b.op("Split", [outer.const(p["P"], "P"), outer.ints([H] * 3)], n_out=3,
                    axis=0)  # i, o, f
        z[0] = b.op("Add", [z[0], b.op("Mul", [peep[0], s_in[1]])])
        z[1] = b.op("Add", [z[1], b.op("Mul", [peep[2], s_in[1]])])
    i, f, gg = b.act(acts[0], z[0]), b.act(acts[0], z[1]), b.act(acts[1], z[2])
    c = b.op("Add", [b.op("Mul", [f, s_in[1]]), b.op("Mul", [i, gg])], "c")
    if peep is not None:  # z_o += P_o c, with the new c
        z[3] = b.op("Add", [z[3], b.op("Mul", [peep[1], c])])
    c_n = c
    if layer.layer_norm:
        c_n = layer_norm(b, c, outer.const(p["g_c"], "g_c"), outer.const(p["b_c"], "b_c"))
    h = b.op("Mul", [b.act(acts[0], z[3]), b.act(acts[2], c_n)], "m")
    if layer.proj_size:
        h = b.op("MatMul", [h, outer.const(p["W_hr"].T, "W_hrT")], "h")
    return [h, c]


def _gru(b: Graph, outer: Graph, layer: Any, p: dict, xz: str, hz: str, s_in: list) -> list:
    """r, u = γ(xz + hz);  n = φ(xz_n + r (hz_n + b_hn));  h = (1 - u) n + u h_prev"""
    H, acts = layer.hidden, activations(layer)
    xr, xu, xn = b.op("Split", [xz, outer.ints([H] * 3)], n_out=3, axis=1)
    hr, hu, hn = b.op("Split", [hz, outer.ints([H] * 3)], n_out=3, axis=1)
    if layer.bias:
        hn = b.op("Add", [hn, outer.const(p["b_hn"], "b_hn")])
    r = b.act(acts[0], b.op("Add", [xr, hr]))
    u = b.act(acts[0], b.op("Add", [xu, hu]))
    n = b.act(acts[1], b.op("Add", [xn, b.op("Mul", [r, hn])]))
    one_minus_u = b.op("Sub", [outer.const(1.0, "one"), u])
    return [b.op("Add", [b.op("Mul", [one_minus_u, n]), b.op("Mul", [u, s_in[0]])], "h")]
