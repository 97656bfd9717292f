"""What a training checkpoint holds besides the model (format 2), and its checks on load.

``metadata["checkpoint"]`` is JSON:

    format     2
    epoch      whole epochs done; always ``len(history.epochs)``
    stop       the stop decision taken at that epoch (early stopping, the NaN guard) or null
    optimizer  {"class", "hyperparameters", "steps": {parameter: steps taken}}
    schedule   the learning-rate schedule's ``state_dict()`` or null
    rng        the shuffling generator's PCG64 state
    history    {"epochs": [one dict of numbers per epoch], "stop_reason"}
    callbacks  {key: {"class", "state"}}; the key is the class name, "#2", "#3"... for a second
               callback of the same class

Tensors besides the weights: ``optim/<buffer>.<parameter>`` (optimizer slots) and
``callback/<key>/<parameter>`` (early stopping's best weights), each with its parameter's shape
and dtype. Format 1 (before callbacks were saved) has no format, stop or callbacks; it is
migrated on load, its callbacks start afresh as they did then.

A checkpoint is an untrusted file: every field is checked before use, and a problem is a
``ModelFileError`` naming the field (``checkpoint.history.epochs[3].loss: ...``).
"""

from __future__ import annotations

import inspect
import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ModelFileError
from .optim import OPTIMIZERS, schedules

if TYPE_CHECKING:
    from .training import Trainer

FORMAT = 2
MAX_EPOCHS = 10**7  # far beyond any run; bounds what a file can make us allocate or loop over
OPTIM, CALLBACK = "optim/", "callback/"
KEYS = ("format", "epoch", "stop", "optimizer", "schedule", "rng", "history", "callbacks")
SCHEDULES = {c: getattr(schedules, c) for c in schedules.__all__ if c != "LRSchedule"}
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}(#[1-9][0-9]{0,5})?")


# ------------------------------------------------------------------------------ saving


def callback_keys(callbacks: list[Any]) -> list[tuple[str, Any]]:
    """``(key, callback)`` pairs: the class name, then ``name#2``... for repeats."""
    seen: dict[str, int] = {}
    out = []
    for cb in callbacks:
        name = type(cb).__name__
        seen[name] = seen.get(name, 0) + 1
        out.append((name if seen[name] == 1 else f"{name}#{seen[name]}", cb))
    return out


def collect(trainer: Trainer) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(metadata, tensors)`` of a checkpoint of ``trainer`` now (after a whole epoch)."""
    arrays, optim = trainer.optimizer.state_dict()
    tensors = {OPTIM + k: v for k, v in arrays.items()}
    callbacks = {}
    for key, cb in callback_keys(trainer.callbacks):
        saved = cb.state_dict()
        if saved is not None:
            cb_arrays, meta = saved
            callbacks[key] = {"class": type(cb).__name__, "state": meta}
            tensors.update({f"{CALLBACK}{key}/{k}": v for k, v in cb_arrays.items()})
    meta = {"format": FORMAT, "epoch": len(trainer.history.epochs), "stop": trainer.stop,
            "optimizer": optim,
            "schedule": None if trainer.schedule is None else trainer.schedule.state_dict(),
            "rng": trainer.rng.bit_generator.state, "history": trainer.history.to_dict(),
            "callbacks": callbacks}
    return meta, tensors


# ------------------------------------------------------------------------------ loading


def restore(trainer: Trainer, state: dict[str, Any], tensors: dict[str, np.ndarray],
            path: str) -> None:
    """Put a checked checkpoint back into ``trainer``; callbacks get theirs from
    ``restore_callbacks`` once ``on_train_begin`` has reset them."""
    from .training import History

    if state["optimizer"]["class"] != type(trainer.optimizer).__name__:
        raise ValueError(f"resume: {path} was trained with {state['optimizer']['class']}, this "
                         f"run uses {type(trainer.optimizer).__name__}")
    slots = {k[len(OPTIM):]: v for k, v in tensors.items() if k.startswith(OPTIM)}
    trainer.optimizer.load_state_dict(slots, state["optimizer"])
    if trainer.schedule is not None and state["schedule"] is not None:
        trainer.schedule.load_state_dict(state["schedule"])
    trainer.rng.bit_generator.state = state["rng"]
    trainer.history = History.from_dict(state["history"])
    trainer.epoch, trainer.stop = state["epoch"], state["stop"]
    trainer.saved_callbacks = {
        key: ({k[len(CALLBACK) + len(key) + 1:]: v for k, v in tensors.items()
               if k.startswith(f"{CALLBACK}{key}/")}, entry["state"])
        for key, entry in state["callbacks"].items()}
    trainer.resumed_from = path


def restore_callbacks(trainer: Trainer) -> None:
    """Each callback's saved state back into it (a callback the checkpoint does not know
    starts afresh; a saved state no callback claims is dropped)."""
    saved = getattr(trainer, "saved_callbacks", {})
    for key, cb in callback_keys(trainer.callbacks):
        if key in saved:
            try:
                cb.load_state_dict(*saved[key])
            except (ValueError, TypeError, KeyError) as e:
                raise ModelFileError(f"{trainer.resumed_from}: checkpoint.callbacks.{key}.state: "
                                     f"{e}") from None


def check(state: Any, tensors: dict[str, np.ndarray], params: dict[str, np.ndarray],
          name: str) -> dict[str, Any]:
    """The checkpoint metadata, migrated to the current format and checked field by field
    against itself and the model's parameters; ``ModelFileError`` names what is wrong."""

    def fail(field: str, expected: str, got: Any) -> ModelFileError:
        return ModelFileError(f"{name}: checkpoint.{field}: expected {expected}, got "
                              f"{_short(got)}")

    if not isinstance(state, dict):
        raise ModelFileError(f"{name}: checkpoint: expected an object, got {_short(state)}")
    if "format" not in state:  # format 1
        state = {"format": FORMAT, "stop": None, "callbacks": {}, **state}
    if set(state) != set(KEYS):
        raise ModelFileError(f"{name}: checkpoint: expected the keys {list(KEYS)}; missing "
                             f"{sorted(set(KEYS) - set(state))}, unexpected "
                             f"{_short(sorted(set(state) - set(KEYS)))}")
    if state["format"] != FORMAT or type(state["format"]) is not int:
        raise fail("format", f"1 or {FORMAT}", state["format"])
    _history(state["history"], fail)
    epoch = state["epoch"]
    if not _int(epoch, 0, MAX_EPOCHS) or epoch != len(state["history"]["epochs"]):
        raise fail("epoch", f"the number of epochs in the history "
                   f"({len(state['history']['epochs'])})", epoch)
    if state["stop"] is not None and not _text(state["stop"]):
        raise fail("stop", "null or a reason (text)", state["stop"])
    _optimizer(state["optimizer"], tensors, params, fail)
    _schedule(state["schedule"], fail)
    _rng(state["rng"], fail)
    _callbacks(state["callbacks"], tensors, params, fail)
    for k in tensors:
        if not k.startswith((OPTIM, CALLBACK)):
            raise ModelFileError(f"{name}: unexpected tensor {_short(k)}")
    return state


