"""The contract between a one-step cell and the one generic time loop (layers/recurrent.py).

A cell knows one time step and nothing about time, batches of time, masks or directions.

Parameters, shared by every cell (``G`` gates, ``H`` hidden units, ``D`` inputs)::

    W_x (G*H, D)   W_h (G*H, H)   b (G*H,)        GRU adds b_hn (H,)

The time loop computes the input projection for all steps at once, before the loop::

    xz = X @ W_x.T + b                            # (T, B, G*H)

and then, for each step, calls::

    state, cache = cell.step(p, xz[t], state)     # state: tuple of (B, H) arrays, h first
    dxz, dhz, d_prev = cell.step_back(p, d_state, cache)

``step_back`` receives the gradient of the loss w.r.t. the new state (a tuple like ``state``)
and returns:

- ``dxz (B, G*H)``: gradient w.r.t. ``xz[t]``; the loop turns the stack of these into
  ``dW_x``, ``db`` and ``dX`` with one matrix product each, after the loop;
- ``dhz (B, G*H)``: gradient w.r.t. the hidden projection ``h_{t-1} @ W_h.T (+ b_hn)``; the
  loop turns the stack into ``dW_h`` (and ``db_hn``) after the loop. For the Elman cell and
  the LSTM this is the same array as ``dxz``; the GRU's reset gate makes them differ;
- ``d_prev``: gradient w.r.t. the previous state (a tuple), including the path through
  ``W_h``.

A cell's ``step`` stores nothing on ``self``; ``step_back`` reuses what ``step`` cached and
recomputes nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

State = tuple[np.ndarray, ...]


class Cell:
    """Base class: holds the sizes and activation choices, never per-call data."""

    #: number of gate blocks G in W_x, W_h and b
    gates: int = 1
    #: names of the state vectors carried from step to step, hidden state first
    state_names: tuple[str, ...] = ("h",)
    #: True when the gradient w.r.t. the hidden projection differs from the input one (GRU)
    separate_dhz: bool = False

    def __init__(self, hidden: int) -> None:
        self.hidden = hidden

    def param_shapes(self, input_size: int, bias: bool) -> dict[str, tuple[int, ...]]:
        gh = self.gates * self.hidden
        shapes = {"W_x": (gh, input_size), "W_h": (gh, self.hidden)}
        if bias:
            shapes["b"] = (gh,)
        return shapes

    def step(self, p: dict[str, np.ndarray], xz: np.ndarray, state: State) -> tuple[State, Any]:
        raise NotImplementedError

    def step_back(
        self, p: dict[str, np.ndarray], d_state: State, cache: Any
    ) -> tuple[np.ndarray, np.ndarray, State]:
        raise NotImplementedError
