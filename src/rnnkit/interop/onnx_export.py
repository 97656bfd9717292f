"""``Sequential`` → an ONNX model, with the ``onnx`` package's graph API (no PyTorch).

The graph computes what ``model.predict`` computes, batch-first at its boundary:

- input ``X (batch, time, D)`` (``ids (batch, time)`` int64 for an ``Embedding``), both axes
  dynamic; with ``lengths=True`` also ``sequence_lens (batch,)`` int64, as ``predict(X,
  lengths=...)``; output ``output``, as ``predict`` returns it; ``probabilities=True`` adds
  ``probabilities`` (softmax, or sigmoid for one output, as ``predict_proba``); every layer
  with ``return_state=True`` adds ``state.<layer>.<h|c>[_reverse]``.
- ``stream=True``: one step, as ``model.stream().step``: input ``x (batch, D)`` (``(batch,)``
  ids) and ``state_in.<layer>.<h|c> (batch, H)`` (``h`` is ``(batch, P)`` for an LSTM with
  ``proj_size=P``) for every recurrent layer; outputs
  ``output (batch, F)`` and ``state_out.<layer>.<h|c>``. The first step's state is the layer's
  initial state (zeros, or ``h0``/``c0``): ``initial_stream_state(model, batch)``.

Internally time-major ``(T, B, ·)``, as rnnkit. The recurrent mappings are in
``onnx_cells.py``; ``docs/onnx.md`` has the tables.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from ..layers import Dense, Embedding, Recurrent
from .onnx_cells import Context, recurrent
from .onnx_graph import IR_VERSION, OPSET, Graph

if TYPE_CHECKING:  # Sequential.to_onnx calls this module
    from ..model import Sequential

# options each layer kind exports; any other option with a non-default value is refused
KNOWN_OPTIONS: dict[str, frozenset[str]] = {
    "RNN": frozenset({"activation"}),
    "GRU": frozenset({"activation", "gate_activation", "layer_norm"}),
    "LSTM": frozenset({"activation", "gate_activation", "forget_bias", "c0", "peepholes",
                       "layer_norm", "proj_size"}),
    "Dense": frozenset({"units", "activation", "bias", "kernel_init", "input_size"}),
    "Embedding": frozenset({"vocab_size", "dim"}),
}
RECURRENT_OPTIONS = frozenset({
    "hidden", "output", "return_sequences", "return_state", "bidirectional", "bias",
    "kernel_init", "recurrent_init", "bias_init", "input_size", "readout", "h0",
    "dropout", "recurrent_dropout", "zoneout"})  # noise acts in fit; predict: its expectation
IDENTITY_AT_INFERENCE = ("Dropout",)  # layers that predict() passes through unchanged
MAX_BYTES = 2**31 - 1  # protobuf's limit for one serialized message


def check_exportable(model: Sequential) -> None:
    """Raise ``ValueError`` naming the first layer and option ONNX export cannot map."""
    if not isinstance(getattr(model, "layers", None), list):  # not a Sequential
        raise TypeError(f"to_onnx: expected an rnnkit Sequential, got {type(model).__name__}")
    for i, layer in enumerate(model.layers):
        kind = layer.kind
        if kind in IDENTITY_AT_INFERENCE:
            continue
        if kind not in KNOWN_OPTIONS:
            raise ValueError(f"to_onnx: layer {i} ({kind}) has no ONNX mapping")
        known = KNOWN_OPTIONS[kind] | (RECURRENT_OPTIONS if isinstance(layer, Recurrent)
                                       else frozenset())
        for key, value in layer.get_config().items():
            if key not in known and not _is_default(value):
                raise ValueError(f"to_onnx: layer {i} ({kind}) option {key}={value!r} has no "
                                 "ONNX mapping yet; export a model without it")
    model._require_built()


def _is_default(value: Any) -> bool:
    """An option left off: None, False, 0, or a list of zeros (zoneout's ``(p_h, p_c)``)."""
    values = value if isinstance(value, (list, tuple)) else [value]
    return all(v is None or (isinstance(v, (bool, int, float)) and v == 0) for v in values)


def to_onnx(model: Sequential, path: str | os.PathLike[str] | None = None, *,
            stream: bool = False, lengths: bool = False, probabilities: bool = False,
            rnn_ops: str = "auto") -> Any:
    """The model as an ``onnx.ModelProto`` (checked with ``full_check``), written atomically
    to ``path`` when given.

    Args:
        model: a built ``Sequential``.
        path: where to write the ``.onnx`` file (optional).
        stream: the one-step graph with the state as input and output (no bidirectional
            layer), instead of the whole-sequence graph.
        lengths: add the ``sequence_lens`` input (variable lengths, as ``predict``'s
            ``lengths=``); not with ``stream``.
        probabilities: add the ``probabilities`` output.
        rnn_ops: ``"auto"`` (``"native"`` in float32, ``"scan"`` in float64: ONNX Runtime
            has no float64 RNN/LSTM/GRU kernels), ``"native"`` (ONNX's RNN/LSTM/GRU
            operators wherever they have the layer's activations, a ``Scan`` elsewhere) or
            ``"scan"`` (a ``Scan`` for every recurrent layer: for runtimes without those
            operators, or that implement them partly, as ``onnx.reference`` does).

    Raises:
        ValueError: a layer or option without an ONNX mapping, naming it; ``stream`` with a
            bidirectional layer; a model over protobuf's 2 GiB.
    """
    check_exportable(model)
    if rnn_ops not in ("auto", "native", "scan"):
        raise ValueError(f"to_onnx: rnn_ops must be 'auto', 'native' or 'scan', got {rnn_ops!r}")
    if rnn_ops == "auto":
        rnn_ops = "native" if model.dtype == np.float32 else "scan"
    if stream and lengths:
        raise ValueError("to_onnx: lengths=True needs the whole-sequence graph, not stream=True")
    if stream:
        model.stream()  # the same check as streaming in rnnkit: no bidirectional layer
    g = Graph(model.dtype)
    onnx = g.onnx
    ids = model.takes_ids
    in_elem = onnx.TensorProto.INT64 if ids else g.elem
    D = None if ids else model.layers[0].input_size
    inputs, outputs = [], []
    if stream:
        inputs.append(g.value_info("x", ["batch"] if ids else ["batch", D], in_elem))
        x = g.op("Unsqueeze", ["x", g.ints([0])], "x_tm")  # (1, B[, D])
    else:
        inputs.append(g.value_info("X", ["batch", "time"] + ([] if ids else [D]), in_elem))
        x = g.op("Transpose", ["X"], "x_tm", perm=[1, 0] if ids else [1, 0, 2])
    ctx = Context(batch=g.op("Shape", [x], "batch", start=1, end=2),
                  time=g.op("Shape", [x], "time", start=0, end=1), scan=rnn_ops == "scan")
    if lengths:
        inputs.append(g.value_info("sequence_lens", ["batch"], onnx.TensorProto.INT64))
        ctx.lens = "sequence_lens"
        ctx.lens32 = g.op("Cast", [ctx.lens], "lens32", to=onnx.TensorProto.INT32)
        steps = g.op("Range", [g.const(np.int64(0), "zero", np.int64),
                               g.op("Squeeze", [ctx.time, g.ints([0])]),
                               g.const(np.int64(1), "one", np.int64)], "steps")
        less = g.op("Less", [g.op("Unsqueeze", [steps, g.ints([1])]), ctx.lens])  # (T, B)
        ctx.mask_bool = g.op("Unsqueeze", [less, g.ints([2])], "mask_bool")  # (T, B, 1)
        ctx.mask = g.op("Cast", [ctx.mask_bool], "mask", to=g.elem)
    is_seq = True
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Embedding):
            x = g.op("Gather", [g.const(layer.params["W"], "embedding"), x], "embedded")
            x = _masked(g, x, ctx)
        elif isinstance(layer, Dense):
            x = dense(g, layer, x)
            x = _masked(g, x, ctx) if is_seq else x
        elif isinstance(layer, Recurrent):
            given = None
            if stream:
                given = [tuple(f"state_in.{i}.{n}" for n in layer.cell.state_names)]
                inputs += [g.value_info(n, ["batch", size]) for n, size in
                           zip(given[0], _state_sizes(layer))]
            h_seq, finals = recurrent(g, layer, x, ctx, given)
            h_seq = _masked(g, h_seq, ctx)
            if layer.return_sequences:
                x = h_seq
            else:
                hs = [f[0] for f in finals]
                x = hs[0] if len(hs) == 1 else g.op("Concat", hs, "h_last", axis=1)
            is_seq = layer.return_sequences
            if layer.output == "y":
                x = dense(g, layer.readout, x)
                x = _masked(g, x, ctx) if is_seq else x
            prefix = "state_out" if stream else "state"
            if stream or layer.return_state:
                for sfx, state in zip(layer.directions, finals):
                    for n, v, size in zip(layer.cell.state_names, state, _state_sizes(layer)):
                        name = f"{prefix}.{i}.{n}{sfx}"
                        g.op("Identity", [v], outputs=[name])
                        outputs.append(g.value_info(name, ["batch", size]))
    F = _out_size(model)
    if is_seq:
        x = g.op("Squeeze", [x, g.ints([0])]) if stream else g.op("Transpose", [x],
                                                                   perm=[1, 0, 2])
    shape = ["batch", F] if stream or not is_seq else ["batch", "time", F]
    g.op("Identity", [x], outputs=["output"])
    outputs.insert(0, g.value_info("output", shape))
    if probabilities:
        g.op("Sigmoid" if F == 1 else "Softmax", [x], outputs=["probabilities"],
             **({} if F == 1 else {"axis": -1}))
        outputs.insert(1, g.value_info("probabilities", shape))
    graph = onnx.helper.make_graph(g.nodes, "rnnkit_stream" if stream else "rnnkit", inputs,
                                   outputs, g.inits)
    proto = onnx.helper.make_model(graph, producer_name="rnnkit", ir_version=IR_VERSION,
                                   opset_imports=[onnx.helper.make_opsetid("", OPSET)])
    if proto.ByteSize() > MAX_BYTES:
        raise ValueError(f"to_onnx: the model takes {proto.ByteSize()} bytes, over protobuf's "
                         "2 GiB limit for one file")
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        from ..fileio import write_atomic

        write_atomic(path, proto.SerializeToString())
    return proto


