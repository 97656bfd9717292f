"""Dropout (Srivastava et al. 2014), inverted: zero each input with probability ``p`` and scale
the rest by ``1 / (1 - p)`` while training, so that inference is the identity.

Forward and backward, with ``m`` the step's mask of ``0`` and ``1 / (1 - p)``
(``rnnkit.noise``; a new one at every step and position)::

    y = x * m
    dx = dy * m

Only ``fit`` draws masks; ``predict``, ``evaluate``, streaming and the diagnostics run the
identity. Padded steps of a sequence stay zero (``0 * m``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..noise import Noise
from .base import Layer


def check_rate(value: Any, *, owner: str, arg: str) -> float:
    """A probability ``p`` in ``[0, 1)``, or a clear error naming the layer and option."""
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    if not ok or not 0 <= float(value) < 1:
        raise ValueError(f"{owner}: {arg} must be a probability in [0, 1), got {value!r}")
    return float(value)


class Dropout(Layer):
    """``rk.Dropout(p)``: between recurrent layers, after an embedding, before the head."""

    kind = "Dropout"

    def __init__(self, p: float = 0.5, *, input_size: int | None = None) -> None:
        super().__init__()
        self.p = check_rate(p, owner="Dropout", arg="p")
        self.declared_input = input_size

    def param_shapes(self, input_size: int) -> tuple[dict[str, tuple[int, ...]], int]:
        return {}, input_size

    def build(self, input_size: int, rng: np.random.Generator, dtype: np.dtype) -> int:
        if self.declared_input is not None and input_size != self.declared_input:
            raise ValueError(f"Dropout: declared input_size={self.declared_input}, got inputs "
                             f"with {input_size} features")
        self.params, self.grads = {}, {}
        self.input_size = input_size
        return input_size

    def forward(self, x: np.ndarray, mask: np.ndarray | None = None, state: Any = None,
                train: bool = True, noise: Noise | None = None):
        if noise is None or self.p == 0:
            return x, None, None
        m = noise.mask("dropout", self.p, x.shape if x.ndim == 3 else (1, *x.shape), x.dtype,
                       per_step=True, scale=True)
        m = m.reshape(x.shape)
        return x * m, m, None

    def backward(self, dout: np.ndarray, cache: Any) -> np.ndarray:
        return dout if cache is None else dout * cache

    def get_config(self) -> dict[str, Any]:
        return {"p": self.p, "input_size": self.input_size}
