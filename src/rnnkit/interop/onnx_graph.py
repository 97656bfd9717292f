"""A small builder over ``onnx.helper``: unique names, constants, one node per call.

The exporter (``onnx_export.py``) and the recurrent mappings (``onnx_cells.py``) write the
graph through it, so that each reads as the list of operators it emits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

OPSET = 17  # RNN/LSTM/GRU, Scan, ReverseSequence, Squeeze with axes as an input
IR_VERSION = 8  # the IR version that goes with opset 17; runtimes accept it widely

# rnnkit activation -> (ONNX operator, attributes) for the graph's own nodes
ACT_OPS: dict[str, tuple[str, dict[str, float]]] = {
    "tanh": ("Tanh", {}), "sigmoid": ("Sigmoid", {}), "relu": ("Relu", {}),
    "leaky_relu": ("LeakyRelu", {"alpha": 0.01}), "elu": ("Elu", {"alpha": 1.0}),
    "softsign": ("Softsign", {}),
}


def import_onnx() -> Any:
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - CI installs the extra
        raise ImportError("rnnkit's ONNX interop needs onnx: pip install 'rnnkit[onnx]'") from e
    return onnx


class Graph:
    """Nodes and initializers of one (sub)graph; ``dtype`` is the model's float type."""

    def __init__(self, dtype: np.dtype, prefix: str = "") -> None:
        self.onnx = import_onnx()
        self.dtype = np.dtype(dtype)
        self.elem = self.onnx.helper.np_dtype_to_tensor_dtype(self.dtype)
        self.prefix = prefix
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{self.prefix}{hint}_{self._count}"

    def const(self, value: Any, hint: str = "const", dtype: Any = None) -> str:
        arr = np.array(value, dtype=dtype or self.dtype, order="C")  # 0-d stays 0-d
        name = self.name(hint)
        self.inits.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def ints(self, values: list[int], hint: str = "ints") -> str:
        return self.const(np.asarray(values, np.int64), hint, np.int64)

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, n_out: int = 1,
           outputs: list[str] | None = None, **attrs: Any) -> Any:
        outs = outputs or [self.name(hint or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, outs,
                                                     name=self.name(op_type), **attrs))
        return outs[0] if len(outs) == 1 else outs

    def act(self, name: str, x: str) -> str:
        """``name(x)`` for an rnnkit activation name (canonical, from ``get_activation``)."""
        if name == "identity":
            return x
        if name == "hard_tanh":
            lo, hi = self.const(-1.0, "lo"), self.const(1.0, "hi")
            return self.op("Clip", [x, lo, hi], "hard_tanh")
        op, attrs = ACT_OPS[name]
        return self.op(op, [x], name, **attrs)

    def value_info(self, name: str, shape: list[Any], elem: int | None = None) -> Any:
        return self.onnx.helper.make_tensor_value_info(name, self.elem if elem is None else elem,
                                                       shape)
