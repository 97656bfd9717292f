"""Dense (affine + activation), used as a layer and as the recurrent layers' readout g.

Forward and backward, on the last axis of ``x`` (any leading shape)::

    a = x @ W.T + b            y = act(a)
    da = dy * act'(a)          (softmax: da = y * (dy - sum(dy * y)))
    dW = da.T @ x,  db = sum(da),  dx = da @ W
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import kernels
from ..functional import get_activation, softmax
from ..init import get_init
from ..memory import check_layer
from .base import Layer, check_positive_int


class Dense(Layer):
    kind = "Dense"

    def __init__(
        self,
        units: int,
        activation: str = "identity",
        *,
        bias: bool = True,
        kernel_init: str = "glorot_uniform",
        input_size: int | None = None,
    ) -> None:
        super().__init__()
        self.units = check_positive_int(units, owner="Dense", arg="units")
        self.activation = activation
        self.act = None if activation == "softmax" else get_activation(activation, owner="Dense")
        self.bias = bool(bias)
        self.kernel_init = kernel_init
        get_init(kernel_init, owner="Dense", arg="kernel_init")
        self.declared_input = input_size

    def param_shapes(self, input_size: int) -> tuple[dict[str, tuple[int, ...]], int]:
        shapes = {"W": (self.units, input_size)}
        if self.bias:
            shapes["b"] = (self.units,)
        return shapes, self.units

    def build(self, input_size: int, rng: np.random.Generator, dtype: np.dtype) -> int:
        check_layer(self, input_size, dtype)
        if self.declared_input is not None and input_size != self.declared_input:
            raise ValueError(
                f"Dense: declared input_size={self.declared_input}, got inputs with "
                f"{input_size} features"
            )
        init = get_init(self.kernel_init, owner="Dense", arg="kernel_init")
        self.params = {"W": init(rng, (self.units, input_size), self.units).astype(dtype)}
        if self.bias:
            self.params["b"] = np.zeros(self.units, dtype)
        self._init_grads()
        self.input_size = input_size
        return self.units

    def forward(self, x: np.ndarray, mask: np.ndarray | None = None, state: Any = None,
                train: bool = True, noise: Any = None):
        a = kernels.matmul(x.reshape(-1, x.shape[-1]), self.params["W"].T,
                           bias=self.params["b"] if self.bias else None).reshape(
            *x.shape[:-1], self.units)
        y = softmax(a) if self.act is None else self.act.f(a)
        if mask is not None and y.ndim == 3:
            y = y * mask[..., None]
        return y, (x, a, y, mask), None

    def backward(self, dout: np.ndarray, cache: Any) -> np.ndarray:
        x, a, y, mask = cache
        if mask is not None and dout.ndim == 3:
            dout = dout * mask[..., None]
        if self.act is None:
            da = y * (dout - (dout * y).sum(axis=-1, keepdims=True))
        else:
            da = dout * self.act.df(a, y)
        da2 = da.reshape(-1, self.units)
        kernels.matmul(da2.T, x.reshape(-1, x.shape[-1]), self.grads["W"], accumulate=True)
        if self.bias:
            self.grads["b"] += da2.sum(axis=0)
        return kernels.matmul(da2, self.params["W"]).reshape(*da.shape[:-1], -1)

    def get_config(self) -> dict[str, Any]:
        return {"units": self.units, "activation": self.activation, "bias": self.bias,
                "kernel_init": self.kernel_init, "input_size": self.input_size}
