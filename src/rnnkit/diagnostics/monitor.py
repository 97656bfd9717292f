"""``GradientFlowMonitor``: gradient flow recorded during ``fit``, every N epochs.

Pascanu, Mikolov & Bengio (2013) follow training through the norm of the gradient at the first
and the last step and the spectral radius of ``W_h``; this callback records exactly those, plus
the horizon and the verdict of ``gradient_flow`` on a fixed batch.

It needs a batch: ``X`` and ``y`` given to the constructor, which should be a small, fixed
sample of the training (or validation) data, e.g. ``X[:64], y[:64]`` (the training loop does
not hand its batches to callbacks, and a fixed batch makes the epochs comparable).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..callbacks import Callback
from .flow import gradient_flow

if TYPE_CHECKING:
    from ..training import Trainer


_NUM = (float, int)
RECORD_TYPES = {  # a record's fields and the JSON types each may come back as
    "epoch": (int,), "loss": (*_NUM, type(None)), "layer": (int,), "direction": (str,),
    "cell": (str,), "log10_grad_first": _NUM, "log10_grad_last": _NUM,
    "horizon": (*_NUM, type(None)), "rate": (*_NUM, type(None)), "lyapunov": _NUM,
    "spectral_radius": (*_NUM, type(None)), "verdict": (str,)}


class GradientFlowMonitor(Callback):
    """Record the gradient flow every ``every`` epochs (and once before the first).

    Args:
        every: epochs between records.
        X, y: the batch to diagnose (required; see the module docstring).
        loss: the loss; default the one ``fit`` trains with.
        lengths: lengths for a padded ``X``.
        max_samples: sequences used for Jacobian norms and Lyapunov exponents.
        at_start: also record before training (epoch 0).

    Attributes:
        records: one dict per record and layer/direction: ``epoch``, ``loss`` (the epoch's
            training loss; ``None`` at epoch 0), ``layer``, ``direction``, ``cell``,
            ``log10_grad_first``, ``log10_grad_last`` (``‖∂L/∂h_1‖``, ``‖∂L/∂h_T‖``),
            ``horizon``, ``rate``, ``lyapunov``, ``spectral_radius``, ``dead_share``,
            ``verdict``.
    """

    rank0_only = True  # its records feed rank 0's report and plots

    def __init__(self, every: int = 1, X: Any = None, y: Any = None, *, loss: Any = None,
                 lengths: Any = None, max_samples: int = 2, at_start: bool = True) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"GradientFlowMonitor: every must be a positive int, got {every!r}")
        self.every, self.X, self.y, self.loss = every, X, y, loss
        self.lengths, self.max_samples, self.at_start = lengths, max_samples, at_start
        self.records: list[dict[str, Any]] = []

    def on_train_begin(self, trainer: Trainer) -> None:
        if self.X is None or self.y is None:
            raise ValueError("GradientFlowMonitor needs a batch to diagnose: pass X= and y= "
                             "(e.g. X[:64], y[:64] of the training data)")
        if self.at_start and not self.records and trainer.epoch == 0:
            self.record(trainer, 0, None)  # a resumed run gets its start back from the checkpoint

    def state_dict(self) -> tuple[dict[str, Any], dict[str, Any]]:
        # plain Python numbers, inf kept (checkpoint JSON holds it; _plain would make it null)
        return {}, {"records": [{k: v.item() if hasattr(v, "item") else v for k, v in r.items()}
                                for r in self.records]}

    def load_state_dict(self, arrays: dict[str, Any], meta: dict[str, Any]) -> None:
        if arrays or not isinstance(meta, dict) or set(meta) != {"records"}:
            raise ValueError("expected {'records': [...]} and no arrays")
        records = meta["records"]
        if not isinstance(records, list) or len(records) > 1 << 20:
            raise ValueError(f"records: expected a list, got {type(records).__name__}")
        for i, r in enumerate(records):
            if not isinstance(r, dict) or set(r) != set(RECORD_TYPES):
                raise ValueError(f"records[{i}]: expected the keys {sorted(RECORD_TYPES)}")
            for key, kinds in RECORD_TYPES.items():
                if type(r[key]) not in kinds:
                    raise ValueError(f"records[{i}].{key}: expected "
                                     f"{'/'.join(k.__name__ for k in kinds)}, got {r[key]!r:.40}")
        self.records = [dict(r) for r in records]

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        if (epoch + 1) % self.every == 0:
            self.record(trainer, epoch + 1, logs.get("loss"))

    def record(self, trainer: Trainer, epoch: int, loss: float | None) -> None:
        """Diagnose ``trainer.model`` now and append one record per layer/direction."""
        report = gradient_flow(trainer.model, self.X, self.y, loss=self.loss or trainer.loss,
                               lengths=self.lengths, max_samples=self.max_samples)
        for f in report.flows:
            self.records.append({
                "epoch": epoch, "loss": loss, "layer": f.layer, "direction": f.direction,
                "cell": f.cell, "log10_grad_first": float(f.log10_grad_norm[0]),
                "log10_grad_last": float(f.log10_grad_norm[-1]), "horizon": f.horizon,
                "rate": f.rate, "lyapunov": float(f.lyapunov[0]),
                "spectral_radius": f.spectral_radius, "dead_share": f.dead_share,
                "verdict": f.verdict})

    def to_dict(self) -> dict[str, Any]:
        from .report import _plain

        return {"every": self.every, "records": _plain(self.records)}

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def plot(self, path: str) -> None:
        """Write a PNG of the records against the epoch."""
        from .plots import plot_monitor

        plot_monitor(self.records, path)
