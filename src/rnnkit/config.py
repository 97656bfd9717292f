"""Rebuilding layers from a saved config: data only, checked against a schema.

A config names layer types from a fixed table and passes only the options that
:data:`LAYER_OPTIONS` lists, each checked for type and range; cross-field rules check that the
layers fit together (a readout reads ``hidden × directions`` values, each layer reads what the
previous one emits). Nothing in a config can name code to import or run, and every problem is a
:class:`~rnnkit.errors.ModelFileError` naming the field, e.g.
``config.layers[1].config.hidden: expected an integer >= 1, got "x"``.

A new constructor argument needs its line in :data:`LAYER_OPTIONS` (a test checks the table
against the constructors), or files that use it do not load.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .errors import ModelFileError
from .functional import ACTIVATIONS, get_activation
from .init import INITIALISERS, get_init
from .schema import (
    REQUIRED,
    Check,
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

MAX_LAYERS = 1000
MAX_SIZE = (1 << 31) - 1  # a size beyond this is no model; memory is checked when building


def _named(lookup: Callable[[str], Any], known: list[str]) -> Check:
    """A name that ``lookup`` accepts (the same table, aliases and case rules as the layers)."""
    what = "one of " + ", ".join(f'"{k}"' for k in known)

    def check(v: Any, path: str) -> str:
        text(100)(v, path)
        try:
            lookup(v)
        except (TypeError, ValueError):
            fail(path, what, v)
        return v
    return check


SIZE = integer(1, MAX_SIZE)
ACTIVATION = _named(get_activation, sorted(ACTIVATIONS))
DENSE_ACTIVATION = any_of(one_of("softmax"), ACTIVATION,
                          expected="softmax or one of " + ", ".join(sorted(ACTIVATIONS)))
INIT = _named(lambda v: get_init(v, owner="", arg=""), sorted(INITIALISERS))
# "zeros", "learned" or the values themselves (their length is checked against hidden below;
# bounded so that a float32 state cannot overflow: a fuzz case had h0 = [0, 3.4028235677973366e38])
INITIAL = any_of(one_of("zeros", "learned"), list_of(number(-1e4, 1e4), 1, MAX_SIZE),
                 expected='"zeros", "learned" or a list of numbers in [-1e4, 1e4]')

RATE = number(0, below=1)  # a dropout or zoneout probability in [0, 1)
DENSE: dict[str, tuple[Check, Any]] = {
    "units": (SIZE, REQUIRED),
    "activation": (DENSE_ACTIVATION, "identity"),
    "bias": (boolean(), True),
    "kernel_init": (INIT, "glorot_uniform"),
    "input_size": (optional(SIZE), None),
}
RECURRENT: dict[str, tuple[Check, Any]] = {
    "hidden": (SIZE, REQUIRED),
    "activation": (ACTIVATION, "tanh"),
    "readout": (optional(obj(DENSE)), None),
    "output": (one_of("h", "y"), "h"),
    "return_sequences": (boolean(), False),
    "return_state": (boolean(), False),
    "h0": (INITIAL, "zeros"),
    "bidirectional": (boolean(), False),
    "bias": (boolean(), True),
    "kernel_init": (INIT, "glorot_uniform"),
    "recurrent_init": (INIT, "orthogonal"),
    "bias_init": (one_of("zeros", "torch"), "zeros"),
    "input_size": (optional(SIZE), None),
    # regularisation and cell variants (the layer refuses the ones its cell does not have)
    "dropout": (RATE, 0.0),
    "recurrent_dropout": (RATE, 0.0),
    "zoneout": (any_of(RATE, list_of(RATE, 1, 2), expected="a probability in [0, 1) or a "
                       "list of them (p_h, p_c)"), 0.0),
    "layer_norm": (boolean(), False),
    "peepholes": (boolean(), False),
    "proj_size": (integer(0, MAX_SIZE), 0),
}
GATED = {**RECURRENT, "gate_activation": (ACTIVATION, "sigmoid")}
#: Every layer type's constructor arguments: name -> (check, default or REQUIRED).
LAYER_OPTIONS: dict[str, dict[str, tuple[Check, Any]]] = {
    "RNN": RECURRENT,
    "GRU": GATED,
    "LSTM": {**GATED, "forget_bias": (number(-1e4, 1e4), 1.0), "c0": (INITIAL, "zeros")},
    "Dense": DENSE,
    "Embedding": {"vocab_size": (SIZE, REQUIRED), "dim": (SIZE, REQUIRED)},
    "Dropout": {"p": (RATE, 0.5), "input_size": (optional(SIZE), None)},
}


def _recurrent_rules(cfg: dict, path: str) -> None:
    """Cross-field rules of a recurrent layer's options."""
    hidden, out = cfg["hidden"], cfg["proj_size"] or cfg["hidden"]  # h has proj_size entries
    for arg, n in (("h0", out), ("c0", hidden)):
        value = cfg.get(arg)
        if isinstance(value, list) and len(value) != n:
            size = "proj_size" if arg == "h0" and cfg["proj_size"] else "hidden"
            fail(f"{path}.{arg}", f"a list of {size}={n} numbers", got=f"a list of {len(value)}")
    readout = cfg["readout"]
    if cfg["output"] == "y" and readout is None:
        fail(f"{path}.output", '"h" for a layer without a readout', "y")
    size = out * (2 if cfg["bidirectional"] else 1)
    if readout is not None and readout["input_size"] not in (None, size):
        fail(f"{path}.readout.input_size", f"{size} (hidden × directions)",
             readout["input_size"])


