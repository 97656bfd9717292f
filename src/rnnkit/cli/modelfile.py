"""Loading a model trained by ``rnnkit train`` with the metadata the other commands need."""

from __future__ import annotations

from typing import Any

import rnnkit as rk
from rnnkit.errors import DataError, ModelFileError

from . import sources
from .metadata import check_metadata, is_dataset_name
from .settings import Settings


def load_trained(path: str) -> tuple[rk.Sequential, dict[str, Any]]:
    """``(model, metadata)``; the metadata is checked against the schema (cli/metadata.py) and
    the model, and a file without ``rnnkit train``'s metadata is refused."""
    model = rk.load(path)
    try:
        meta = check_metadata(getattr(model, "metadata", None), model)
    except ModelFileError as e:
        raise ModelFileError(f"{path}: {e}") from None
    return model, meta


def load_data(spec: str | None, meta: dict[str, Any], args: Any = None) -> tuple[Any, str]:
    """``DATA`` read the way the model was trained (target, features, date, missing rule);
    ``args.target``/``args.features``/``args.date`` name the file's columns that stand for
    them when the names differ.

    Without ``DATA``, the model's own data is read only if it is a dataset name (bundled or
    ``ucr:NAME``): a model file never chooses a path for rnnkit to open."""
    target = meta.get("label") if meta["task"] == "classify" else meta.get("target")
    features = list(meta.get("features") or ())
    date = meta.get("date")
    if args is not None and getattr(args, "target", None):
        target = args.target
    if args is not None and getattr(args, "features", None):
        given = [c.strip() for c in args.features.split(",") if c.strip()]
        if len(given) != len(features):
            raise DataError(
                f"--features {args.features}: the model reads {len(features)} feature column(s)"
                f"{' (' + ', '.join(features) + ')' if features else ''}, got {len(given)}"
            )
        features = given
    if args is not None and getattr(args, "date", None):
        date = args.date
    s = Settings(
        task=meta["task"],
        missing=meta.get("missing", "interpolate"),
        date=date,
        target=target,
        features=tuple(features) or None,
    )
    if spec is None:
        spec = meta.get("source") or meta.get("dataset")
        if spec is None:
            raise DataError("this model names no dataset; give DATA")
        if not is_dataset_name(spec, sources.bundled_names()):
            raise DataError(f"this model was trained on the file {spec!r}; give it (or other "
                            "data) as DATA: rnnkit opens only paths you give, never one named "
                            "by a model file")
    record, name = sources.load_source(spec, s)
    sources.infer_task(record, meta["task"], name)
    return record, name
