"""The schema of the ``user`` metadata that ``rnnkit train`` writes into a model file.

Every field the CLI writes has a line in :data:`COMMON` or :data:`TASK_FIELDS` (its check, and
``REQUIRED``, ``OMIT`` or a default); a field the table does not know is refused, so a new field
is registered with one line here. Cross-field rules then check the fields against each other and
against the model: ``len(classes)`` is the model's output size, ``horizon`` too, the scaler has
one entry per input column, the vocabulary is the embedding's. Every problem is a
``ModelFileError`` naming the field, e.g. ``user.window: expected an integer >= 1, got 0``.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from rnnkit.data.covariates import CALENDAR, calendar_names
from rnnkit.data.tabular import MISSING_RULES
from rnnkit.data.text import UNK
from rnnkit.errors import ModelFileError
from rnnkit.schema import (
    OMIT,
    REQUIRED,
    any_of,
    boolean,
    fail,
    integer,
    list_of,
    number,
    obj,
    one_of,
    optional,
    show,
    text,
)

NAME = text(1000)
CALENDAR_NAMES = [n for unit in CALENDAR for n in calendar_names(unit)]
LABEL = any_of(integer(), text(1000), expected="an integer or a string label")
SCALER = obj({"mean": list_of(number(), 1), "scale": list_of(number(), 1)})
TRAINED = obj({
    "epochs": (integer(0), OMIT),
    "seconds": (number(0), OMIT),
    "stop_reason": (optional(text()), OMIT),
    "rnnkit": (text(100), OMIT),
    "finished": (text(100), OMIT),
    "kernels": (one_of("numba", "numpy"), OMIT),  # the time loop that trained (kernels)
    "settings": (obj({}, extra=True), OMIT),  # informational: what the run was given
})

#: Fields of every task's metadata: name -> (check, default or REQUIRED or OMIT).
COMMON: dict[str, tuple[Any, Any]] = {
    "task": (one_of("forecast", "classify", "charlm"), REQUIRED),
    "dataset": (NAME, OMIT),
    "source": (NAME, OMIT),
    "trained": (TRAINED, OMIT),
}
TASK_FIELDS: dict[str, dict[str, tuple[Any, Any]]] = {
    "forecast": {
        "window": (integer(1), REQUIRED),
        "horizon": (integer(1), REQUIRED),
        "target": (text(1000, nonempty=True), REQUIRED),
        "features": (list_of(NAME, 0, 100_000), REQUIRED),
        "scaler": (SCALER, REQUIRED),
        "date": (optional(NAME), None),
        "missing": (one_of(*MISSING_RULES), "interpolate"),
        "period": (optional(integer(1)), None),
        "unit": (optional(NAME), None),
        "last_index": (optional(any_of(text(1000), number(), expected="a label")), None),
        "relative": (boolean(), False),
        "strategy": (one_of("direct", "recursive"), OMIT),  # absent: direct
        "loss": (one_of("mse", "quantile", "gaussian"), OMIT),  # absent: mse
        "quantiles": (list_of(number(), 1, 99), OMIT),
        "mase_scale": (optional(number(0)), OMIT),
        "mase_period": (optional(integer(1)), OMIT),
        "targets": (list_of(text(1000, nonempty=True), 1, 1000), OMIT),  # absent: [target]
        "mase_scales": (list_of(number(0), 1, 1000), OMIT),
        "future_features": (list_of(NAME, 0, 100_000), OMIT),
        "calendar": (list_of(one_of(*CALENDAR_NAMES), 0, 8), OMIT),
        "calendar_unit": (optional(one_of(*CALENDAR)), OMIT),
        "series_id": (NAME, OMIT),  # panel data: absent for one series
        "series_ids": (list_of(text(1000, nonempty=True), 2, 100_000), OMIT),
        "series_scalers": (list_of(SCALER, 2, 100_000), OMIT),
        "series_mase_scales": (list_of(number(0), 2, 100_000), OMIT),
    },
    "classify": {
        "classes": (list_of(LABEL, 2), REQUIRED),
        "majority": (LABEL, REQUIRED),
        "scaler": (SCALER, REQUIRED),
        "n_features": (integer(1), REQUIRED),
        "features": (list_of(NAME, 0), OMIT),
        "label": (NAME, "label"),
    },
    "charlm": {
        "vocab": (obj({"level": one_of("char", "word"), "tokens": list_of(text(1000), 2)}),
                  REQUIRED),
        "seq_len": (integer(1), REQUIRED),
        "unigram_counts": (list_of(integer(0), 2), REQUIRED),
    },
}


def _sizes(model: Any) -> tuple[int, int]:
    """``(input features, output size)`` of a built model, from its layers' shapes."""
    size = first = model.layers[0].input_size
    for layer in model.layers:
        _, size = layer.param_shapes(size)
    return first, size


