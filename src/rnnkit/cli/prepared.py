"""What a task module hands to ``train``: arrays ready for ``fit``, and the model to fit.

Each task (``task_forecast``, ``task_classify``, ``task_charlm``) exposes ``prepare(record,
settings, name) -> Prepared``, ``report(model, prepared) -> dict`` (model and baselines on the
held-out part), ``evaluate(model, meta, record) -> dict`` and ``plots(...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import rnnkit as rk

from .common import UsageError
from .settings import Settings

CELL_TYPES = {"rnn": rk.RNN, "lstm": rk.LSTM, "gru": rk.GRU}


@dataclass
class Prepared:
    """A task's data, split and scaled, plus what goes into the model file's metadata."""

    task: str
    name: str
    X: Any  # training inputs: (N, T, D), a list of (T_i, D), or ids (N, T)
    y: Any
    val: tuple | None  # (X_val, y_val) or None when --val is 0
    loss: Any  # a loss name, or a loss function (quantile loss at the chosen levels)
    metric: str | None  # the metric fit logs ("rmse", "accuracy"); None: loss only
    out_size: int
    meta: dict[str, Any]  # saved in the model file: what evaluate/predict/generate need
    held_out: dict[str, Any] = field(default_factory=dict)  # the test part and its context
    vocab_size: int = 0  # > 0: the model starts with an Embedding
    lengths: Any = None  # (N,) steps of each sequence of a padded X (or None)


def build_model(s: Settings, p: Prepared) -> rk.Sequential:
    """The recurrent stack the settings describe, with the task's output layer."""
    if s.bidirectional and p.task == "charlm":
        raise UsageError(
            "--bidirectional cannot be used with charlm: the reverse direction "
            "would read the very characters the model must predict"
        )
    layers: list[Any] = []
    if p.vocab_size:
        layers.append(rk.Embedding(p.vocab_size, s.embedding_dim))
    cell = CELL_TYPES[s.cell]
    for i in range(s.layers):
        # every layer but the last feeds a sequence on; a language model predicts every step
        seq = p.task == "charlm" or i < s.layers - 1
        variants = {k: v for k, v in (("layer_norm", s.layer_norm), ("peepholes", s.peepholes),
                                      ("proj_size", s.proj_size)) if v}
        try:
            layers.append(
                cell(
                    s.hidden,
                    activation=s.activation,
                    return_sequences=seq,
                    bidirectional=s.bidirectional,
                    recurrent_dropout=s.recurrent_dropout,
                    zoneout=s.zoneout,
                    **variants,
                )
            )
        except ValueError as e:  # an option the cell does not have, proj_size >= hidden
            raise UsageError(f"--cell {s.cell}: {e}") from None
        if s.dropout:
            layers.append(rk.Dropout(s.dropout))
    layers.append(rk.Dense(p.out_size))
    return rk.Sequential(layers, seed=s.seed)


def build_schedule(s: Settings, optimizer: Any) -> Any:
    """The ``--schedule`` bound to ``optimizer`` (``None`` for ``none``)."""
    from rnnkit.optim import CosineAnnealingLR, ExponentialLR, ReduceLROnPlateau, StepLR

    epochs = s.epochs or 1
    return {
        "none": lambda: None,
        "cosine": lambda: CosineAnnealingLR(optimizer, T_max=epochs),
        "step": lambda: StepLR(optimizer, step_size=max(1, epochs // 3)),
        "exponential": lambda: ExponentialLR(optimizer, gamma=0.95),
        "plateau": lambda: ReduceLROnPlateau(optimizer, patience=5),
    }[s.schedule]()


def describe(model: rk.Sequential) -> str:
    """A short model name for tables, e.g. ``LSTM(32)x2``."""
    rec = [layer for layer in model.layers if getattr(layer, "recurrent", False)]
    if not rec:
        return "model"
    first = rec[0]
    name = f"{'bi' if first.bidirectional else ''}{first.kind}({first.hidden})"
    return name + (f"x{len(rec)}" if len(rec) > 1 else "")
