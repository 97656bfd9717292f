"""The training loop: minibatch gradient descent with backpropagation through time.

Read ``Trainer.fit`` top to bottom: per epoch, shuffle, then per batch (and per truncated-BPTT
chunk) forward, loss, backward, clip, guard, step; then validation, history and callbacks.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .batches import Data, make_data, split_validation
from .callbacks import Callback, ModelCheckpoint, NaNGuard
from .checkpoint_state import collect, restore, restore_callbacks
from .distributed import (
    LOCAL,
    World,
    bcast_text,
    check_equal_weights,
    metric_parts,
    metric_values,
)
from .distributed import world as _world
from .history import History
from .layers import Recurrent
from .losses import get_loss
from .metrics import get_metric
from .noise import Noise
from .optim import LRSchedule, ReduceLROnPlateau, clip_grad_norm, clip_grad_value, global_norm
from .optim import get_optimizer as _get_optimizer

if TYPE_CHECKING:  # the model calls fit; fit only uses what it is given
    from .model import Sequential

CLASSIFICATION_LOSSES = ("cross_entropy", "binary_cross_entropy")
INTERRUPTED = "interrupted (Ctrl-C): stopped after the current batch"


class Trainer:
    """One ``fit`` call's state. Not reused across calls."""

    def __init__(self, model: Sequential, *, loss: Any, optimizer: Any, epochs: int,
                 batch_size: int, shuffle: bool, clip_norm: float | None,
                 clip_value: float | None, tbptt: int | None, metrics: Sequence[str] | None,
                 callbacks: Sequence[Callback], schedule: LRSchedule | None, seed: int,
                 world: World = LOCAL) -> None:
        self.model, self.world = model, world
        self.loss_name = loss if isinstance(loss, str) else getattr(loss, "__name__", "loss")
        self.loss = get_loss(loss)
        self.optimizer = _get_optimizer(optimizer)
        self.epochs = _positive(epochs, "epochs")
        self.batch_size = _positive(batch_size, "batch_size")
        self.tbptt = None if tbptt is None else _positive(tbptt, "tbptt")
        if self.tbptt and any(getattr(layer, "bidirectional", False) for layer in model.layers):
            raise ValueError("fit: tbptt cannot be used with a bidirectional layer (its reverse "
                             "direction needs each whole sequence)")
        for name, v in (("clip_norm", clip_norm), ("clip_value", clip_value)):
            if v is not None and not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"fit: {name} must be a positive number or None, got {v!r}")
        self.clip_norm, self.clip_value, self.shuffle = clip_norm, clip_value, shuffle
        if metrics is None:
            metrics = ["accuracy"] if self.loss_name in CLASSIFICATION_LOSSES else ["rmse"]
        self.metrics = {m: get_metric(m) for m in metrics}
        # one progress display and one writer: rank 0 runs the callbacks that only report
        self.callbacks = [c for c in callbacks
                          if world.rank == 0 or not getattr(c, "rank0_only", False)]
        if not any(isinstance(c, NaNGuard) for c in self.callbacks):
            self.callbacks.append(NaNGuard())
        self.seq_out = not any(isinstance(layer, Recurrent) and not layer.return_sequences
                               for layer in model.layers)
        self._buffer: np.ndarray | None = None
        # checkpoints last: what they save includes the epoch's decisions (stop, best, wait)
        self.callbacks.sort(key=lambda c: isinstance(c, ModelCheckpoint))
        self.schedule = schedule
        self.rng = np.random.default_rng(seed)
        self.history = History()
        self.epoch = 0
        self.stop: str | None = None  # a decision: saved in checkpoints, kept on resume
        # Ctrl-C is no decision (never saved: a resumed run goes on). ctrl_c is this process's
        # request, interrupted the agreed stop: at once alone, over MPI at the next Allreduce
        self.ctrl_c = self.interrupted = False
        self.saved_callbacks: dict[str, Any] = {}
        self.resumed_from: str | None = None
        self.n_batches = 0

    # --- the loop -------------------------------------------------------------------------
    def fit(self, train: Data, val: Data | None) -> History:
        self.n_batches = math.ceil(train.n / self.batch_size)
        for cb in self.callbacks:
            cb.on_train_begin(self)
        restore_callbacks(self)
        with _sigint_stops(self):
            while self.epoch < self.epochs and self.stop is None and not self.interrupted:
                start = time.perf_counter()
                order = self.rng.permutation(train.n) if self.shuffle else np.arange(train.n)
                sums = {"loss": 0.0, "n": 0, "norms": [], "skipped": 0}
                sums.update({m: 0.0 for m in self.metrics})
                for b in range(self.n_batches):
                    idx = order[b * self.batch_size : (b + 1) * self.batch_size]
                    # this rank reads only its share of the global batch
                    batch = train.take(idx[self.world.share(len(idx))])
                    lengths = None if train.lengths is None else train.lengths[idx]
                    # Overflow to inf/NaN is the guard's job (skip, count, maybe stop), not
                    # a FloatingPointError or a warning from deep inside NumPy.
                    with np.errstate(over="ignore", invalid="ignore"):
                        logs = self.train_batch(batch, sums, lengths, len(idx))
                    for cb in self.callbacks:
                        cb.on_batch_end(self, b, logs)
                    if self.stop is not None or self.interrupted:
                        break
                if self.interrupted:
                    break  # a cut-short epoch is not recorded: checkpoints hold whole epochs
                if self.stop is None and sums["n"] == 0:
                    self.stop = (f"stopped: no step of epoch {self.epoch + 1} could be applied "
                                 "(every loss or gradient was NaN/Inf)")
                if self.stop is not None:
                    break
                logs = self.epoch_logs(sums, val, time.perf_counter() - start)
                self.history.epochs.append(logs)
                self.step_schedule(logs)
                for cb in self.callbacks:
                    cb.on_epoch_end(self, self.epoch, logs)
                self.epoch += 1
                self.agree_to_stop()
        self.history.stop_reason = self.stop or (INTERRUPTED if self.interrupted else None)
        for cb in self.callbacks:
            cb.on_train_end(self)
        return self.history

    def train_batch(self, batch: Data, sums: dict[str, Any], lengths: np.ndarray | None = None,
                    n: int | None = None) -> dict[str, Any]:
        """Forward, backward, clip and step on one batch, chunk by chunk under ``tbptt``:
        the state is carried across chunks but no gradient crosses a chunk boundary.

        ``batch`` is this rank's share of a global batch of ``n`` rows whose ``lengths`` are
        given (None: all full): the chunks, and each chunk's loss count (rows, or unmasked
        steps), are those of the global batch, so every rank takes the same steps."""
        model, w = self.model, self.world
        n = batch.n if n is None else n
        if lengths is None:
            lengths = batch.lengths
        rows, T = batch.n, batch.X.shape[1]
        if rows:  # an empty share (a short last batch over many ranks) still joins every step
            x, batch_mask, batch_y = batch.tensors(model)
        k = self.tbptt or T
        state, logs = None, {"skipped": False}
        # one key a batch from the seeded generator (so a checkpoint's generator state
        # resumes the masks too), drawn only by models that drop out: others' runs unchanged
        key = int(self.rng.integers(2**63)) if model.stochastic else None
        row0 = w.share(n).start  # masks by global row: K ranks draw what one process does

        def noise(t0: int) -> Noise | None:
            return None if key is None else Noise(key, row0=row0, t0=t0)

        for s in range(0, T, k):
            e = min(s + k, T)
            steps = None if lengths is None else np.clip(lengths - s, 0, e - s)
            if steps is not None and not steps.any():
                break  # every sequence of the batch has ended
            last_chunk = e == T
            if not self.seq_out and not last_chunk:
                if rows:  # last-step targets: earlier chunks only carry the state forward
                    mask = None if batch_mask is None else batch_mask[s:e]
                    _, _, state = model.run(x[s:e], mask, state, noise=noise(s))
                continue
            # the loss is a mean over the global batch's rows (last step) or unmasked steps
            total = n if not self.seq_out else (
                n * (e - s) if steps is None else int(steps.sum()))
            model.zero_grad()
            value, extra = 0.0, np.zeros(len(self.metrics) * (2 if w.size > 1 else 1))
            mine = self._count(batch, s, e) if rows else 0
            if mine:
                mask = None if batch_mask is None else batch_mask[s:e]
                out, tape, state = model.run(x[s:e], mask, state, noise=noise(s))
                y = batch_y[:, s:e] if out.ndim == 3 else batch_y
                out_bf, mask_bf = _batch_first(out, mask)
                value, d = self.loss(out_bf, y, mask_bf)
                if w.size > 1:  # this share's part of the global mean
                    value, d = value * (mine / total), d * (mine / total)
                model.backprop(tape, _batch_first(d)[0])
                extra = metric_parts(self.metrics, out_bf, y, mask_bf, mine, rows) if (
                    w.size > 1) else np.array([fn(out_bf, y, mask_bf) * rows
                                               for fn in self.metrics.values()])
            grads = model.gradients()
            if w.size > 1:  # the global batch's metrics, exactly (as rows x value, below)
                value, extra = self.allreduce(grads, value, extra)
                extra = metric_values(self.metrics, extra) * n
            norm = self.clip(grads)
            logs = {"skipped": False, "loss": value, "grad_norm": norm}
            if not (math.isfinite(value) and math.isfinite(norm)):
                sums["skipped"] += 1
                logs["skipped"] = True
                continue  # the guard: a non-finite step is never applied
            self.optimizer.step(model.parameters(), grads)
            sums["loss"] += value * n
            sums["n"] += n
            sums["norms"].append(norm)
            for name, v in zip(self.metrics, extra):
                sums[name] += v
        return logs

    def _count(self, batch: Data, s: int, e: int) -> int:
        if not self.seq_out:
            return batch.n
        if batch.lengths is None:
            return batch.n * (e - s)
        return int(np.clip(batch.lengths - s, 0, e - s).sum())

    def allreduce(self, grads: dict[str, np.ndarray], value: float,
                  extra: np.ndarray) -> tuple[float, np.ndarray]:
        """Sum the ranks' gradients, loss shares, metric sums and stop flags in one in-place
        Allreduce of one flat buffer; the gradients come back summed, in place."""
        size = sum(g.size for g in grads.values())
        m = len(extra)
        if self._buffer is None or self._buffer.size != size + m + 2:
            self._buffer = np.empty(size + m + 2, self.model.dtype)
        buf, o = self._buffer, 0
        for g in grads.values():
            buf[o : o + g.size] = g.ravel()
            o += g.size
        buf[o], buf[o + 1 : o + 1 + m], buf[-1] = value, extra, float(self.ctrl_c)
        self.world.allreduce(buf)
        o = 0
        for g in grads.values():
            g[...] = buf[o : o + g.size].reshape(g.shape)
            o += g.size
        if buf[-1] > 0:
            self.interrupted = True
        return float(buf[o]), buf[o + 1 : o + 1 + m].astype(np.float64)

    def agree_to_stop(self) -> None:
        """Rank 0 decides whether training stops (its callbacks saw the same reduced logs);
        a Ctrl-C seen by any rank stops all of them."""
        w = self.world
        if w.size == 1:
            return
        if w.allreduce(np.array([float(self.ctrl_c)]))[0] > 0:
            self.interrupted = True
        self.stop = bcast_text(w, self.stop)

    def clip(self, grads: dict[str, np.ndarray]) -> float:
        if self.clip_norm is not None:
            return clip_grad_norm(grads, self.clip_norm)
        if self.clip_value is not None:
            return clip_grad_value(grads, self.clip_value)
        return global_norm(grads)

    def epoch_logs(self, sums: dict[str, Any], val: Data | None, seconds: float) -> dict:
        n = sums["n"]
        logs: dict[str, float] = {"epoch": self.epoch + 1, "loss": sums["loss"] / n}
        logs.update({m: sums[m] / n for m in self.metrics})
        if val is not None:
            logs.update({f"val_{k}": v for k, v in evaluate_data(
                self.model, val, self.loss, self.metrics, self.world).items()})
        norms = sums["norms"]
        logs.update({"grad_norm": float(np.mean(norms)), "grad_norm_max": float(np.max(norms)),
                     "skipped": sums["skipped"], "lr": self.optimizer.lr, "time": seconds})
        return logs

    def step_schedule(self, logs: dict[str, float]) -> None:
        if self.schedule is None:
            return
        if isinstance(self.schedule, ReduceLROnPlateau):
            self.schedule.step(logs.get("val_loss", logs["loss"]))
        else:
            self.schedule.step()

    # --- checkpoints ----------------------------------------------------------------------
    def bad_weights(self) -> bool:
        return not all(np.all(np.isfinite(v)) for v in self.model.parameters().values())

    def save_checkpoint(self, path: str) -> None:
        """Everything the run needs to go on exactly as if it never stopped (after a whole
        epoch; ``checkpoint_state`` lists it). Rank 0 writes, after checking that every rank
        holds the same weights."""
        from .checkpoint import save_model

        check_equal_weights(self.world, self.model.parameters(), f"epoch {self.epoch + 1}")
        if self.world.rank != 0:
            return
        state, tensors = collect(self)
        save_model(self.model, path, getattr(self.model, "metadata", None),
                   extra_tensors=tensors, checkpoint=state)

    def resume(self, path: str) -> None:
        from .checkpoint import load_checkpoint

        saved, tensors, state = load_checkpoint(path, type(self.model))
        if saved.get_config()["layers"] != self.model.get_config()["layers"]:
            raise ValueError(f"resume: {path} holds a different model than the one being "
                             "trained (layers or options differ)")
        for k, v in self.model.parameters().items():
            v[...] = saved.parameters()[k]
        restore(self, state, tensors, path)


