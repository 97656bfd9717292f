"""Streaming inference: one new time step at a time, with the state carried between calls.

``stream.step(x_t)`` equals the last step of ``predict`` on the whole prefix seen so far,
because it runs the same layers on a one-step sequence starting from the carried state.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .model import Sequential


class Stream:
    """Created by ``model.stream()``; ``step`` feeds one step, ``reset`` starts over."""

    def __init__(self, model: Sequential) -> None:
        for i, layer in enumerate(model.layers):
            if getattr(layer, "bidirectional", False):
                raise ValueError(f"stream: layer {i} is bidirectional; its reverse direction "
                                 "needs the whole sequence, so it cannot run step by step")
        self.model = model
        self.states: list | None = None

    def reset(self) -> None:
        self.states = None

    def step(self, x_t: Any) -> np.ndarray:
        """Feed ``x_t``: ``(D,)`` (or a token id) for one stream, ``(B, D)`` (or ``(B,)`` ids)
        for ``B`` streams at once. Returns the model's output for this step."""
        model, ids = self.model, self.model.takes_ids
        x = np.asarray(x_t)
        single = x.ndim == (0 if ids else 1)
        xb = x[None] if single else x
        out, _, self.states = model.run(self._time_major(xb, ids), None, self.states,
                                        train=False)
        out = out[0] if out.ndim == 3 else out  # (B, F)
        return out[0] if single else out

    def _time_major(self, xb: np.ndarray, ids: bool) -> np.ndarray:
        """``xb (B, D)`` (or ids ``(B,)``) as the model's input of one step, ``(1, B, D)``.
        Plain floats of the right width go straight through (the model's checks cost 3 µs,
        half of a small layer's step); anything else gets them, and their errors."""
        model = self.model
        if (not ids and xb.ndim == 2 and xb.dtype.kind == "f" and len(xb) and model.built
                and xb.shape[1] == model.layers[0].input_size):
            x = xb.astype(model.dtype, copy=False)
            # any NaN or inf makes the sum of squares NaN or inf (so may a huge finite value:
            # the full check below then passes it)
            if math.isfinite(np.vdot(x, x)):
                return x[None]
        return model.prepare(xb[:, None])[0]
