"""Streaming inference: one new time step at a time, with the state carried between calls.

``stream.step(x_t)`` equals the last step of ``predict`` on the whole prefix seen so far,
because it runs the same layers on a one-step sequence starting from the carried state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
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
        model = self.model
        x = np.asarray(x_t)
        single = x.ndim == (0 if model.takes_ids else 1)
        x_tm, _, _ = model.prepare(x[None, None] if single else x[:, None])  # (B, 1, D) or (B, 1)
        out, _, self.states = model.run(x_tm, None, self.states, train=False)
        out = out[0] if out.ndim == 3 else out  # (B, F)
        return out[0] if single else out