def evaluate_data(model: Sequential, data: Data, loss: Any, metrics: dict,
                  world: World = LOCAL) -> dict[str, float]:
    """Loss and metrics of ``model`` on ``data``: the forward pass runs block by block (no
    tape kept), the loss and metrics once over all outputs. Over K ranks each runs its share
    of the rows, rank 0 gathers the outputs and computes the numbers, and every rank gets
    them: the same numbers as one process."""
    w = world if data.n >= world.size else LOCAL
    mine = data.take(w.share(data.n)) if w.size > 1 else data
    outs = []
    for _, block in mine.blocks():
        x, mask, _ = block.tensors(model)
        out, _, _ = model.run(x, mask, train=False)
        outs.append(_batch_first(out)[0])
    out = np.concatenate(outs)
    names, values = ["loss", *metrics], np.zeros(1 + len(metrics))
    if w.size > 1:
        out = w.gather(out)
    if w.rank == 0:
        mask = None
        if out.ndim == 3 and data.lengths is not None and np.any(data.lengths < out.shape[1]):
            mask = np.arange(out.shape[1])[None, :] < data.lengths[:, None]  # (B, T)
        values[:] = _scores(out, np.asarray(data.y), mask, loss, metrics)
    return dict(zip(names, w.bcast(values).tolist()))


