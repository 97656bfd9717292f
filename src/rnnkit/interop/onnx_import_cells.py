"""RNN/LSTM/GRU nodes → rnnkit recurrent layers, for ``from_onnx`` (``onnx_import.py``): the
weights mapped back through ``onnx_cells.GATE_ORDER``, ONNX's biases ``[Wb, Rb]`` summed (the
GRU keeps ``Rb_h`` as ``b_hn``), ``P`` as ``peepholes``, the activations by name."""

from __future__ import annotations

from typing import Any

from .onnx_cells import GATE_ORDER
from .onnx_import_spec import (
    ALPHA_DEFAULT,
    CELL_ACTS,
    CELL_ATTRS,
    RECURRENT,
    Prov,
    Spec,
    near,
    unorder,
)


class CellNodes:
    """The recurrent-node handlers of ``onnx_import._Importer``."""

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
            spec.params["W_x" + sfx] = unorder(W[d], order, H)
            spec.params["W_h" + sfx] = unorder(R[d], order, H)
            if P is not None:  # ONNX's order i, o, f is rnnkit's
                spec.params["P" + sfx] = P[d]
            if B is None:
                continue
            wb, rb = unorder(B[d, :GH], order, H), unorder(B[d, GH:], order, H)
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
            elif name == "Affine" and near(a, 1.0) and near(b, 0.0):
                acts.append("identity")
            elif name == "LeakyRelu" and near(a, 0.01):
                acts.append("leaky_relu")
            elif name == "Elu" and near(a, 1.0):
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
