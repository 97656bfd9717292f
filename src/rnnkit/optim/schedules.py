"""Learning-rate schedules, each bound to an optimizer and stepped once per epoch.

The epoch-indexed schedules compute ``lr`` in closed form from ``base_lr`` (the optimizer's lr
when the schedule is made) and the epoch count ``e``; they equal torch.optim.lr_scheduler's
sequences (which torch computes recursively) to rounding. ``state_dict()`` is JSON-able.
"""

from __future__ import annotations

import math
from typing import Any

from rnnkit.optim.optimizers import Optimizer

__all__ = ["CosineAnnealingLR", "ExponentialLR", "LRSchedule", "ReduceLROnPlateau", "StepLR"]


class LRSchedule:
    """Base class: ``step()`` advances the epoch and sets ``optimizer.lr = lr_at(epoch)``."""

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0

    def lr_at(self, epoch: int) -> float:
        """The learning rate after ``epoch`` calls of ``step()``."""
        raise NotImplementedError

    def step(self) -> None:
        """Ends an epoch: advances the count and sets the optimizer's lr."""
        self.last_epoch += 1
        self.optimizer.lr = self.lr_at(self.last_epoch)

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: class name, hyperparameters, ``base_lr`` and ``last_epoch``."""
        state = {k: v for k, v in vars(self).items() if k != "optimizer"}
        return {"class": type(self).__name__, **state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores a ``state_dict()`` (the optimizer's lr is restored by the optimizer's own)."""
        if state.get("class") != type(self).__name__:
            raise ValueError(
                f"state: expected class {type(self).__name__!r}, got {state.get('class')!r}"
            )
        for key, value in state.items():
            if key != "class":
                if key not in vars(self):
                    raise ValueError(f"state: unexpected key {key!r} for {type(self).__name__}")
                setattr(self, key, value)


class StepLR(LRSchedule):
    """Decays by ``gamma`` every ``step_size`` epochs.

    ``lr = base_lr * gamma ** (e // step_size)``.
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        if not (isinstance(step_size, int) and step_size >= 1):
            raise ValueError(f"step_size: expected an integer >= 1, got {step_size!r}")
        if not gamma > 0:
            raise ValueError(f"gamma: expected a number > 0, got {gamma}")
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, float(gamma)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(LRSchedule):
    """Decays by ``gamma`` every epoch: ``lr = base_lr * gamma ** e``."""

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        if not gamma > 0:
            raise ValueError(f"gamma: expected a number > 0, got {gamma}")
        super().__init__(optimizer)
        self.gamma = float(gamma)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma**epoch


class CosineAnnealingLR(LRSchedule):
    """Cosine annealing (Loshchilov & Hutter 2017) without restarts, as torch.

    ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * e / T_max)) / 2``; past ``T_max`` the
    cosine goes on (back up to ``base_lr`` at ``2 * T_max``), as torch's does.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        if not (isinstance(T_max, int) and T_max >= 1):
            raise ValueError(f"T_max: expected an integer >= 1, got {T_max!r}")
        if not eta_min >= 0:
            raise ValueError(f"eta_min: expected a number >= 0, got {eta_min}")
        super().__init__(optimizer)
        self.T_max, self.eta_min = T_max, float(eta_min)

    def lr_at(self, epoch: int) -> float:
        cos = math.cos(math.pi * epoch / self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + cos) / 2


class ReduceLROnPlateau(LRSchedule):
    """Multiplies lr by ``factor`` when a metric stops improving, as torch's.

    ``step(metric)`` per epoch. The metric improves when ``metric < best * (1 - threshold)``
    (mode "min", threshold_mode "rel"; "abs": ``metric < best - threshold``; mode "max" flips
    the comparison and the sign). After more than ``patience`` epochs without improvement,
    ``lr = max(lr * factor, min_lr)`` (skipped when the change is below ``eps``), followed by
    ``cooldown`` epochs in which bad epochs are not counted.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode: expected 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode: expected 'rel' or 'abs', got {threshold_mode!r}")
        if not 0 < factor < 1:
            raise ValueError(f"factor: expected a number in (0, 1), got {factor}")
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if not (isinstance(value, int) and value >= 0):
                raise ValueError(f"{name}: expected an integer >= 0, got {value!r}")
        for name, value in (("threshold", threshold), ("min_lr", min_lr), ("eps", eps)):
            if not value >= 0:
                raise ValueError(f"{name}: expected a number >= 0, got {value}")
        super().__init__(optimizer)
        self.mode, self.factor, self.patience = mode, float(factor), patience
        self.threshold, self.threshold_mode = float(threshold), threshold_mode
        self.cooldown, self.min_lr, self.eps = cooldown, float(min_lr), float(eps)
        self.best: float | None = None  # None: nothing seen yet (JSON has no inf)
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def _is_better(self, value: float) -> bool:
        sign = 1.0 if self.mode == "min" else -1.0
        if self.best is None:  # torch starts from best = ±inf, which JSON cannot hold
            return sign * value < math.inf
        if self.threshold_mode == "rel":
            return sign * value < sign * self.best * (1 - sign * self.threshold)
        return sign * value < sign * self.best - self.threshold

    def step(self, metric: float) -> None:  # type: ignore[override]
        """Ends an epoch with its validation ``metric``; may lower ``optimizer.lr``."""
        value = float(metric)
        self.last_epoch += 1
        if self._is_better(value):
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old = self.optimizer.lr
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.optimizer.lr = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
