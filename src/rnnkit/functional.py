"""Activations and their derivatives, in one place.

Every activation is a pair ``(f, df)``. ``df(a, y)`` receives both the pre-activation ``a``
and the output ``y = f(a)`` so that each derivative uses whichever is cheaper and exact:
``tanh'(a) = 1 - y**2``, ``sigmoid'(a) = y * (1 - y)``, ``relu'(a) = (a > 0)``. None of them
can overflow: ``sigmoid(-1e4)`` is ``0.0`` with no warning, ``elu(1e4)`` never calls ``exp``
on a large number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

LEAKY_SLOPE = 0.01  # as torch.nn.LeakyReLU and Keras
ELU_ALPHA = 1.0


def sigmoid(a: np.ndarray) -> np.ndarray:
    # exp(-|a|) never overflows; both branches are exact in their own half.
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(a.dtype, copy=False)


def _d_sigmoid(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    return y * (1 - y)


def _d_tanh(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 1 - y * y


def relu(a: np.ndarray) -> np.ndarray:
    return np.maximum(a, 0)


def _d_relu(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (a > 0).astype(a.dtype)


def identity(a: np.ndarray) -> np.ndarray:
    return a


def _d_identity(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.ones_like(a)


def leaky_relu(a: np.ndarray) -> np.ndarray:
    return np.where(a > 0, a, LEAKY_SLOPE * a).astype(a.dtype, copy=False)


def _d_leaky_relu(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.where(a > 0, 1.0, LEAKY_SLOPE).astype(a.dtype, copy=False)


def elu(a: np.ndarray) -> np.ndarray:
    # expm1 only on the non-positive part, so large positive a never reaches exp.
    return np.where(a > 0, a, ELU_ALPHA * np.expm1(np.minimum(a, 0))).astype(a.dtype, copy=False)


def _d_elu(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.where(a > 0, 1.0, y + ELU_ALPHA).astype(a.dtype, copy=False)


def softsign(a: np.ndarray) -> np.ndarray:
    return a / (1 + np.abs(a))


def _d_softsign(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    s = 1 + np.abs(a)
    return 1 / (s * s)


def hard_tanh(a: np.ndarray) -> np.ndarray:
    return np.clip(a, -1, 1)


def _d_hard_tanh(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    return ((a > -1) & (a < 1)).astype(a.dtype)


def softmax(a: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the max so that it cannot overflow."""
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(a: np.ndarray) -> np.ndarray:
    s = a - a.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


class Activation(NamedTuple):
    name: str
    f: Callable[[np.ndarray], np.ndarray]
    df: Callable[[np.ndarray, np.ndarray], np.ndarray]


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in [
        Activation("tanh", np.tanh, _d_tanh),
        Activation("sigmoid", sigmoid, _d_sigmoid),
        Activation("relu", relu, _d_relu),
        Activation("identity", identity, _d_identity),
        Activation("leaky_relu", leaky_relu, _d_leaky_relu),
        Activation("elu", elu, _d_elu),
        Activation("softsign", softsign, _d_softsign),
        Activation("hard_tanh", hard_tanh, _d_hard_tanh),
    ]
}
ALIASES = {"linear": "identity", "hardtanh": "hard_tanh", "none": "identity"}


def get_activation(name: str, *, owner: str = "layer", arg: str = "activation") -> Activation:
    """Look up an activation by name, with an error that says who asked and what exists."""
    if not isinstance(name, str):
        raise TypeError(f"{owner}: {arg} must be a string name, got {type(name).__name__}")
    key = ALIASES.get(name.lower(), name.lower())
    if key not in ACTIVATIONS:
        known = ", ".join(sorted(ACTIVATIONS))
        raise ValueError(f"{owner}: unknown {arg} {name!r}; expected one of: {known}")
    return ACTIVATIONS[key]
