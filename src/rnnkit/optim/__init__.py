"""Optimizers, learning-rate schedules and gradient clipping."""

from rnnkit.optim.clip import clip_grad_norm, clip_grad_value, global_norm
from rnnkit.optim.optimizers import (
    OPTIMIZERS,
    SGD,
    Adagrad,
    Adam,
    AdamW,
    Optimizer,
    RMSprop,
    get_optimizer,
)
from rnnkit.optim.schedules import (
    CosineAnnealingLR,
    ExponentialLR,
    LRSchedule,
    ReduceLROnPlateau,
    StepLR,
)

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRSchedule",
    "Optimizer",
    "RMSprop",
    "ReduceLROnPlateau",
    "StepLR",
    "clip_grad_norm",
    "clip_grad_value",
    "get_optimizer",
    "global_norm",
]