RULES: dict[str, Callable[[dict, str], None]] = {
    "RNN": _recurrent_rules, "GRU": _recurrent_rules, "LSTM": _recurrent_rules}
_LAYER_SCHEMAS = {kind: obj(options, rules=[RULES[kind]] if kind in RULES else [])
                  for kind, options in LAYER_OPTIONS.items()}


def output_size(kind: str, cfg: dict) -> int | None:
    """The number of features a checked layer config emits (``None``: not known here)."""
    if kind in ("Dense",):
        return cfg["units"]
    if kind == "Embedding":
        return cfg["dim"]
    if kind in RULES:
        if cfg["output"] == "y":
            return cfg["readout"]["units"]
        return (cfg["proj_size"] or cfg["hidden"]) * (2 if cfg["bidirectional"] else 1)
    return cfg.get("input_size")  # a layer that keeps the size (e.g. dropout)


def _layer(spec: Any, path: str, types: dict[str, type]) -> dict:
    spec = obj({"kind": text(100), "config": obj({}, extra=True)})(spec, path)
    kind = spec["kind"]
    if kind not in types or kind not in _LAYER_SCHEMAS:
        raise ModelFileError(f"{path}.kind: unknown layer type {show(kind)}; allowed: "
                             f"{', '.join(sorted(set(types) & set(_LAYER_SCHEMAS)))}")
    return {"kind": kind, "config": _LAYER_SCHEMAS[kind](spec["config"], f"{path}.config")}


def _chain(config: dict, path: str) -> None:
    """Each layer reads what the previous one emits; only the first may be an Embedding."""
    before = None
    for i, layer in enumerate(config["layers"]):
        where = f"{path}.layers[{i}]"
        if layer["kind"] == "Embedding" and i > 0:
            fail(f"{where}.kind", "an Embedding only as the first layer", "Embedding")
        declared = layer["config"].get("input_size")
        if before is not None and declared is not None and declared != before:
            fail(f"{where}.config.input_size", f"{before} (what layers[{i - 1}] emits)", declared)
        before = output_size(layer["kind"], layer["config"])


def check_config(config: Any, types: dict[str, type], path: str = "config") -> dict:
    """The config, checked field by field (defaults filled in); raises ``ModelFileError``."""
    if not isinstance(config, dict) or config.get("format") != "rnnkit":
        raise ModelFileError(f"{path}: not an rnnkit model config (missing format='rnnkit')")

    def layers(v: Any, where: str) -> list:
        list_of(lambda x, p: x, 1, MAX_LAYERS)(v, where)
        return [_layer(s, f"{where}[{i}]", types) for i, s in enumerate(v)]

    schema = obj({
        "format": one_of("rnnkit"),
        "version": any_of(one_of(1), expected="1 (this rnnkit reads format 1)"),
        "dtype": one_of("float32", "float64"),
        "seed": (optional(integer(0, (1 << 128) - 1)), None),
        "layers": layers,
    }, rules=[_chain])
    return schema(config, path)


def layers_from_config(config: Any, types: dict[str, type]) -> tuple[list, Any, str]:
    config = check_config(config, types)
    layers = [_build_layer(spec, f"config.layers[{i}]", types)
              for i, spec in enumerate(config["layers"])]
    return layers, config["seed"], config["dtype"]


def _build_layer(spec: dict, where: str, types: dict[str, type]):
    cfg = dict(spec["config"])
    if cfg.get("readout") is not None:
        cfg["readout"] = build(types["Dense"], cfg["readout"], f"{where}.config.readout")
    return build(types[spec["kind"]], cfg, where)


def build(cls: type, cfg: dict[str, Any], where: str):
    """``cls(**cfg)`` for a checked config; a constructor's own refusal names ``where``."""
    try:
        return cls(**cfg)
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{where} ({cls.__name__}): {e}") from None


def constructor_arguments(cls: type) -> dict[str, Any]:
    """Every keyword a layer's constructor takes (through ``**options`` to its bases) and its
    default (``REQUIRED`` when it has none)."""
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if "__init__" in vars(klass) and klass is not object:
            for n, p in inspect.signature(klass.__init__).parameters.items():
                if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                    out[n] = REQUIRED if p.default is p.empty else p.default
    return out
