"""Optimizers that update named parameter arrays in place, step for step equal to torch.optim.

``opt.step(params, grads)`` walks ``grads`` (a parameter without a gradient is left alone) and
keeps per-parameter state (``exp_avg``, …) under the parameter's name, created on first use.
In the update rules below ``p`` is the parameter, ``g`` its gradient, ``t`` its step count
(1 on the first step) and every array operation is elementwise.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

Params = dict[str, np.ndarray]

__all__ = ["OPTIMIZERS", "SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "get_optimizer"]


def _check(name: str, value: float, ok: bool, expected: str) -> float:
    if not ok or not math.isfinite(value):
        raise ValueError(f"{name}: expected {expected}, got {value}")
    return float(value)


def _lerp(a: np.ndarray, b: np.ndarray, w: float) -> None:
    """``a += w * (b - a)`` in place, by torch.lerp's formula (exact at ``w = 1``)."""
    if w < 0.5:
        a += w * (b - a)
    else:
        np.subtract(b, (b - a) * (1 - w), out=a)


class Optimizer:
    """Base class: per-name state, step counts, ``state_dict``.

    Subclasses set ``buffers`` (the names of their state arrays), store every constructor
    argument as an attribute of the same name and implement ``_update``.
    """

    buffers: tuple[str, ...] = ()

    def __init__(self, lr: float) -> None:
        self.lr = lr
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.steps: dict[str, int] = {}

    @property
    def lr(self) -> float:
        """The learning rate; schedules set it between steps."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = _check("lr", value, value >= 0, "a learning rate >= 0")

    def hyperparameters(self) -> dict[str, Any]:
        """The constructor's arguments, JSON-able (``lr`` is the current one)."""
        names = list(inspect.signature(type(self).__init__).parameters)[1:]
        return {
            k: list(v) if isinstance(v, tuple) else v for k in names for v in [getattr(self, k)]
        }

    def _update(self, name: str, p: np.ndarray, g: np.ndarray, t: int) -> None:
        raise NotImplementedError

    def _buffer(self, name: str, key: str, p: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """The state array ``key`` of parameter ``name``, created as ``full_like(p, fill)``."""
        slot = self.state.setdefault(name, {})
        if key not in slot:
            slot[key] = np.full_like(p, fill)
        return slot[key]

    def step(self, params: Params, grads: Params) -> None:
        """Updates every parameter that has a gradient, in place."""
        for name, g in grads.items():
            p = params.get(name)
            if p is None:
                raise ValueError(f"grads: {name!r} has no parameter; params has {list(params)}")
            if np.shape(g) != p.shape:
                raise ValueError(
                    f"grads: {name!r} has shape {np.shape(g)}, expected {p.shape} (its parameter's)"
                )
            self.steps[name] = t = self.steps.get(name, 0) + 1
            self._update(name, p, np.asarray(g), t)

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Returns ``(arrays, meta)``: state arrays keyed ``"<buffer>.<param name>"`` (e.g.
        ``"exp_avg.0.W_h"``) and JSON-able ``{"class", "hyperparameters", "steps"}``."""
        arrays = {
            f"{k}.{name}": a.copy() for name, slot in self.state.items() for k, a in slot.items()
        }
        meta = {
            "class": type(self).__name__,
            "hyperparameters": self.hyperparameters(),
            "steps": dict(self.steps),
        }
        return arrays, meta

    def load_state_dict(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Restores hyperparameters, step counts and state arrays exactly (copies them)."""
        if meta.get("class") != type(self).__name__:
            raise ValueError(
                f"meta: expected class {type(self).__name__!r}, got {meta.get('class')!r}"
            )
        type(self).__init__(self, **meta["hyperparameters"])
        self.steps = {str(k): int(v) for k, v in meta["steps"].items()}
        for key, a in arrays.items():
            buf, _, name = key.partition(".")
            if buf not in self.buffers or not name:
                raise ValueError(
                    f"arrays: unexpected key {key!r}; expected '<buffer>.<name>' with buffer in "
                    f"{self.buffers}"
                )
            self.state.setdefault(name, {})[buf] = np.array(a, copy=True)


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, ``torch.optim.SGD``.

    ``g = g + weight_decay * p``; with momentum, ``buf = g`` on the first step, then
    ``buf = momentum * buf + (1 - dampening) * g``; ``g = g + momentum * buf`` (Nesterov) or
    ``g = buf``; finally ``p -= lr * g``.
    """

    buffers = ("momentum_buffer",)

    def __init__(
        self,
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr)
        self.momentum = _check("momentum", momentum, momentum >= 0, "a number >= 0")
        self.dampening = _check("dampening", dampening, True, "a finite number")
        self.weight_decay = _check("weight_decay", weight_decay, weight_decay >= 0, "a number >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"nesterov: requires momentum > 0 and dampening = 0, got momentum={momentum}, "
                f"dampening={dampening}"
            )
        self.nesterov = bool(nesterov)

    def _update(self, name: str, p: np.ndarray, g: np.ndarray, t: int) -> None:
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            slot = self.state.setdefault(name, {})
            buf = slot.get("momentum_buffer")
            if buf is None:
                buf = slot["momentum_buffer"] = g.astype(p.dtype, copy=True)
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), ``torch.optim.Adam``; ``AdamW`` decouples the weight decay.

    ``g = g + weight_decay * p`` (Adam) or ``p *= 1 - lr * weight_decay`` (AdamW);
    ``m += (1 - b1) * (g - m)``; ``v = b2 * v + (1 - b2) * g * g``;
    ``v_hat = maximum(v_hat, v)`` if amsgrad else ``v``;
    ``p -= lr / (1 - b1**t) * m / (sqrt(v_hat) / (1 - b2**t) ** 0.5 + eps)``.
    """

    buffers = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    decoupled = False

    def __init__(
        self,
        lr: float = 1e-3,
        betas: Sequence[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(lr)
        if len(betas) != 2:
            raise ValueError(f"betas: expected two numbers (beta1, beta2), got {betas}")
        b1, b2 = (
            _check(f"betas[{i}]", b, 0 <= b < 1, "a number in [0, 1)") for i, b in enumerate(betas)
        )
        self.betas = (b1, b2)
        self.eps = _check("eps", eps, eps > 0, "a number > 0")
        self.weight_decay = _check("weight_decay", weight_decay, weight_decay >= 0, "a number >= 0")
        self.amsgrad = bool(amsgrad)

    def _update(self, name: str, p: np.ndarray, g: np.ndarray, t: int) -> None:
        b1, b2 = self.betas
        if self.weight_decay and self.decoupled:
            p *= 1 - self.lr * self.weight_decay
        elif self.weight_decay:
            g = g + self.weight_decay * p
        m = self._buffer(name, "exp_avg", p)
        v = self._buffer(name, "exp_avg_sq", p)
        _lerp(m, g, 1 - b1)
        v *= b2
        v += (1 - b2) * g * g
        if self.amsgrad:
            v_max = self._buffer(name, "max_exp_avg_sq", p)
            v = np.maximum(v_max, v, out=v_max)
        denom = np.sqrt(v)
        denom /= (1 - b2**t) ** 0.5
        denom += self.eps
        np.divide(m, denom, out=denom)
        denom *= self.lr / (1 - b1**t)
        p -= denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), ``torch.optim.AdamW``."""

    decoupled = True

    def __init__(
        self,
        lr: float = 1e-3,
        betas: Sequence[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(lr, betas, eps, weight_decay, amsgrad)


class RMSprop(Optimizer):
    """RMSprop (Hinton 2012), ``torch.optim.RMSprop``.

    ``g = g + weight_decay * p``; ``s = alpha * s + (1 - alpha) * g * g``;
    centered: ``a += (1 - alpha) * (g - a)``, ``avg = sqrt(s - a * a) + eps``, else
    ``avg = sqrt(s) + eps``; with momentum ``buf = momentum * buf + g / avg``, ``p -= lr * buf``,
    else ``p -= lr * g / avg``.
    """

    buffers = ("square_avg", "grad_avg", "momentum_buffer")

    def __init__(
        self,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        momentum: float = 0.0,
        centered: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr)
        self.alpha = _check("alpha", alpha, 0 <= alpha <= 1, "a number in [0, 1]")
        self.eps = _check("eps", eps, eps > 0, "a number > 0")
        self.momentum = _check("momentum", momentum, momentum >= 0, "a number >= 0")
        self.centered = bool(centered)
        self.weight_decay = _check("weight_decay", weight_decay, weight_decay >= 0, "a number >= 0")

    def _update(self, name: str, p: np.ndarray, g: np.ndarray, t: int) -> None:
        if self.weight_decay:
            g = g + self.weight_decay * p
        s = self._buffer(name, "square_avg", p)
        s *= self.alpha
        s += (1 - self.alpha) * g * g
        if self.centered:
            a = self._buffer(name, "grad_avg", p)
            _lerp(a, g, 1 - self.alpha)
            avg = np.sqrt(s - a * a)
        else:
            avg = np.sqrt(s)
        avg += self.eps
        if self.momentum > 0:
            buf = self._buffer(name, "momentum_buffer", p)
            buf *= self.momentum
            buf += g / avg
            p -= self.lr * buf
        else:
            np.divide(g, avg, out=avg)
            avg *= self.lr
            p -= avg


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011), ``torch.optim.Adagrad``.

    ``g = g + weight_decay * p``; ``s += g * g`` (``s`` starts at
    ``initial_accumulator_value``); ``p -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)``.
    """

    buffers = ("sum",)

    def __init__(
        self,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        super().__init__(lr)
        self.lr_decay = _check("lr_decay", lr_decay, lr_decay >= 0, "a number >= 0")
        self.weight_decay = _check("weight_decay", weight_decay, weight_decay >= 0, "a number >= 0")
        self.initial_accumulator_value = _check(
            "initial_accumulator_value",
            initial_accumulator_value,
            initial_accumulator_value >= 0,
            "a number >= 0",
        )
        self.eps = _check("eps", eps, eps > 0, "a number > 0")

    def _update(self, name: str, p: np.ndarray, g: np.ndarray, t: int) -> None:
        if self.weight_decay:
            g = g + self.weight_decay * p
        s = self._buffer(name, "sum", p, self.initial_accumulator_value)
        s += g * g
        std = np.sqrt(s)
        std += self.eps
        np.divide(g, std, out=std)
        std *= self.lr / (1 + (t - 1) * self.lr_decay)
        p -= std


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
}


def get_optimizer(optimizer: str | Optimizer, lr: float | None = None,
                  weight_decay: float | None = None) -> Optimizer:
    """Returns ``optimizer`` if it is an instance, else a new one of that name.

    Args:
        optimizer: an ``Optimizer`` or one of ``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``,
            ``"adagrad"`` (case-insensitive), built with its default hyperparameters.
        lr: when given, the learning rate (it overrides an instance's ``lr``). ``"sgd"`` has
            no default learning rate and uses 0.01 when ``lr`` is None.
        weight_decay: when given, the weight decay (PyTorch's: added to the gradient as
            ``weight_decay * p``, decoupled for AdamW); None keeps the optimizer's default
            (0, AdamW 0.01) or an instance's own.

    Raises:
        ValueError: for an unknown name; the message lists the known ones.
    """
    if isinstance(optimizer, Optimizer):
        if lr is not None:
            optimizer.lr = lr
        if weight_decay is not None:
            optimizer.weight_decay = _check(
                "weight_decay", weight_decay, weight_decay >= 0, "a number >= 0")
        return optimizer
    cls = OPTIMIZERS.get(optimizer.lower()) if isinstance(optimizer, str) else None
    if cls is None:
        raise ValueError(
            f"optimizer: unknown optimizer {optimizer!r}; known optimizers: {', '.join(OPTIMIZERS)}"
        )
    kwargs = {} if weight_decay is None else {"weight_decay": weight_decay}
    if lr is None:
        return SGD(0.01, **kwargs) if cls is SGD else cls(**kwargs)
    return cls(lr=lr, **kwargs)
