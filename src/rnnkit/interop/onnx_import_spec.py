"""What ``from_onnx``'s walk over the graph records (``onnx_import.py``), shared by the node
handlers for recurrent operators (``onnx_import_cells.py``) and heads (``onnx_import_heads.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..layers import GRU, LSTM, RNN

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


def unorder(a: np.ndarray, order: list[int], H: int) -> np.ndarray:
    """ONNX gate blocks back to rnnkit's order: ONNX block ``k`` is rnnkit's ``order[k]``."""
    out = np.empty_like(a)
    for k, j in enumerate(order):
        out[j * H : (j + 1) * H] = a[k * H : (k + 1) * H]
    return out


def near(a: Any, b: float) -> bool:
    return isinstance(a, float) and abs(a - b) <= 1e-6 * max(1.0, abs(b))
