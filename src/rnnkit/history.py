"""A training run's per-epoch records, as ``fit`` returns them and checkpoints keep them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class History:
    """Per-epoch records: ``loss``, ``val_loss``, metrics (``accuracy``, ``val_rmse``, …),
    ``grad_norm`` (mean global norm before clipping), ``grad_norm_max``, ``skipped`` (steps
    not applied by the guard), ``lr``, ``time`` (seconds). ``history["loss"]`` is a column."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    stop_reason: str | None = None

    def __getitem__(self, key: str) -> list[float]:
        return [e[key] for e in self.epochs if key in e]

    def __len__(self) -> int:
        return len(self.epochs)

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "stop_reason": self.stop_reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        return cls([dict(e) for e in d.get("epochs", [])], d.get("stop_reason"))
