"""Where a training step's dropout, recurrent-dropout and zoneout masks come from.

A mask entry is a pure function of ``(key, layer, use, global row, position)``: a counter-based
hash (SplitMix64's finaliser, Steele et al. 2014), not a stream of draws. So

- a seeded run is reproducible bit for bit (``fit`` draws one ``key`` per step from its
  seeded generator, which checkpoints save and resume);
- the rows ``[a, b)`` of a batch get the masks they would get in the whole batch: pass
  ``row0=a`` (data-parallel ranks then equal one process);
- truncated-BPTT chunks get the masks of the whole sequence (positions count time from the
  sequence's start, ``t0``), and a recurrent-dropout mask is one per sequence.

When the compiled loops run, the masks are drawn in compiled code (``kernels/masks.py``:
the same entries, bit for bit, 10-40x faster); else with NumPy.

``Noise.given`` holds masks supplied from outside (gradient checks, parity with PyTorch),
keyed ``"<layer>.<use>"``, e.g. ``"0.dropout"``, ``"1.recurrent_dropout_reverse"``,
``"0.zoneout_h"``, time-major like the arrays they multiply. They are used as they are: a
dropout mask holds the multipliers (``0`` or ``1 / (1 - p)``), a zoneout mask the weight of
the old state (``1`` where a unit keeps its value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = ["Noise", "bernoulli_keep", "uniform"]

_M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
USES = ("dropout", "recurrent_dropout", "zoneout_h", "zoneout_c")


def _mix_int(z: int) -> int:
    z &= _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on ``uint64`` arrays (wrapping products, in place)."""
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def uniform(key: int, rows: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``u[r, j]`` in ``[0, 1)`` for each global row in ``rows`` and position in
    ``positions``: ``(len(rows), len(positions))`` float64, a function of the three alone."""
    r = _mix(rows.astype(np.uint64) * np.uint64(_GOLDEN) ^ np.uint64(_mix_int(key)))
    z = r[:, None] + positions.astype(np.uint64)[None, :] * np.uint64(_GOLDEN)
    return (_mix(z) >> np.uint64(11)) * 2.0**-53


def bernoulli_keep(u: np.ndarray, p: float, dtype: np.dtype, scale: bool) -> np.ndarray:
    """``u >= p`` as ``dtype``: 1 (kept) with probability ``1 - p``; times ``1 / (1 - p)``
    when ``scale`` (inverted dropout: the expectation is the identity)."""
    keep = (u >= p).astype(dtype)
    if scale:
        keep *= dtype.type(1 / (1 - p))
    return keep


@dataclass(frozen=True)
class Noise:
    """The masks of one training step (see the module docstring).

    Args:
        key: the step's key (``fit`` draws it from its seeded generator).
        row0: the global index of this batch's first row.
        t0: the time index of this chunk's first step (truncated BPTT).
        given: masks supplied from outside, used instead of drawn ones.
        layer: the layer index (set by ``Sequential.run`` through ``at``).
    """

    key: int = 0
    row0: int = 0
    t0: int = 0
    given: dict[str, np.ndarray] = field(default_factory=dict)
    layer: int = -1

    def at(self, layer: int) -> Noise:
        return replace(self, layer=layer)

    def mask(self, use: str, p: float, shape: tuple[int, ...], dtype: np.dtype,
             per_step: bool, scale: bool) -> np.ndarray:
        """A mask for ``use`` (``"dropout"``, ``"recurrent_dropout"``, ``"zoneout_h"``, …,
        with a direction suffix) of ``shape``: ``(T, B, F)`` when ``per_step``, else
        ``(B, F)``, rows the batch axis. A ``given`` one is checked and returned."""
        name = f"{self.layer}.{use}"
        if name in self.given:
            m = np.asarray(self.given[name], dtype)
            if m.shape != shape:
                raise ValueError(f"masks: {name!r} must have shape {shape}, got {m.shape}")
            return m
        code = USES.index(use.removesuffix("_reverse")) * 2 + use.endswith("_reverse")
        key = _mix_int(_mix_int(self.key ^ _mix_int(self.layer + 1)) + code)
        if per_step:
            return _draw(key, self.row0, self.t0, shape, p, dtype, scale)
        return _draw(key, self.row0, 0, (1, *shape), p, dtype, scale)[0]


def _draw(key: int, row0: int, t0: int, shape: tuple[int, int, int], p: float,
          dtype: np.dtype, scale: bool) -> np.ndarray:
    """The ``(T, B, F)`` mask of ``key`` for global rows from ``row0`` and steps from
    ``t0``: in compiled code when the compiled loops run (``kernels/masks.py``, the same
    entries), else with NumPy."""
    from . import kernels

    T, B, F = shape
    if kernels.running() == "numba":
        from .kernels import masks

        out = np.empty(shape, dtype)
        value = np.array([1 / (1 - p) if scale else 1], dtype)
        masks.draw(out, np.uint64(_mix_int(key)), np.uint64(row0), np.uint64(t0),
                   np.uint64(math.ceil(p * 2.0**53)), value)
        return out
    pos = np.arange(t0 * F, (t0 + T) * F)
    u = uniform(key, np.arange(row0, row0 + B), pos).reshape(B, T, F).swapaxes(0, 1)
    return bernoulli_keep(u, p, dtype, scale)