def _scores(out, y, mask, loss: Any, metrics: dict) -> list[float]:
    return [float(loss(out, y, mask)[0]), *(float(fn(out, y, mask)) for fn in metrics.values())]


def _batch_first(out: np.ndarray, mask: np.ndarray | None = None):
    """Time-major ``(T, B, F)`` → batch-first views, with the ``(B, T)`` mask that losses
    take (None for last-step outputs, whose padding was already resolved)."""
    if out.ndim != 3:
        return out, None
    return out.swapaxes(0, 1), None if mask is None else mask.T


def _positive(v: Any, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"fit: {name} must be a positive integer, got {v!r}")
    return int(v)


class _sigint_stops:
    """Ctrl-C sets ``trainer.interrupted`` so that training ends after the current batch with the
    weights intact, instead of a KeyboardInterrupt in the middle of an optimizer update."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer, self.previous = trainer, None

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.trainer.ctrl_c = True
        if self.trainer.world.size == 1:
            self.trainer.interrupted = True
        # else the ranks stop together: the flag travels with the next step's Allreduce

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def fit(model: Sequential, X: Any, y: Any, *, loss: Any = "mse", optimizer: Any = "adam",
        epochs: int = 10, batch_size: int = 32, shuffle: bool = True,
        clip_norm: float | None = None, clip_value: float | None = None,
        tbptt: int | None = None, validation_data: tuple | None = None,
        validation_split: float | None = None, callbacks: Sequence[Callback] = (),
        metrics: Sequence[str] | None = None, schedule: LRSchedule | None = None,
        lengths: Any = None, seed: int = 0, resume: str | None = None,
        distributed: str | World = "auto", verbose: int = 0) -> History:
    """Train ``model`` in place; see ``Sequential.fit`` for the arguments."""
    if verbose not in (0, 1, 2):
        raise ValueError(f"fit: verbose must be 0 (silent), 1 (bars) or 2 (a line per epoch), "
                         f"got {verbose!r}")
    w = _world(distributed)
    if verbose and w.rank == 0:  # over MPI one rank draws
        from .callbacks import ProgressBar

        callbacks = [*callbacks, ProgressBar(verbose)]
    try:
        return _fit(model, X, y, w, loss=loss, optimizer=optimizer, epochs=epochs,
                    batch_size=batch_size, shuffle=shuffle, clip_norm=clip_norm,
                    clip_value=clip_value, tbptt=tbptt, validation_data=validation_data,
                    validation_split=validation_split, callbacks=callbacks, metrics=metrics,
                    schedule=schedule, lengths=lengths, seed=seed, resume=resume)
    except Exception as e:
        w.fail(e)  # over MPI: one message, then the whole job ends instead of hanging
        raise


def _fit(model: Sequential, X: Any, y: Any, w: World, *, validation_data: tuple | None,
         validation_split: float | None, lengths: Any, resume: str | None,
         **options: Any) -> History:
    train = make_data(model, X, y, lengths, check=w.share)
    val = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("fit: validation_data must be (X_val, y_val) or "
                             "(X_val, y_val, lengths_val)")
        val = make_data(model, *validation_data[:2],
                        validation_data[2] if len(validation_data) == 3 else None, "X_val")
    elif validation_split is not None:
        train, val = split_validation(train, validation_split)
    trainer = Trainer(model, world=w, **options)
    if resume is not None:
        trainer.resume(resume)
    model.fit_config_ = {"loss": options["loss"], "metrics": list(trainer.metrics)}
    return trainer.fit(train, val)


def evaluate(model: Sequential, X: Any, y: Any, *, loss: Any = None,
             metrics: Sequence[str] | None = None, lengths: Any = None) -> dict[str, float]:
    """Loss and metrics on ``(X, y)``; ``loss`` and ``metrics`` default to the last fit's."""
    last = getattr(model, "fit_config_", {})
    loss = loss if loss is not None else last.get("loss", "mse")
    if metrics is None:
        metrics = last.get("metrics") or (
            ["accuracy"] if loss in CLASSIFICATION_LOSSES else ["rmse"])
    fns = {m: get_metric(m) for m in metrics}
    return evaluate_data(model, make_data(model, X, y, lengths), get_loss(loss), fns)
