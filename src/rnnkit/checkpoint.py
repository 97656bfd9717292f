"""Model files and training checkpoints: safetensors holding every parameter, with the model's
JSON config (layers, options, dtype, version) in the file's metadata.

A model file has tensors ``"<layer>.<name>"`` and metadata ``{"rnnkit": config}`` plus,
optionally, ``{"user": ...}`` (JSON the caller attaches: a vocabulary, a scaler). A checkpoint
adds the training state: tensors whose names hold a ``/`` (optimizer slots, callbacks' arrays)
and ``{"checkpoint": ...}`` (see ``checkpoint_state``). Writes are atomic; reading never runs
code: the config is data, checked against the layer allow-list.

The model class comes from the caller (``rk.load``: ``Sequential``; a resumed ``fit``: its
model's class), so that this module, which ``Sequential.save`` uses, imports no model.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ModelFileError
from .fileio import load_tensors, no_constant, no_duplicates, save_tensors

if TYPE_CHECKING:
    from .model import Sequential


def save_model(model: Sequential, path: str | os.PathLike[str],
               metadata: dict[str, Any] | None = None, *,
               extra_tensors: dict[str, np.ndarray] | None = None,
               checkpoint: dict[str, Any] | None = None) -> None:
    """Write ``model`` to ``path`` atomically (temp file in the same folder, fsync, rename).

    Raises ``ValueError`` if any weight is NaN/Inf: a broken model never replaces a file."""
    params = model.parameters()
    bad = [k for k, v in params.items() if not np.all(np.isfinite(v))]
    if bad:
        raise ValueError(f"save: refusing to write non-finite weights ({', '.join(bad)}) to "
                         f"{os.fspath(path)}")
    meta = {"rnnkit": json.dumps(model.get_config())}
    if metadata is not None:
        meta["user"] = json.dumps(metadata)
    if checkpoint is not None:
        meta["checkpoint"] = json.dumps(checkpoint)
    tensors = dict(params)
    tensors.update(extra_tensors or {})  # "optim/...", "callback/...": names with a "/"
    save_tensors(path, tensors, meta)


def read_model(path: str | os.PathLike[str], cls: type[Sequential]) -> Sequential:
    """A ``cls`` (``Sequential``) from a model file written by ``save`` (or a checkpoint: its
    weights); ``rk.load`` is this with ``Sequential``.

    The returned model has ``metadata`` (the user JSON, or ``{}``). Every problem with the file
    is a ``ModelFileError`` (a ``ValueError``) that names it."""
    model, _, _ = _read(path, cls)
    return model


def load_checkpoint(path: str | os.PathLike[str], cls: type[Sequential]):
    """``(model, state tensors, checkpoint dict)`` from a checkpoint file, the model a
    ``cls``, the dict checked and in the current format (``checkpoint_state``); state tensors
    are keyed by their full names (``"optim/exp_avg.0.W_h"``)."""
    from .checkpoint_state import check

    model, state_tensors, meta = _read(path, cls)
    if "checkpoint" not in meta:
        raise ModelFileError(f"{os.fspath(path)}: a model file, not a training checkpoint "
                             "(it holds no optimizer state)")
    state = check(_json(meta["checkpoint"], path, "checkpoint"), state_tensors,
                  model.parameters(), os.fspath(path))
    return model, state_tensors, state


def _read(path: str | os.PathLike[str], cls: type[Sequential]):
    name = os.fspath(path)
    tensors, meta = load_tensors(name)
    if "rnnkit" not in meta:
        raise ModelFileError(f"{name}: a safetensors file without an rnnkit config; not an "
                             "rnnkit model")
    config = _json(meta["rnnkit"], name, "rnnkit")
    unknown = set(meta) - {"rnnkit", "user", "checkpoint"}
    if unknown:
        raise ModelFileError(f"{name}: unknown metadata keys {sorted(unknown)}")
    try:
        model = cls.from_config(config)
    except ModelFileError as e:
        raise ModelFileError(f"{name}: {e}") from None
    first = config["layers"][0]["config"]
    # an Embedding reads ids, one per step: its config has no input_size (it is always 1)
    size = 1 if config["layers"][0].get("kind") == "Embedding" else first.get("input_size")
    if not (isinstance(size, int) and not isinstance(size, bool) and 0 < size < 1 << 31):
        raise ModelFileError(f"{name}: config layers[0].input_size must be a positive integer, "
                             f"got {size!r}")
    weights = {k: v for k, v in tensors.items() if "/" not in k}
    optim = {k: v for k, v in tensors.items() if "/" in k}
    # Compare shapes before building: a config that lies about sizes must not allocate.
    shapes = model.param_shapes(size)
    missing, extra = set(shapes) - set(weights), set(weights) - set(shapes)
    if missing or extra:
        raise ModelFileError(f"{name}: tensors do not match the config: missing "
                             f"{sorted(missing)[:5]}, unexpected {sorted(extra)[:5]}")
    for k, shape in shapes.items():
        if weights[k].shape != shape or weights[k].dtype != model.dtype:
            raise ModelFileError(f"{name}: tensor {k!r} is {weights[k].dtype}{weights[k].shape},"
                                 f" the config needs {model.dtype}{shape}")
    try:
        model.build(size)
    except ValueError as e:
        raise ModelFileError(f"{name}: config does not describe a valid model: {e}") from None
    for k, v in model.parameters().items():
        v[...] = weights[k]
    model.metadata = _json(meta["user"], name, "user") if "user" in meta else {}
    return model, optim, meta


def _json(text: str, path: Any, key: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constant)
    except (ValueError, RecursionError) as e:
        raise ModelFileError(f"{os.fspath(path)}: metadata[{key!r}] is not valid JSON: "
                             f"{str(e)[:80]}") from None
