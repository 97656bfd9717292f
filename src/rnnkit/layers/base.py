"""What every layer provides to ``Sequential``.

Layers work time-major inside the model: sequences are ``(T, B, F)``, a last-step output is
``(B, F)``. ``mask`` is ``None`` or a boolean ``(T, B)`` array, True where a step is real.

- ``param_shapes(input_size) -> ({name: shape}, output_size)`` without allocating;
- ``build(input_size, rng, dtype) -> output_size`` creates ``params`` (and zeroed ``grads``);
- ``forward(x, mask, state) -> (out, cache, final_state)``: stores nothing on ``self``;
- ``backward(dout, cache) -> dx``: its only side effect is adding into ``self.grads``;
- ``get_config()`` returns the constructor's arguments as JSON-able data.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np


class Layer:
    #: the name a saved config uses for this layer type (the load allow-list)
    kind: ClassVar[str] = ""
    recurrent: ClassVar[bool] = False

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.input_size: int | None = None

    @property
    def built(self) -> bool:
        return self.input_size is not None

    def _init_grads(self) -> None:
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def param_shapes(self, input_size: int) -> tuple[dict[str, tuple[int, ...]], int]:
        """``({name: shape}, output size)`` that ``build`` would create; allocates nothing."""
        raise NotImplementedError

    def build(self, input_size: int, rng: np.random.Generator, dtype: np.dtype) -> int:
        raise NotImplementedError

    def forward(self, x: np.ndarray, mask: np.ndarray | None = None, state: Any = None,
                train: bool = True, noise: Any = None):
        """``x`` time-major → ``(out, cache, final state)``; ``train=False`` says no backward
        will follow, so the layer may skip keeping what only the backward needs. ``noise``
        (an ``rnnkit.noise.Noise``, from ``fit`` only) draws dropout masks; None: none."""
        raise NotImplementedError

    def backward(self, dout: np.ndarray, cache: Any) -> np.ndarray | None:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if v is not None)
        return f"{type(self).__name__}({args})"


def check_positive_int(value: Any, *, owner: str, arg: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {arg} must be a positive integer, got {value!r}")
    return int(value)