def _scaler(meta: dict, path: str, columns: int, what: str) -> None:
    for k in ("mean", "scale"):
        n = len(meta["scaler"][k])
        if n != columns:
            fail(f"{path}.scaler.{k}", f"{columns} values ({what})", got=f"{n}")
    if min(meta["scaler"]["scale"]) <= 0:
        fail(f"{path}.scaler.scale", "positive scales", meta["scaler"]["scale"])


def _forecast(meta: dict, path: str, model: Any) -> None:
    inputs, outputs = _sizes(model)
    targets = meta.get("targets") or [meta["target"]]
    if targets[0] != meta["target"] or len(set(targets)) < len(targets):
        fail(f"{path}.targets", f"distinct names, the first {meta['target']!r}", targets)
    future, cal = meta.get("future_features") or [], meta.get("calendar") or []
    if cal and (meta.get("calendar_unit") is None
                or cal != calendar_names(meta["calendar_unit"])):
        fail(f"{path}.calendar", "the calendar features of its calendar_unit", cal)
    names = [*targets, *meta["features"], *future]
    if len(set(names)) < len(names):
        fail(f"{path}.features", "names not also given as targets or future features",
             meta["features"])
    columns = len(names)
    reads = columns + len(cal) + 1 if (future or cal) else columns
    reads += _panel(meta, path, columns)
    if inputs != reads:
        fail(f"{path}.features", f"{inputs - len(targets)} names (the model reads {inputs} "
             "columns: the targets and their features)", got=f"{len(meta['features'])}")
    K = len(targets)
    if len(meta.get("mase_scales") or [0] * K) != K:
        fail(f"{path}.mase_scales", f"{K} scales (one per target)", meta["mase_scales"])
    q = meta.get("quantiles", [0.1, 0.5, 0.9])
    if any(not 0 < v < 1 for v in q) or any(b <= a for a, b in itertools.pairwise(q)):
        fail(f"{path}.quantiles", "increasing levels strictly between 0 and 1", q)
    # the head: H steps (one with --strategy recursive) times Q quantiles, 2 (mean and
    # scale) or 1 value each
    strategy, loss = meta.get("strategy", "direct"), meta.get("loss", "mse")
    steps = 1 if strategy == "recursive" else meta["horizon"]
    per = {"mse": 1, "quantile": len(q), "gaussian": 2}[loss] * K
    if steps * per != outputs:
        if per == 1 and strategy == "direct":
            fail(f"{path}.horizon", f"{outputs} (the model's output size)", meta["horizon"])
        fail(f"{path}.horizon", f"a head of {steps} step(s) x {per} output(s) ({strategy}, "
             f"loss {loss}) = the model's output size {outputs}", meta["horizon"])
    _scaler(meta, path, columns, "one per column")