def dense(g: Graph, layer: Dense, x: str) -> str:
    """``act(x W^T + b)`` on the last axis of ``x`` (2-D or 3-D)."""
    a = g.op("MatMul", [x, g.const(layer.params["W"].T, "W_T")], "xW")
    if layer.bias:
        a = g.op("Add", [a, g.const(layer.params["b"], "b")], "a")
    if layer.activation == "softmax":
        return g.op("Softmax", [a], "softmax", axis=-1)
    from ..functional import get_activation

    return g.act(get_activation(layer.activation).name, a)


def _state_sizes(layer: Recurrent) -> list[int]:
    """Sizes of the state vectors, h first (``proj_size`` for a projecting LSTM's h)."""
    return [layer._state_size(key) for key in layer.initial_options()]


def _masked(g: Graph, x: str, ctx: Context) -> str:
    return x if ctx.mask is None else g.op("Mul", [x, ctx.mask], "masked")


def _out_size(model: Sequential) -> int:
    size = model.layers[0].input_size
    for layer in model.layers:
        _, size = layer.param_shapes(size)
    return size


def initial_stream_state(model: Sequential, batch: int) -> dict[str, np.ndarray]:
    """The ``state_in.*`` feeds for a stream graph's first step: each layer's initial state."""
    feeds = {}
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Recurrent):
            state = layer.initial_state(batch, "", model.dtype)
            feeds.update({f"state_in.{i}.{n}": np.ascontiguousarray(v)
                          for n, v in zip(layer.cell.state_names, state)})
    return feeds