def _history(h: Any, fail: Any) -> None:
    if not isinstance(h, dict) or set(h) != {"epochs", "stop_reason"}:
        raise fail("history", "{'epochs': [...], 'stop_reason': ...}", h)
    epochs = h["epochs"]
    if not isinstance(epochs, list) or len(epochs) > MAX_EPOCHS:
        raise fail("history.epochs", "a list of per-epoch records", epochs)
    for i, e in enumerate(epochs):
        if not isinstance(e, dict) or e.get("epoch") != i + 1 or "loss" not in e:
            raise fail(f"history.epochs[{i}]", f"a record with epoch = {i + 1} and a loss", e)
        for k, v in e.items():
            if not (_text(k) and _number(v)):
                raise fail(f"history.epochs[{i}].{_name(k)}", "a number", v)
    if h["stop_reason"] is not None and not _text(h["stop_reason"]):
        raise fail("history.stop_reason", "null or text", h["stop_reason"])


def _optimizer(o: Any, tensors: dict[str, np.ndarray], params: dict[str, np.ndarray],
               fail: Any) -> None:
    if not isinstance(o, dict) or set(o) != {"class", "hyperparameters", "steps"}:
        raise fail("optimizer", "{'class', 'hyperparameters', 'steps'}", o)
    classes = {c.__name__: c for c in OPTIMIZERS.values()}
    cls = classes.get(o["class"]) if isinstance(o["class"], str) else None
    if cls is None:
        raise fail("optimizer.class", f"one of {sorted(classes)}", o["class"])
    hyper, ref = o["hyperparameters"], cls(lr=0.01).hyperparameters()
    if not isinstance(hyper, dict) or set(hyper) != set(ref):
        raise fail("optimizer.hyperparameters", f"the keys {sorted(ref)}", hyper)
    for k, v in hyper.items():
        if not _like(v, ref[k]):
            raise fail(f"optimizer.hyperparameters.{k}", f"a value like {ref[k]!r}", v)
    try:
        cls(**hyper)
    except (ValueError, TypeError) as e:
        raise fail("optimizer.hyperparameters", "valid settings", str(e)) from None
    steps = o["steps"]
    if not isinstance(steps, dict):
        raise fail("optimizer.steps", "an object {parameter: steps}", steps)
    for k, v in steps.items():
        if k not in params:
            raise fail("optimizer.steps", "only the model's parameters", k)
        if not _int(v, 0, 1 << 53):
            raise fail(f"optimizer.steps.{_name(k)}", "an integer >= 0", v)
    for key, a in tensors.items():
        if key.startswith(OPTIM):
            buf, _, p = key[len(OPTIM):].partition(".")
            if buf not in cls.buffers or p not in params:
                raise fail("optimizer", f"slots '<buffer>.<parameter>' with a buffer of "
                           f"{o['class']} {list(cls.buffers)}", key)
            _same(key, a, params[p], fail)
            if not steps.get(p):
                raise fail(f"optimizer.steps.{p}", "at least one step (it has a slot)",
                           steps.get(p))


