"""Callbacks: hooks the training loop calls at the start, after each batch and each epoch.

A callback reads the ``Trainer`` it is given (model, optimizer, history, epoch) and may set
``trainer.stop`` to a reason string to end training after the current epoch.

A callback with state that decides the run (early stopping's best value and wait, the NaN
guard's count) returns it from ``state_dict()`` as ``(arrays, meta)``: arrays are ``None`` or
one per model parameter (e.g. best weights), meta is JSON. Checkpoints store it, and
``load_state_dict(arrays, meta)`` puts it back after ``on_train_begin`` on resume; it checks
what it gets (a checkpoint is an untrusted file) and raises ``ValueError`` naming the field.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .training import Trainer


class Callback:
    #: in a data-parallel job only rank 0 runs it (displays, writers); the others run every
    #: callback that may change the weights or stop training, on the same reduced logs
    rank0_only = False

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """``(arrays, meta)`` to checkpoint, or ``None`` for a callback without state."""
        return None

    def load_state_dict(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        raise ValueError(f"{type(self).__name__} keeps no state, yet the checkpoint has some")

    def on_train_begin(self, trainer: Trainer) -> None: ...

    def on_batch_end(self, trainer: Trainer, batch: int, logs: dict[str, Any]) -> None: ...

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None: ...

    def on_train_end(self, trainer: Trainer) -> None: ...


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs; with
    ``restore_best`` the model ends with the weights of its best epoch."""

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 mode: str = "min", restore_best: bool = True) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.mode, self.restore_best = mode, restore_best

    def on_train_begin(self, trainer: Trainer) -> None:
        self.best, self.best_epoch, self.weights, self.wait = math.inf, -1, None, 0

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        if self.monitor not in logs:
            raise ValueError(f"EarlyStopping: monitor {self.monitor!r} is not logged; logged: "
                             f"{', '.join(sorted(logs))} (val_* needs validation data)")
        value = logs[self.monitor] * (1 if self.mode == "min" else -1)
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self.weights = {k: v.copy() for k, v in trainer.model.parameters().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            trainer.stop = (f"early stopping: {self.monitor} did not improve for "
                            f"{self.patience} epochs (best at epoch {self.best_epoch + 1})")

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        best = None if math.isinf(self.best) else self.best  # inf: nothing seen yet
        return dict(self.weights or {}), {"best": best, "best_epoch": self.best_epoch,
                                          "wait": self.wait}

    def load_state_dict(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        _keys(meta, ("best", "best_epoch", "wait"))
        best, epoch = meta["best"], _int(meta, "best_epoch", -1)
        if best is not None and not (_number(best) and math.isfinite(best)):
            raise ValueError(f"best: expected a finite number or null, got {best!r:.40}")
        if (best is None) != (epoch == -1):
            raise ValueError(f"best_epoch: {epoch} does not go with best = {best!r}")
        if self.restore_best and epoch >= 0 and not arrays:
            raise ValueError("weights: restore_best needs the best epoch's weights; none saved")
        self.best = math.inf if best is None else float(best)
        self.best_epoch, self.wait = epoch, _int(meta, "wait", 0)
        self.weights = {k: v.copy() for k, v in arrays.items()} if arrays else None

    def on_train_end(self, trainer: Trainer) -> None:
        if self.restore_best and self.weights is not None:
            for k, v in trainer.model.parameters().items():
                v[...] = self.weights[k]


class ModelCheckpoint(Callback):
    """Save a resumable checkpoint (weights, optimizer state, epoch, RNG state, history) to
    ``path`` every ``every`` epochs, atomically; ``fit(..., resume=path)`` continues it."""

    def __init__(self, path: str | os.PathLike[str], every: int = 1) -> None:
        if int(every) < 1:
            raise ValueError(f"ModelCheckpoint: every must be >= 1, got {every}")
        self.path, self.every = os.fspath(path), int(every)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        if (epoch + 1) % self.every == 0 and not trainer.bad_weights():
            trainer.save_checkpoint(self.path)


class Progress(Callback):
    """Calls ``fn(event, info)`` with ``event`` in ``"begin"``, ``"batch"``, ``"epoch"``,
    ``"end"``; the CLI draws progress bars with it. ``info`` holds the numbers so far."""

    rank0_only = True  # one progress display for a data-parallel job

    def __init__(self, fn: Callable[[str, dict[str, Any]], None]) -> None:
        self.fn = fn

    def on_train_begin(self, trainer: Trainer) -> None:
        self.fn("begin", {"epochs": trainer.epochs, "batches": trainer.n_batches,
                          "start_epoch": trainer.epoch})

    def on_batch_end(self, trainer: Trainer, batch: int, logs: dict[str, Any]) -> None:
        self.fn("batch", {"epoch": trainer.epoch, "batch": batch, **logs})

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        self.fn("epoch", dict(logs))

    def on_train_end(self, trainer: Trainer) -> None:
        self.fn("end", {"stop_reason": trainer.history.stop_reason})


class ProgressBar(Callback):
    """What ``fit(verbose=1)`` shows, as Keras does: per epoch a bar that fills batch by batch
    (redrawn in place with ``\\r``), ending in the epoch's loss and metrics; ``verbose=2`` (or
    a stream that is not a terminal) prints only the epoch's line. Written to ``stream``
    (stderr by default): the one place where the library prints, because it was asked to."""

    WIDTH = 30

    def __init__(self, verbose: int = 1, stream: Any = None) -> None:
        import sys

        if verbose not in (1, 2):
            raise ValueError(f"ProgressBar: expected verbose 1 or 2, got {verbose!r}")
        self.stream = stream or sys.stderr
        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bars = verbose == 1 and tty

    def on_train_begin(self, trainer: Trainer) -> None:
        self.epochs, self.batches = trainer.epochs, trainer.n_batches

    def on_batch_end(self, trainer: Trainer, batch: int, logs: dict[str, Any]) -> None:
        if self.bars:
            self.stream.write("\r" + self._bar(trainer.epoch, batch + 1, logs.get("loss")))
            self.stream.flush()

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        keys = [k for k in logs if k == "loss" or k.startswith("val_") or k in trainer.metrics]
        stats = " - ".join(f"{k}: {logs[k]:.4f}" for k in keys
                           if isinstance(logs[k], (int, float)))
        head = self._bar(epoch, self.batches, None) if self.bars else \
            f"Epoch {epoch + 1}/{self.epochs}"
        self.stream.write(("\r" if self.bars else "") +
                          f"{head} - {logs.get('time', 0):.1f}s - {stats}\n")
        self.stream.flush()

    def _bar(self, epoch: int, done: int, loss: float | None) -> str:
        n = max(self.batches, 1)
        fill = self.WIDTH * done // n
        arrow = ">" if fill < self.WIDTH else ""
        bar = "=" * fill + arrow + "." * (self.WIDTH - fill - len(arrow))
        tail = f" - loss: {loss:.4f}" if loss is not None else ""
        return f"Epoch {epoch + 1}/{self.epochs} {done}/{n} [{bar}]{tail}"


class NaNGuard(Callback):
    """The non-finite step guard. A step whose loss or gradient is NaN/Inf is never applied
    (the loop skips it and counts it in the history); after ``max_in_row`` such steps in a row
    training stops, with the last good weights intact."""

    def __init__(self, max_in_row: int = 10) -> None:
        if int(max_in_row) < 1:
            raise ValueError(f"NaNGuard: max_in_row must be >= 1, got {max_in_row}")
        self.max_in_row = int(max_in_row)

    def on_train_begin(self, trainer: Trainer) -> None:
        self.in_row = 0

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {}, {"in_row": self.in_row}

    def load_state_dict(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        _keys(meta, ("in_row",))
        if arrays:
            raise ValueError(f"arrays: NaNGuard keeps none, got {sorted(arrays)[:3]}")
        self.in_row = _int(meta, "in_row", 0)

    def on_batch_end(self, trainer: Trainer, batch: int, logs: dict[str, Any]) -> None:
        self.in_row = self.in_row + 1 if logs.get("skipped") else 0
        if self.in_row >= self.max_in_row:
            trainer.stop = (f"stopped: {self.in_row} steps in a row had a non-finite loss or "
                            "gradient (they were skipped; weights are from the last good step). "
                            "Try a lower learning rate or clip_norm.")


def _keys(meta: Any, keys: tuple[str, ...]) -> None:
    if not isinstance(meta, dict) or set(meta) != set(keys):
        got = sorted(meta) if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"expected the keys {list(keys)}, got {got!s:.80}")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int(meta: dict[str, Any], key: str, low: int) -> int:
    v = meta[key]
    if type(v) is not int or not low <= v <= 1 << 31:
        raise ValueError(f"{key}: expected an integer in [{low}, 2**31], got {v!r:.40}")
    return v