def _panel(meta: dict, path: str, columns: int) -> int:
    """The panel fields agree with each other; returns the inputs of the series' one-hot code."""
    keys = ("series_id", "series_ids", "series_scalers", "series_mase_scales")
    given = [k for k in keys if k in meta]
    if not given:
        return 0
    if len(given) < len(keys):
        fail(f"{path}.{next(k for k in keys if k not in meta)}", "present with the other "
             "panel fields", got="absent")
    ids = meta["series_ids"]
    if len(set(ids)) < len(ids):
        fail(f"{path}.series_ids", "distinct series ids", ids)
    for k in ("series_scalers", "series_mase_scales"):
        if len(meta[k]) != len(ids):
            fail(f"{path}.{k}", f"{len(ids)} entries (one per series)", got=f"{len(meta[k])}")
    for j, sc in enumerate(meta["series_scalers"]):
        _scaler({"scaler": sc}, f"{path}.series_scalers[{j}]", columns, "one per column")
    return len(ids)


def _classify(meta: dict, path: str, model: Any) -> None:
    inputs, outputs = _sizes(model)
    classes = meta["classes"]
    if len(classes) != outputs:
        fail(f"{path}.classes", f"{outputs} classes (the model's output size)",
             got=f"{len(classes)}")
    if len({type(c) for c in classes}) > 1 or len({show(c) for c in classes}) < len(classes):
        fail(f"{path}.classes", "distinct labels of one type", classes)
    if meta["majority"] not in classes:  # LABEL refuses true and 1.0, which would equal 1
        fail(f"{path}.majority", "one of the classes", meta["majority"])
    if meta["n_features"] != inputs:
        fail(f"{path}.n_features", f"{inputs} (the model's input size)", meta["n_features"])
    if meta.get("features") and len(meta["features"]) != inputs:  # an .npz names none
        fail(f"{path}.features", f"{inputs} names or none", got=f"{len(meta['features'])}")
    _scaler(meta, path, inputs, "one per feature")


def _charlm(meta: dict, path: str, model: Any) -> None:
    tokens = meta["vocab"]["tokens"]
    if tokens[0] != UNK or len(set(tokens)) != len(tokens):
        fail(f"{path}.vocab.tokens", f'distinct tokens, the first "{UNK}"', tokens)
    if meta["vocab"]["level"] == "char" and any(len(t) != 1 for t in tokens[1:]):
        fail(f"{path}.vocab.tokens", "single characters after the first (level char)", tokens)
    V = len(tokens)
    first, (_, outputs) = model.layers[0], _sizes(model)
    if getattr(first, "vocab_size", None) != V or outputs != V:
        fail(f"{path}.vocab.tokens", f"as many tokens as the model's vocabulary "
             f"({getattr(first, 'vocab_size', None)} in, {outputs} out)", got=f"{V}")
    if len(meta["unigram_counts"]) != V:
        fail(f"{path}.unigram_counts", f"{V} counts (one per token)",
             got=f"{len(meta['unigram_counts'])}")


RULES = {"forecast": _forecast, "classify": _classify, "charlm": _charlm}
SCHEMAS = {task: obj({**COMMON, **fields}) for task, fields in TASK_FIELDS.items()}


def check_metadata(meta: Any, model: Any, path: str = "user") -> dict[str, Any]:
    """The metadata checked against the schema and the model; raises ``ModelFileError``."""
    if not isinstance(meta, dict):
        fail(path, "an object", meta)
    task = COMMON["task"][0](meta.get("task"), f"{path}.task") if "task" in meta else None
    if task is None:
        raise ModelFileError(f"{path}.task: missing; this command needs a model written by "
                             "'rnnkit train'")
    checked = SCHEMAS[task](meta, path)
    RULES[task](checked, path, model)
    return checked


UCR_NAME = re.compile(r"ucr:[A-Za-z0-9_]{1,100}")


def is_dataset_name(source: str, bundled: list[str]) -> bool:
    """Whether a model's ``source`` names data rnnkit may read without being told: a bundled
    dataset or ``ucr:NAME``, never a path (a model file must not choose what rnnkit opens)."""
    return source in bundled or UCR_NAME.fullmatch(source) is not None