def _schedule(s: Any, fail: Any) -> None:
    if s is None:
        return
    cls = SCHEDULES.get(s.get("class")) if isinstance(s, dict) and _text(s.get("class")) else None
    if cls is None:
        raise fail("schedule", f"null or a state of one of {sorted(SCHEDULES)}", s)
    init = list(inspect.signature(cls.__init__).parameters)[2:]  # after self, optimizer
    try:
        ref = cls(_Dummy(), **{k: s[k] for k in init if k in s})
    except (ValueError, TypeError) as e:
        raise fail("schedule", "valid settings", str(e)) from None
    fields = {k: v for k, v in vars(ref).items() if k != "optimizer"}
    if set(s) - {"class"} != set(fields):
        raise fail("schedule", f"the keys {sorted(fields)}", sorted(s))
    for k, v in fields.items():
        if k == "best":
            ok = s[k] is None or (_number(s[k]) and math.isfinite(s[k]))
        else:
            ok = _like(s[k], v) and not (_number(v) and s[k] < 0)
        if not ok:
            raise fail(f"schedule.{k}", f"a value like {v!r}", s[k])


def _rng(r: Any, fail: Any) -> None:
    ref = np.random.PCG64().state
    if not isinstance(r, dict) or set(r) != set(ref) or r["bit_generator"] != "PCG64":
        raise fail("rng", "a PCG64 state {'bit_generator', 'state', 'has_uint32', "
                   "'uinteger'}", r)
    inner = r["state"]
    if not isinstance(inner, dict) or set(inner) != {"state", "inc"}:
        raise fail("rng.state", "{'state': int, 'inc': int}", inner)
    for k in ("state", "inc"):
        if not _int(inner[k], 0, (1 << 128) - 1):
            raise fail(f"rng.state.{k}", "an integer in [0, 2**128)", inner[k])
    if not _int(r["has_uint32"], 0, 1):
        raise fail("rng.has_uint32", "0 or 1", r["has_uint32"])
    if not _int(r["uinteger"], 0, (1 << 32) - 1):
        raise fail("rng.uinteger", "an integer in [0, 2**32)", r["uinteger"])
    try:
        np.random.PCG64().state = r
    except (ValueError, TypeError) as e:
        raise fail("rng", "a valid PCG64 state", str(e)) from None


def _callbacks(c: Any, tensors: dict[str, np.ndarray], params: dict[str, np.ndarray],
               fail: Any) -> None:
    if not isinstance(c, dict):
        raise fail("callbacks", "an object {key: {'class', 'state'}}", c)
    for key, entry in c.items():
        if not _KEY.fullmatch(key):
            raise fail("callbacks", "keys 'ClassName' or 'ClassName#n'", key)
        if not isinstance(entry, dict) or set(entry) != {"class", "state"}:
            raise fail(f"callbacks.{key}", "{'class', 'state'}", entry)
        if entry["class"] != key.partition("#")[0]:
            raise fail(f"callbacks.{key}.class", repr(key.partition("#")[0]), entry["class"])
    owned: dict[str, set[str]] = {}
    for key, a in tensors.items():
        if key.startswith(CALLBACK):
            owner, _, p = key[len(CALLBACK):].partition("/")
            if owner not in c or p not in params:
                raise fail("callbacks", "tensors 'callback/<key>/<parameter>'", key)
            _same(key, a, params[p], fail)
            owned.setdefault(owner, set()).add(p)
    for owner, names in owned.items():
        if names != set(params):
            raise fail(f"callbacks.{owner}", "one tensor per parameter",
                       f"{len(names)} of {len(params)}")


class _Dummy:
    lr = 0.01  # a schedule reads only the optimizer's lr when it is built


def _same(key: str, a: np.ndarray, p: np.ndarray, fail: Any) -> None:
    if a.shape != p.shape or a.dtype != p.dtype:
        raise fail(key, f"{p.dtype}{p.shape} (its parameter's)", f"{a.dtype}{a.shape}")


def _like(v: Any, ref: Any) -> bool:
    """``v`` has the JSON type of ``ref`` (an int may stand for a float; bools are no numbers)."""
    if isinstance(ref, bool) or isinstance(v, bool):
        return type(v) is type(ref)
    if isinstance(ref, float):
        return _number(v) and math.isfinite(v)
    if isinstance(ref, int):
        return type(v) is int
    if isinstance(ref, (list, tuple)):
        return isinstance(v, list) and len(v) == len(ref) and all(map(_like, v, ref))
    return type(v) is type(ref)


def _number(v: Any) -> bool:
    return type(v) in (int, float)


def _int(v: Any, low: int, high: int) -> bool:
    return type(v) is int and low <= v <= high


def _text(v: Any) -> bool:
    return isinstance(v, str) and len(v) <= 10_000


def _name(k: Any) -> str:
    """A key as it reads in a field path: plain if it is a plain name."""
    return k if isinstance(k, str) and re.fullmatch(r"[\w.#]{1,60}", k) else _short(k)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."
