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
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ModelFileError
from ..layers import GRU, LSTM, RNN, Dense, Embedding
from ..model import Sequential
from .onnx_cells import GATE_ORDER
from .onnx_read import MAX_BYTES, Reader

LAYOUT_OPS = {"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Gather"}
SHAPE_OPS = {"Shape", "Size", "Constant", "ConstantOfShape", "Gather", "Unsqueeze", "Squeeze",
             "Concat", "Slice", "Reshape", "Expand", "Cast", "Identity", "Range", "Mul", "Add",
             "Sub", "Div", "Transpose", "Equal", "Where", "Less", "Greater", "Not"}
ZERO_KEEPING = {"Expand", "Reshape", "Unsqueeze", "Squeeze", "Slice", "Transpose", "Identity",
                "Cast", "Gather"}  # all zeros in their first input give all zeros
HEAD_ACTS = {"Tanh": "tanh", "Sigmoid": "sigmoid", "Relu": "relu", "Softsign": "softsign",
             "LeakyRelu": "leaky_relu", "Elu": "elu", "Softmax": "softmax"}
CELL_ACTS = {"Tanh": "tanh", "Sigmoid": "sigmoid", "Relu": "relu", "Softsign": "softsign"}
ALPHA_DEFAULT = {"LeakyRelu": 0.01, "Elu": 1.0, "Affine": 1.0}  # ONNX's defaults
RECURRENT = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}
ATTR_FIELDS = {1: "f", 2: "i", 3: "s", 6: "floats", 7: "ints", 8: "strings"}  # by type
CELL_ATTRS = {"hidden_size", "direction", "activations", "activation_alpha", "activation_beta",
              "layout", "linear_before_reset", "clip", "input_forget"}


@dataclass
class Prov:
    """Where a data tensor comes from: after ``stage`` layers, a sequence or a last step
    (``kind``), and whether it is a fresh ``Dense`` product (``fresh``: "matmul"/"dense")."""

    stage: int
    kind: str
    fresh: str = ""


@dataclass
class Spec:
    cls: type
    options: dict[str, Any]
    params: dict[str, np.ndarray] = field(default_factory=dict)
    kind: str = ""  # what the next layer read of it: "seq" or "last"


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


