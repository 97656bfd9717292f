"""Weight initialisers. Each takes the model's ``np.random.Generator`` explicitly.

Shapes are ``(out, in)`` as everywhere in rnnkit. For recurrent weights of ``G`` gates,
``W_h`` is ``(G*H, H)`` and the square-matrix initialisers (orthogonal, identity) are applied
to each ``(H, H)`` gate block separately, as Keras and the IRNN paper do.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Init = Callable[[np.random.Generator, tuple[int, ...], int], np.ndarray]


def torch_uniform(rng: np.random.Generator, shape: tuple[int, ...], hidden: int) -> np.ndarray:
    """PyTorch's RNN default: U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias."""
    k = 1.0 / np.sqrt(hidden)
    return rng.uniform(-k, k, size=shape)


def glorot_uniform(rng: np.random.Generator, shape: tuple[int, ...], hidden: int) -> np.ndarray:
    """Glorot & Bengio (2010): U(-a, a), a = sqrt(6 / (fan_in + fan_out)), per gate block."""
    _, fan_in = shape
    fan_out = hidden  # one gate block's outputs
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape)


def orthogonal(rng: np.random.Generator, shape: tuple[int, ...], hidden: int) -> np.ndarray:
    """Saxe et al. (2014): an orthogonal matrix per (H, H) block, from the QR of a Gaussian."""
    return _per_block(shape, hidden, lambda n, m: _orthogonal(rng, n, m))


def identity(rng: np.random.Generator, shape: tuple[int, ...], hidden: int) -> np.ndarray:
    """Le, Jaitly & Hinton (2015), the IRNN: W_h = I per gate block."""
    return _per_block(shape, hidden, lambda n, m: np.eye(n, m))


def zeros(rng: np.random.Generator, shape: tuple[int, ...], hidden: int) -> np.ndarray:
    return np.zeros(shape)


def _orthogonal(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    a = rng.standard_normal((max(n, m), min(n, m)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))  # makes the distribution uniform (Haar), not just orthogonal
    return q if n >= m else q.T


def _per_block(shape: tuple[int, ...], hidden: int, block: Callable[[int, int], np.ndarray]):
    if len(shape) == 1:
        return np.zeros(shape)
    out, cols = shape
    h = hidden if hidden and out % hidden == 0 else out
    return np.concatenate([block(h, cols) for _ in range(out // h)], axis=0)


INITIALISERS: dict[str, Init] = {
    "torch": torch_uniform,
    "glorot_uniform": glorot_uniform,
    "orthogonal": orthogonal,
    "identity": identity,
    "zeros": zeros,
}
ALIASES = {"xavier": "glorot_uniform", "glorot": "glorot_uniform", "pytorch": "torch",
           "uniform": "torch", "xavier_uniform": "glorot_uniform", "eye": "identity"}


def get_init(name: str, *, owner: str, arg: str) -> Init:
    """Initialisers are named, never passed as code, so that a model's config stays data."""
    if not isinstance(name, str):
        raise TypeError(f"{owner}: {arg} must be an initialiser name, got {type(name).__name__}")
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in INITIALISERS:
        known = ", ".join(sorted(INITIALISERS))
        raise ValueError(f"{owner}: unknown {arg} {name!r}; expected one of: {known}")
    return INITIALISERS[key]
