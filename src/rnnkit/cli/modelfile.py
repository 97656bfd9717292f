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
    if meta["task"] == "classify":
        target = meta.get("label")
    elif meta["task"] == "forecast":
        target = ",".join(meta.get("targets") or [meta["target"]])
    else:
        target = None
    features = list(meta.get("features") or ())
    future = list(meta.get("future_features") or ())
    date = meta.get("date")
    if args is not None and getattr(args, "target", None):
        if meta["task"] == "forecast":
            _mapped("--target", args.target, target.split(","), "target")
        target = args.target
    if args is not None and getattr(args, "features", None):
        features = _mapped("--features", args.features, features, "feature")
    if args is not None and getattr(args, "future_features", None):
        future = _mapped("--future-features", args.future_features, future, "future feature")
    if args is not None and getattr(args, "date", None):
        date = args.date
    s = Settings(
        task=meta["task"],
        missing=meta.get("missing", "interpolate"),
        date=date,
        target=target,
        features=tuple(features) or None,
        future_features=tuple(future) or None,
        series_id=meta.get("series_id"),
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


def _mapped(flag: str, text: str, names: list[str], role: str) -> list[str]:
    """The columns ``text`` names in place of the model's ``names``, as many as those."""
    given = [c.strip() for c in text.split(",") if c.strip()]
    if len(given) != len(names):
        raise DataError(
            f"{flag} {text}: the model reads {len(names)} {role} column(s)"
            f"{' (' + ', '.join(names) + ')' if names else ''}, got {len(given)}"
        )
    return given
