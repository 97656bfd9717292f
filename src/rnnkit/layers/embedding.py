"""Embedding: integer ids to vectors, the first layer of a text model.

Forward ``y = W[ids]``; backward adds each step's gradient into the row it read
(``np.add.at``, so repeated ids accumulate). Ids are not differentiable: ``dx`` is ``None``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..memory import check_layer
from .base import Layer, check_positive_int


class Embedding(Layer):
    kind = "Embedding"

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.vocab_size = check_positive_int(vocab_size, owner="Embedding", arg="vocab_size")
        self.dim = check_positive_int(dim, owner="Embedding", arg="dim")

    def param_shapes(self, input_size: int) -> tuple[dict[str, tuple[int, ...]], int]:
        return {"W": (self.vocab_size, self.dim)}, self.dim

    def build(self, input_size: int, rng: np.random.Generator, dtype: np.dtype) -> int:
        check_layer(self, input_size, dtype)
        # N(0, 1) as torch.nn.Embedding
        self.params = {"W": rng.standard_normal((self.vocab_size, self.dim)).astype(dtype)}
        self._init_grads()
        self.input_size = 1
        return self.dim

    def forward(self, x: np.ndarray, mask: np.ndarray | None = None, state: Any = None,
                train: bool = True, noise: Any = None):
        if x.size and (x.min() < 0 or x.max() >= self.vocab_size):
            bad = np.argwhere((x < 0) | (x >= self.vocab_size))[0]
            raise ValueError(
                f"Embedding: ids must lie in [0, {self.vocab_size}), got {x[tuple(bad)]} at "
                f"(step, sample) {tuple(int(i) for i in bad)}"
            )
        y = self.params["W"][x]
        if mask is not None:
            y = y * mask[..., None]
        return y, (x, mask), None

    def backward(self, dout: np.ndarray, cache: Any) -> None:
        x, mask = cache
        if mask is not None:
            dout = dout * mask[..., None]
        np.add.at(self.grads["W"], x.reshape(-1), dout.reshape(-1, self.dim))
        return None

    def get_config(self) -> dict[str, Any]:
        return {"vocab_size": self.vocab_size, "dim": self.dim}
