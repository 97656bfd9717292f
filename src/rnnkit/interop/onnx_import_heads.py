"""Head nodes → rnnkit layers, for ``from_onnx`` (``onnx_import.py``): ``Gather`` from a
constant table an ``Embedding``, ``MatMul``/``Gemm`` with constant weights a ``Dense``, a
constant ``Add`` right after it that ``Dense``'s bias, an activation after it its activation."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..layers import Dense, Embedding
from .onnx_import_spec import HEAD_ACTS, Prov, Spec, near


class HeadNodes:
    """The head-node handlers of ``onnx_import._Importer``."""

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
        ok = {"LeakyRelu": near(attrs.get("alpha", 0.01), 0.01),
              "Elu": near(attrs.get("alpha", 1.0), 1.0),
              "Softmax": attrs.get("axis", -1) in (-1, 2 if p.kind == "seq" else 1)}
        if not ok.get(op, True) or set(attrs) - {"alpha", "axis"}:
            raise self.fail(f"{where}: attributes {attrs} have no rnnkit equivalent")
        self.specs[-1].options["activation"] = HEAD_ACTS[op]
        return Prov(p.stage, p.kind)