class _Importer:
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
                            "rnnkit's importer")
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
    def _recurrent(self, node: Any, data: list, where: str) -> list[Prov | None]:
        op = node.op_type
        if data[0][0] != 0 or len(data) != 1:
            raise self.fail(f"{where}: only its X input may come from the model's input")
        self._take(data[0][1], where, ("seq",))
        attrs = self._attrs(node, where)
        unknown = set(attrs) - CELL_ATTRS
        if unknown:
            raise self.fail(f"{where}: attribute {sorted(unknown)[0]!r:.40} is not supported")
        ins = list(node.input) + [""] * 8
        W, R = self._weight(ins[1], where, 3), self._weight(ins[2], where, 3)
        nd, GH, D = W.shape
        G, direction = {"RNN": 1, "LSTM": 4, "GRU": 3}[op], attrs.get("direction", "forward")
        H = GH // G
        if direction not in ("forward", "bidirectional") or nd != (2 if direction ==
                                                                   "bidirectional" else 1):
            raise self.fail(f"{where}: direction={direction!r:.20} with {nd} weight directions "
                            "is not supported (forward or bidirectional)")
        if GH != G * H or H < 1 or R.shape != (nd, GH, H) or attrs.get("hidden_size", H) != H:
            raise self.fail(f"{where}: W {W.shape} and R {R.shape} do not fit hidden_size "
                            f"{attrs.get('hidden_size')}")
        if "clip" in attrs or attrs.get("input_forget", 0) != 0:
            raise self.fail(f"{where}: clip and input_forget have no rnnkit equivalent")
        if op == "GRU" and attrs.get("linear_before_reset", 0) != 1:
            raise self.fail(f"{where}: linear_before_reset=0 (reset before W_h) is not rnnkit's "
                            "GRU, which is PyTorch's reset-after form (linear_before_reset=1)")
        if ins[4] and (ins[4] in self.consts or self.known.get(ins[4]) is not None):
            raise self.fail(f"{where}: sequence_lens must be a graph input (or absent)")
        for k, what in ((5, "initial_h"), (6, "initial_c")):
            if ins[k] and ins[k] not in self.zeros:
                raise self.fail(f"{where}: {what} is not zeros; rnnkit imports start from zero "
                                "states (pass the state to predict's initial_state)")
        P = self._weight(ins[7], where, 2) if op == "LSTM" and ins[7] else None
        if P is not None and P.shape != (nd, 3 * H):
            raise self.fail(f"{where}: P has shape {P.shape}, expected {(nd, 3 * H)}")
        B = self._weight(ins[3], where, 2) if ins[3] else None
        if B is not None and B.shape != (nd, 2 * GH):
            raise self.fail(f"{where}: B has shape {B.shape}, expected {(nd, 2 * GH)}")
        options = self._cell_activations(op, attrs, nd, where)
        options.update(bidirectional=nd == 2, bias=B is not None, input_size=D)
        if P is not None:
            options["peepholes"] = True
        spec = Spec(RECURRENT[op], options)
        order = GATE_ORDER[op]
        for d, sfx in enumerate(("", "_reverse")[:nd]):
            spec.params["W_x" + sfx] = _unorder(W[d], order, H)
            spec.params["W_h" + sfx] = _unorder(R[d], order, H)
            if P is not None:  # ONNX's order i, o, f is rnnkit's
                spec.params["P" + sfx] = P[d]
            if B is None:
                continue
            wb, rb = _unorder(B[d, :GH], order, H), _unorder(B[d, GH:], order, H)
            b = wb + rb
            if op == "GRU":  # b_hn stays inside r * (W_hn h + b_hn)
                b[2 * H :] = wb[2 * H :]
                spec.params["b_hn" + sfx] = rb[2 * H :]
            spec.params["b" + sfx] = b
        self.specs.append(spec)
        n = len(self.specs)
        return [Prov(n, "seq"), Prov(n, "last"), Prov(n, "cell")]

    def _cell_activations(self, op: str, attrs: dict, nd: int, where: str) -> dict[str, Any]:
        per = {"RNN": 1, "LSTM": 3, "GRU": 2}[op]
        names = attrs.get("activations") or {"RNN": ["Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"],
                                             "GRU": ["Sigmoid", "Tanh"]}[op] * nd
        alpha, beta = list(attrs.get("activation_alpha", [])), list(attrs.get("activation_beta",
                                                                              []))
        if len(names) != per * nd:
            raise self.fail(f"{where}: {len(names)} activations, expected {per * nd}")
        acts = []
        for name in names:
            a = alpha.pop(0) if name in ALPHA_DEFAULT and alpha else ALPHA_DEFAULT.get(name)
            b = beta.pop(0) if name == "Affine" and beta else 0.0
            if name in CELL_ACTS:
                acts.append(CELL_ACTS[name])
            elif name == "Affine" and _near(a, 1.0) and _near(b, 0.0):
                acts.append("identity")
            elif name == "LeakyRelu" and _near(a, 0.01):
                acts.append("leaky_relu")
            elif name == "Elu" and _near(a, 1.0):
                acts.append("elu")
            else:
                raise self.fail(f"{where}: activation {name!r:.30} (alpha {a}) has no rnnkit "
                                "equivalent")
        if acts[:per] != acts[per:] and nd == 2:
            raise self.fail(f"{where}: the two directions have different activations")
        if op == "RNN":
            return {"activation": acts[0]}
        if op == "LSTM" and acts[1] != acts[2]:
            raise self.fail(f"{where}: LSTM cell activations g={acts[1]} and h={acts[2]} differ;"
                            " rnnkit uses one")
        options: dict[str, Any] = {"gate_activation": acts[0], "activation": acts[1]}
        if op == "LSTM":
            options["forget_bias"] = 0.0  # the bias comes from the file
        return options

    def _embedding(self, node: Any, p: Prov, where: str) -> Prov:
        if self.specs or p.stage != 0 or not self.ids:
            raise self.fail(f"{where}: a Gather from a table must be the first layer, on "
                            "integer ids")
        W = self._weight(node.input[0], where, 2)
        self.specs.append(Spec(Embedding, {"vocab_size": W.shape[0], "dim": W.shape[1]},
                               {"W": W}))
        return Prov(1, "seq")

    def _dense(self, node: Any, data: list, where: str) -> Prov:
        p = data[0][1]
        if len(data) != 1 or data[0][0] != 0:
            raise self.fail(f"{where}: only its first input may come from the model's input")
        self._take(p, where)
        if node.op_type == "MatMul":
            W, b = self._weight(node.input[1], where, 2).T, None
        else:
            attrs = self._attrs(node, where)
            if (attrs.get("alpha", 1.0), attrs.get("beta", 1.0), attrs.get("transA", 0)) != (
                    1.0, 1.0, 0):
                raise self.fail(f"{where}: Gemm with alpha, beta or transA other than 1, 1, 0")
            W = self._weight(node.input[1], where, 2)
            W = W if attrs.get("transB", 0) else W.T
            b = None
            if len(node.input) > 2 and node.input[2]:
                b = self._weight_any(node.input[2], where).reshape(-1)
                if b.shape != (W.shape[0],):
                    raise self.fail(f"{where}: bias of {b.size} values for {W.shape[0]} outputs")
        spec = Spec(Dense, {"units": W.shape[0], "bias": b is not None,
                            "input_size": W.shape[1]}, {"W": W})
        if b is not None:
            spec.params["b"] = b
        self.specs.append(spec)
        return Prov(len(self.specs), p.kind, "dense" if b is not None else "matmul")

    def _weight_any(self, name: str, where: str) -> np.ndarray:
        if name not in self.consts or self.consts[name].dtype.kind != "f":
            raise self.fail(f"{where}: {name!r:.60} must be a float constant")
        return self.consts[name]

    def _bias(self, node: Any, data: list, where: str) -> Prov:
        p = data[0][1]
        other = node.input[1 - data[0][0]] if len(node.input) == 2 else ""
        spec = self.specs[-1] if self.specs else None
        if len(data) != 1 or p.fresh != "matmul" or p.stage != len(self.specs) or not other:
            raise self.fail(f"{where}: Add is supported only as the bias right after a MatMul")
        b = self._weight_any(other, where)
        units = spec.options["units"]
        if b.size != units or (b.ndim > 1 and b.shape[-1] != units):
            raise self.fail(f"{where}: bias of shape {b.shape} for {units} outputs")
        spec.options["bias"] = True
        spec.params["b"] = b.reshape(-1)
        return Prov(p.stage, p.kind, "dense")

    def _activation(self, node: Any, p: Prov, where: str) -> Prov:
        if not p.fresh or p.stage != len(self.specs):
            raise self.fail(f"{where}: an activation is supported only right after a MatMul, "
                            "Gemm or their bias Add (a Dense layer)")
        attrs, op = self._attrs(node, where), node.op_type
        ok = {"LeakyRelu": _near(attrs.get("alpha", 0.01), 0.01),
              "Elu": _near(attrs.get("alpha", 1.0), 1.0),
              "Softmax": attrs.get("axis", -1) in (-1, 2 if p.kind == "seq" else 1)}
        if not ok.get(op, True) or set(attrs) - {"alpha", "axis"}:
            raise self.fail(f"{where}: attributes {attrs} have no rnnkit equivalent")
        self.specs[-1].options["activation"] = HEAD_ACTS[op]
        return Prov(p.stage, p.kind)

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


def _unorder(a: np.ndarray, order: list[int], H: int) -> np.ndarray:
    """ONNX gate blocks back to rnnkit's order: ONNX block ``k`` is rnnkit's ``order[k]``."""
    out = np.empty_like(a)
    for k, j in enumerate(order):
        out[j * H : (j + 1) * H] = a[k * H : (k + 1) * H]
    return out


def _near(a: Any, b: float) -> bool:
    return isinstance(a, float) and abs(a - b) <= 1e-6 * max(1.0, abs(b))
