"""An ONNX file → ``Sequential``: RNN/LSTM/GRU operators and MatMul/Gemm/Add/activation heads,
as ``torch.onnx.export`` writes them (and as ``to_onnx`` writes them with ``rnn_ops="native"``).

Nothing in the file is executed. The importer follows the data from the graph's first input
to its first output: each RNN/LSTM/GRU node becomes a layer (its weights mapped back through
``onnx_cells.GATE_ORDER``), ``MatMul``/``Gemm`` with constant weights a ``Dense``, a constant
``Add`` after it that ``Dense``'s bias, an activation after it its activation, ``Gather`` from
a constant table on integer inputs an ``Embedding``. The nodes between them on the data path
must be layout changes (``Transpose``, ``Reshape``, ``Squeeze``, ``Unsqueeze``, ``Identity``,
``Gather``): they are taken to be the ones exporters write around these operators (batch-first
to time-major, directions concatenated), not evaluated. Nodes off the data path may only
compute shapes and zero initial states. Anything else is refused, naming the node and its
op type. The imported model is batch-first at its boundary, as every rnnkit model.

This file walks the graph; the nodes that become layers are handled in
``onnx_import_cells.py`` (RNN/LSTM/GRU) and ``onnx_import_heads.py`` (the rest).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import ModelFileError
from ..layers import Dense, Embedding
from ..model import Sequential
from .onnx_import_cells import CellNodes
from .onnx_import_heads import HeadNodes
from .onnx_import_spec import ATTR_FIELDS, HEAD_ACTS, RECURRENT, Prov, Spec
from .onnx_read import MAX_BYTES, Reader

LAYOUT_OPS = {"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Gather"}
SHAPE_OPS = {"Shape", "Size", "Constant", "ConstantOfShape", "Gather", "Unsqueeze", "Squeeze",
             "Concat", "Slice", "Reshape", "Expand", "Cast", "Identity", "Range", "Mul", "Add",
             "Sub", "Div", "Transpose", "Equal", "Where", "Less", "Greater", "Not"}
SCAN_OPS = {"Scan", "Loop", "LayerNormalization", "ReverseSequence"}
SCAN_HINT = ("; it reads RNN/LSTM/GRU operators, and to_onnx writes a Scan for the layers they "
             "cannot express (layer_norm, proj_size, zoneout, hard_tanh, float64, "
             "rnn_ops='scan'): load such a model from its rnnkit file")
ZERO_KEEPING = {"Expand", "Reshape", "Unsqueeze", "Squeeze", "Slice", "Transpose", "Identity",
                "Cast", "Gather"}  # all zeros in their first input give all zeros


def from_onnx(path: str | os.PathLike[str], *, max_bytes: int = MAX_BYTES) -> Sequential:
    """The ``Sequential`` that computes what the ONNX model at ``path`` computes.

    Args:
        path: an ``.onnx`` file; external data may only lie in its folder.
        max_bytes: limit on the file and its external data together.

    Raises:
        ModelFileError: a file that is not a valid ONNX model, or a node rnnkit cannot
            represent (named, with its op type); never anything else.
    """
    reader = Reader(path, max_bytes)
    return _Importer(reader).run()


class _Importer(CellNodes, HeadNodes):
    def __init__(self, reader: Reader) -> None:
        self.r = reader
        self.g = reader.proto.graph
        self.known: dict[str, Prov | None] = {}  # None: known, but not on the data path
        self.consts: dict[str, np.ndarray] = {}
        self.zeros: set[str] = set()
        self.specs: list[Spec] = []
        self.dtype: np.dtype | None = None

    def fail(self, message: str) -> ModelFileError:
        return ModelFileError(f"{self.r.name}: {message}")

    def run(self) -> Sequential:
        for t in self.g.initializer:
            self._const(t.name, self.r.array(t, f"initializer {t.name!r:.60}"))
        inputs = [i for i in self.g.input if i.name not in self.consts]
        if not inputs or not self.g.output:
            raise self.fail("the graph needs an input and an output")
        self.ids = inputs[0].type.tensor_type.elem_type in (6, 7)  # int32/int64: token ids
        self.known[inputs[0].name] = Prov(0, "seq")
        for extra in inputs[1:]:
            self.known.setdefault(extra.name, None)
        for node in self.g.node:
            self._node(node)
        out = self.known.get(self.g.output[0].name)
        if out is None or not self.specs or out.stage != len(self.specs) or out.kind not in (
                "seq", "last"):
            raise self.fail(f"output {self.g.output[0].name!r:.60} is not computed from the "
                            "input by RNN/LSTM/GRU and Dense-like nodes")
        self._read_as(len(self.specs) - 1, out.kind, "the graph's output")
        return self._model()

    # --- nodes ------------------------------------------------------------------------------
    def _node(self, node: Any) -> None:
        op, where = node.op_type, f"node {node.name!r:.60} ({node.op_type:.40})"
        if node.domain not in ("", "ai.onnx"):
            raise self.fail(f"{where}: operator domain {node.domain!r:.40} is not supported")
        for name in node.input:
            if name and name not in self.known:
                raise self.fail(f"{where}: input {name!r:.60} is used before it is produced")
        data = [(k, self.known[n]) for k, n in enumerate(node.input) if n and self.known[n]]
        if not data or op in ("Shape", "Size"):
            if op not in SHAPE_OPS:
                raise self.fail(f"{where}: operator {op} is not supported by rnnkit's importer")
            self._shape_node(node, where)
            return
        outs: list[Prov | None]
        if op in RECURRENT:
            outs = self._recurrent(node, data, where)
        elif op == "Gather" and data[0][0] == 1 and node.input[0] in self.consts:
            outs = [self._embedding(node, data[0][1], where)]
        elif op in ("MatMul", "Gemm"):
            outs = [self._dense(node, data, where)]
        elif op == "Add":
            outs = [self._bias(node, data, where)]
        elif op in HEAD_ACTS:
            outs = [self._activation(node, data[0][1], where)]
        elif op in LAYOUT_OPS and len(data) == 1 and data[0][0] == 0:
            outs = [self._layout(node, data[0][1], where)]
        elif op == "Concat" and len(data) == len(node.input) and all(
                p.kind == "part" and p.stage == data[0][1].stage for _, p in data):
            outs = [Prov(data[0][1].stage, "last")]  # the directions' last steps, side by side
        else:
            raise self.fail(f"{where}: operator {op} on the data path is not supported by "
                            f"rnnkit's importer{SCAN_HINT if op in SCAN_OPS else ''}")
        for name, p in zip(node.output, outs):
            if name:
                self.known[name] = p
        for name in node.output[len(outs):]:
            if name:
                self.known[name] = None

    def _layout(self, node: Any, p: Prov, where: str) -> Prov:
        if node.op_type != "Gather" or p.kind == "cell":
            return Prov(p.stage, p.kind)
        # on final states (num_directions, B, H): one direction's last step
        if p.kind == "seq":
            raise self.fail(f"{where}: Gather on a {p.kind} (picking time steps) is not "
                            "supported; the last step is the operator's Y_h output")
        bidirectional = self.specs[-1].options.get("bidirectional", False)
        return Prov(p.stage, "part" if bidirectional else "last")

    def _shape_node(self, node: Any, where: str) -> None:
        op, outs = node.op_type, [n for n in node.output if n]
        for n in outs:
            self.known[n] = None
        if op == "Constant":
            if len(node.attribute) != 1 or len(outs) != 1:
                raise self.fail(f"{where}: expected one value attribute and one output")
            a = node.attribute[0]
            values = {"value": lambda: self.r.array(a.t, where), "value_float": lambda: a.f,
                      "value_floats": lambda: list(a.floats), "value_int": lambda: a.i,
                      "value_ints": lambda: list(a.ints)}
            if a.name not in values:
                raise self.fail(f"{where}: attribute {a.name!r:.40} is not supported")
            self._const(outs[0], np.asarray(values[a.name]()))
        elif op == "ConstantOfShape":
            value = [a for a in node.attribute if a.name == "value"]
            if not value or not np.any(self.r.array(value[0].t, where)):
                self.zeros.update(outs)
        elif op in ZERO_KEEPING and node.input and node.input[0] in self.zeros:
            self.zeros.update(outs)
        elif op == "Concat" and all(n in self.zeros for n in node.input if n):
            self.zeros.update(outs)

    def _const(self, name: str, value: np.ndarray) -> None:
        self.consts[name] = value
        self.known[name] = None
        if value.size <= 1 << 20 and not np.any(value):
            self.zeros.add(name)

    def _weight(self, name: str, where: str, ndim: int) -> np.ndarray:
        if name not in self.consts:
            raise self.fail(f"{where}: weight {name!r:.60} must be a constant (an initializer)")
        w = self.consts[name]
        if w.ndim != ndim or w.dtype.kind != "f":
            raise self.fail(f"{where}: weight {name!r:.60} must be a {ndim}-D float tensor, got "
                            f"{w.ndim}-D {w.dtype}")
        if self.dtype is None:
            self.dtype = w.dtype
        return w

    def _take(self, p: Prov, where: str, kinds: tuple[str, ...] = ("seq", "last")) -> None:
        """Check that ``p`` is the latest layer's output and record how it was read."""
        if p.stage != len(self.specs):
            raise self.fail(f"{where}: reads the output of layer {p.stage - 1}, not of the "
                            "layer before it (a skip connection has no rnnkit layer)")
        if p.kind not in kinds:
            raise self.fail(f"{where}: needs a {' or '.join(kinds)} input, got a {p.kind}")
        if self.specs:
            self._read_as(len(self.specs) - 1, p.kind, where)

    def _read_as(self, k: int, kind: str, where: str) -> None:
        spec = self.specs[k]
        if spec.cls in RECURRENT.values():
            if spec.kind and spec.kind != kind:
                raise self.fail(f"{where}: layer {k} is read both as a sequence and as its last "
                                "step")
            spec.kind = kind

    # --- layers -----------------------------------------------------------------------------
    def _attrs(self, node: Any, where: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for a in node.attribute:
            if a.type not in ATTR_FIELDS:
                raise self.fail(f"{where}: attribute {a.name!r:.40} of type {a.type} is not "
                                "supported")
            value = getattr(a, ATTR_FIELDS[a.type])
            try:
                value = value.decode() if a.type == 3 else (
                    [v.decode() for v in value] if a.type == 8 else
                    list(value) if a.type in (6, 7) else value)
            except UnicodeDecodeError as e:
                raise self.fail(f"{where}: attribute {a.name!r:.40} is not valid UTF-8") from e
            out[a.name] = value
        return out

    # --- the model --------------------------------------------------------------------------
    def _model(self) -> Sequential:
        layers = []
        for spec in self.specs:
            options = dict(spec.options)
            if spec.cls in RECURRENT.values():
                options["return_sequences"] = spec.kind == "seq"
                layers.append(spec.cls(options.pop("hidden", None) or
                                       spec.params["W_h"].shape[1], **options))
            elif spec.cls is Dense:
                layers.append(Dense(options.pop("units"), **options))
            else:
                layers.append(Embedding(**options))
        dtype = self.dtype if self.dtype in (np.float32, np.float64) else None
        if dtype is None:
            raise self.fail(f"weights of dtype {self.dtype} (rnnkit: float32 or float64)")
        try:
            model = Sequential(layers, dtype=dtype)
            model.build(1 if self.ids else self.specs[0].options["input_size"])
        except ValueError as e:
            raise self.fail(f"the layers do not form an rnnkit model: {e}") from e
        params = model.parameters()
        for i, spec in enumerate(self.specs):
            for k, v in spec.params.items():
                target = params[f"{i}.{k}"]
                if target.shape != v.shape:
                    raise self.fail(f"layer {i}: {k} has shape {v.shape}, the layer needs "
                                    f"{target.shape} (sizes of consecutive layers disagree)")
                target[...] = v
        return model
