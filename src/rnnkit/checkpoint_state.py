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
from .history import History
from .optim import OPTIMIZERS, schedules
from .schema import Check, fail, integer, list_of, number, obj, one_of, optional, text

if TYPE_CHECKING:
    from .training import Trainer

FORMAT = 2
MAX_EPOCHS = 10**7  # far beyond any run; bounds what a file can make us allocate or loop over
OPTIM, CALLBACK = "optim/", "callback/"
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
    if isinstance(state, dict) and "format" not in state:  # format 1
        state = {"format": FORMAT, "stop": None, "callbacks": {}, **state}
    try:
        state = _schema(tensors, params)(state, "checkpoint")
        for k in tensors:
            if not k.startswith((OPTIM, CALLBACK)):
                fail("checkpoint", "tensors 'optim/...' or 'callback/...' besides the weights",
                     k)
    except ModelFileError as e:
        raise ModelFileError(f"{name}: {e}") from None
    return state


def _schema(tensors: dict[str, np.ndarray], params: dict[str, np.ndarray]) -> Check:
    def epoch_is_history(d: dict, path: str) -> None:
        if d["epoch"] != len(d["history"]["epochs"]):
            fail(f"{path}.epoch", f"the number of epochs in the history "
                 f"({len(d['history']['epochs'])})", d["epoch"])

    return obj({"format": one_of(FORMAT), "epoch": integer(0, MAX_EPOCHS),
                "stop": optional(text()), "optimizer": _optimizer(tensors, params),
                "schedule": optional(_schedule), "rng": RNG, "history": HISTORY,
                "callbacks": _callbacks(tensors, params)}, rules=[epoch_is_history])


def _record(v: Any, path: str) -> dict[str, float]:
    """One epoch's logs: numbers by name, ``epoch`` and ``loss`` among them (a validation
    loss may be inf: any float)."""
    if not isinstance(v, dict) or "epoch" not in v or "loss" not in v:
        fail(path, "an epoch's record with an epoch and a loss", v)
    for k, x in v.items():
        text(100)(k, path)
        if type(x) not in (int, float):
            fail(f"{path}.{_name(k)}", "a number", x)
    return v


def _numbered(d: dict, path: str) -> None:
    for i, e in enumerate(d["epochs"]):
        if e["epoch"] != i + 1:
            fail(f"{path}.epochs[{i}].epoch", str(i + 1), e["epoch"])


HISTORY = obj({"epochs": list_of(_record, 0, MAX_EPOCHS), "stop_reason": optional(text())},
              rules=[_numbered])
_U128 = integer(0, (1 << 128) - 1)
RNG = obj({"bit_generator": one_of("PCG64"), "state": obj({"state": _U128, "inc": _U128}),
           "has_uint32": integer(0, 1), "uinteger": integer(0, (1 << 32) - 1)})


def _optimizer(tensors: dict[str, np.ndarray], params: dict[str, np.ndarray]) -> Check:
    classes = {c.__name__: c for c in OPTIMIZERS.values()}

    def steps(v: Any, path: str) -> dict[str, int]:
        if not isinstance(v, dict):
            fail(path, "an object {parameter: steps}", v)
        for k, n in v.items():
            if k not in params:
                fail(path, "only the model's parameters as keys", k)
            integer(0, 1 << 53)(n, f"{path}.{_name(k)}")
        return v

    def consistent(o: dict, path: str) -> None:
        cls = classes[o["class"]]
        hyper, ref = o["hyperparameters"], cls(lr=0.01).hyperparameters()
        if not isinstance(hyper, dict) or set(hyper) != set(ref):
            fail(f"{path}.hyperparameters", f"the keys {sorted(ref)}", hyper)
        for k, v in hyper.items():
            if not _like(v, ref[k]):
                fail(f"{path}.hyperparameters.{k}", f"a value like {ref[k]!r}", v)
        try:
            cls(**hyper)
        except (ValueError, TypeError) as e:
            fail(f"{path}.hyperparameters", "valid settings", got=str(e)[:200])
        for key, a in tensors.items():
            if key.startswith(OPTIM):
                buf, _, p = key[len(OPTIM):].partition(".")
                if buf not in cls.buffers or p not in params:
                    fail(path, f"slots '<buffer>.<parameter>' with a buffer of {o['class']} "
                         f"{list(cls.buffers)}", key)
                _same(key, a, params[p])
                if not o["steps"].get(p):
                    fail(f"{path}.steps.{p}", "at least one step (it has a slot)",
                         o["steps"].get(p))

    return obj({"class": one_of(*classes), "hyperparameters": _anything, "steps": steps},
               rules=[consistent])


def _schedule(s: Any, path: str) -> dict[str, Any]:
    if not isinstance(s, dict) or not isinstance(s.get("class"), str) \
            or s["class"] not in SCHEDULES:
        fail(path, f"null or the state of one of {', '.join(SCHEDULES)}", s)
    cls = SCHEDULES[s["class"]]
    init = list(inspect.signature(cls.__init__).parameters)[2:]  # after self, optimizer
    try:
        ref = cls(_Dummy(), **{k: s[k] for k in init if k in s})
    except (ValueError, TypeError) as e:
        fail(path, "valid settings", got=str(e)[:200])
    fields = {k: v for k, v in vars(ref).items() if k != "optimizer"}
    if set(s) - {"class"} != set(fields):
        fail(path, f"the keys {sorted(fields)}", sorted(s))
    for k, v in fields.items():
        if k == "best":
            optional(number())(s[k], f"{path}.best")
        elif not _like(s[k], v) or (_number(v) and s[k] < 0):
            fail(f"{path}.{k}", f"a value like {v!r}", s[k])
    return s


def _callbacks(tensors: dict[str, np.ndarray], params: dict[str, np.ndarray]) -> Check:
    def check(c: Any, path: str) -> dict[str, Any]:
        if not isinstance(c, dict):
            fail(path, "an object {key: {'class', 'state'}}", c)
        for key, entry in c.items():
            if not _KEY.fullmatch(key):
                fail(path, "keys 'ClassName' or 'ClassName#n'", key)
            obj({"class": one_of(key.partition("#")[0]), "state": _anything})(
                entry, f"{path}.{key}")
        owned: dict[str, set[str]] = {}
        for key, a in tensors.items():
            if key.startswith(CALLBACK):
                owner, _, p = key[len(CALLBACK):].partition("/")
                if owner not in c or p not in params:
                    fail(path, "tensors 'callback/<key>/<parameter>'", key)
                _same(key, a, params[p])
                owned.setdefault(owner, set()).add(p)
        for owner, names in owned.items():
            if names != set(params):
                fail(f"{path}.{owner}", "one tensor per parameter",
                     got=f"{len(names)} of {len(params)}")
        return c
    return check


def _anything(v: Any, path: str) -> Any:
    return v  # checked later by its owner (the optimizer's rule, the callback's loader)


class _Dummy:
    lr = 0.01  # a schedule reads only the optimizer's lr when it is built


def _same(key: str, a: np.ndarray, p: np.ndarray) -> None:
    if a.shape != p.shape or a.dtype != p.dtype:
        fail(f"tensor {key}", f"{p.dtype}{p.shape} (its parameter's)",
             got=f"{a.dtype}{a.shape}")


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


def _name(k: Any) -> str:
    """A key as it reads in a field path: plain if it is a plain name."""
    return k if isinstance(k, str) and re.fullmatch(r"[\w.#]{1,60}", k) else _short(k)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."
