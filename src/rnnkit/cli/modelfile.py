"""Loading a model trained by ``rnnkit train`` with the metadata the other commands need."""

from __future__ import annotations

import os
from typing import Any

import rnnkit as rk
from rnnkit.errors import ModelFileError

from . import sources
from .settings import Settings

NEEDS = {
    "forecast": ("window", "horizon", "scaler", "target", "features"),
    "classify": ("classes", "scaler", "majority"),
    "charlm": ("vocab", "seq_len", "unigram_counts"),
}


def load_trained(path: str) -> tuple[rk.Sequential, dict[str, Any]]:
    """``(model, metadata)``; a file without ``rnnkit train``'s metadata is refused."""
    if not os.path.exists(path):
        raise ModelFileError(f"{path}: file not found")
    model = rk.load(path)
    meta = getattr(model, "metadata", None) or {}
    task = meta.get("task") if isinstance(meta, dict) else None
    if task not in NEEDS:
        raise ModelFileError(
            f"{path}: no task in its metadata; this command needs a model written by 'rnnkit train'"
        )
    missing = [k for k in NEEDS[task] if k not in meta]
    if missing:
        raise ModelFileError(f"{path}: metadata lacks {', '.join(missing)} for a {task} model")
    return model, meta


def load_data(spec: str | None, meta: dict[str, Any]) -> tuple[Any, str]:
    """``DATA`` read the way the model was trained (target, features, date, missing rule)."""
    s = Settings(
        task=meta["task"],
        missing=meta.get("missing", "interpolate"),
        date=meta.get("date"),
        target=meta.get("label") if meta["task"] == "classify" else meta.get("target"),
        features=tuple(meta.get("features") or ()) or None,
    )
    record, name = sources.load_source(spec or meta.get("source") or meta.get("dataset"), s)
    sources.infer_task(record, meta["task"], name)
    return record, name
