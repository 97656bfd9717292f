"""Training data: checked once up front, then read batch by batch.

``X`` may be a memory-mapped array (``np.load("X.npy", mmap_mode="r")``): the up-front check
reads it in blocks, and each training step reads and converts only the rows of its batch, so
memory stays bounded by the batch size, not by the dataset size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .data.sequences import pad_sequences

if TYPE_CHECKING:
    from .model import Sequential

CHECK_ROWS = 1024  # rows per block of the up-front check; bounds its memory


@dataclass
class Data:
    """Batch-first samples: ``X (N, T, D)`` (or ids ``(N, T)``), targets ``y (N, ...)`` and
    optional ``lengths (N,)``. Any of the arrays may be memory-mapped."""

    X: Any
    y: Any
    lengths: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.X)

    def take(self, idx: np.ndarray | slice) -> Data:
        return Data(self.X[idx], self.y[idx], None if self.lengths is None else self.lengths[idx])

    def blocks(self, size: int = CHECK_ROWS) -> Iterator[tuple[int, Data]]:
        for start in range(0, self.n, size):
            yield start, self.take(slice(start, start + size))

    def tensors(self, model: Sequential) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """``(x time-major, mask, y)`` in memory, ready for ``model.run`` and a loss."""
        x, mask, _ = model.prepare(self.X, self.lengths)
        return x, mask, np.asarray(self.y)


def make_data(model: Sequential, X: Any, y: Any, lengths: Any = None, name: str = "X",
              check: Callable[[int], slice] | None = None) -> Data:
    """Check ``X`` and ``y`` (block by block) and wrap them in a ``Data``; ``check(n)``
    names the rows to check (a rank's share: each rank of a data-parallel job checks its
    own, and one that finds bad data ends the job), all of them by default."""
    if isinstance(X, (list, tuple)):
        model.prepare(X)  # checks each sequence and names the bad one
        X, lengths = pad_sequences([np.asarray(s) for s in X])
    elif not hasattr(X, "shape"):
        X = np.asarray(X)
    t = y if hasattr(y, "shape") else np.asarray(y)
    if 0 in X.shape:
        raise ValueError(f"fit: {name} is empty, shape {X.shape}; expected at least one "
                         "sequence of at least one step")
    if X.ndim == (1 if model.takes_ids else 2):  # a single sequence: a batch of one
        model.prepare(X)  # so that an error shows the shape as given, not (1, T, D)
        t = np.asarray(t)
        # one target row per step is right only for a model that returns sequences
        seq_out = not any(getattr(layer, "recurrent", False) and not layer.return_sequences
                          for layer in model.layers)
        if not model.takes_ids and (t.ndim == 1 or (t.ndim == 2 and not seq_out)) \
                and len(t) == len(X) > 1:
            T, D = X.shape
            raise ValueError(
                f"fit: {name} of shape {X.shape} is one sequence of T={T} steps with D={D} "
                f"features, but y has {len(t)} entries (shape {t.shape}); if {name} holds {T} "
                f"sequences, give "
                f"it as (N, T, D): {name}[:, :, None] ({D} steps of one feature) or "
                f"{name}[:, None, :] (one step of {D} features)")
        X, t = X[None], t[None]
    if t.dtype.kind not in "biuf":
        raise TypeError(f"fit: y must be numeric, got dtype {t.dtype}")
    if t.ndim == 0 or t.shape[0] != len(X):
        raise ValueError(f"fit: {name} has {len(X)} samples but y has "
                         f"{t.shape[0] if t.ndim else 0} (shape {t.shape})")
    data = Data(X, t, None if lengths is None else np.asarray(lengths))
    if data.lengths is not None and data.lengths.shape != (len(X),):
        raise ValueError(f"fit: lengths must have one entry per sequence, shape ({len(X)},), "
                         f"got {data.lengths.shape}")
    rows = slice(0, data.n) if check is None else check(data.n)
    if rows.start == rows.stop:  # fewer rows than ranks: check one, which builds the model
        rows = slice(0, 1)
    for start, block in data.take(rows).blocks():
        start += rows.start
        model.prepare(block.X, block.lengths, offset=start)
        yb = np.asarray(block.y)
        if yb.dtype.kind == "f" and block.lengths is None:
            bad = ~np.isfinite(yb).reshape(len(yb), -1).all(axis=1)
            if bad.any():
                raise ValueError(f"fit: y must be finite; sample {start + int(np.argmax(bad))}"
                                 " has NaN/Inf")
    return data


def split_validation(data: Data, fraction: float) -> tuple[Data, Data]:
    """The last ``fraction`` of the samples (in the given order) become validation data."""
    if not (isinstance(fraction, float) and 0 < fraction < 1):
        raise ValueError(f"fit: validation_split must be a float in (0, 1), got {fraction!r}")
    n_val = round(data.n * fraction)
    if not 0 < n_val < data.n:
        raise ValueError(f"fit: validation_split={fraction} leaves no training or no validation "
                         f"samples out of {data.n}")
    return data.take(slice(0, data.n - n_val)), data.take(slice(data.n - n_val, data.n))
