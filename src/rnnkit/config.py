"""Rebuilding layers from a saved config: data only, checked against an allow-list.

A config names layer types from a fixed table and passes only known keys with plain values;
nothing in it can name code to import or run.
"""

from __future__ import annotations

import inspect
from typing import Any

from .errors import ModelFileError

MAX_LAYERS = 1000


def layers_from_config(config: Any, types: dict[str, type]) -> tuple[list, Any, str]:
    if not isinstance(config, dict) or config.get("format") != "rnnkit":
        raise ModelFileError("config: not an rnnkit model config (missing format='rnnkit')")
    unknown = set(config) - {"format", "version", "dtype", "seed", "layers"}
    if unknown:
        raise ModelFileError(f"config: unknown keys {sorted(unknown)}")
    specs = config.get("layers")
    if not isinstance(specs, list) or not 0 < len(specs) <= MAX_LAYERS:
        raise ModelFileError("config: 'layers' must be a non-empty list")
    if config.get("dtype") not in ("float32", "float64"):
        raise ModelFileError(f"config: dtype must be float32 or float64, got "
                             f"{config.get('dtype')!r}")
    version = config.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= 1:
        raise ModelFileError(f"config: version must be 1 (this rnnkit reads format 1), got "
                             f"{version!r}")
    seed = config.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ModelFileError(f"config: seed must be an integer or null, got {seed!r}")
    layers = [_layer(i, spec, types) for i, spec in enumerate(specs)]
    return layers, seed, config["dtype"]


def _layer(i: int, spec: Any, types: dict[str, type]):
    if not isinstance(spec, dict) or set(spec) != {"kind", "config"}:
        raise ModelFileError(f"config: layers[{i}] must be {{'kind': ..., 'config': {{...}}}}")
    kind, cfg = spec["kind"], spec["config"]
    if not isinstance(kind, str) or kind not in types:
        raise ModelFileError(f"config: layers[{i}] has unknown layer type {kind!r}; allowed: "
                             f"{', '.join(sorted(types))}")
    if not isinstance(cfg, dict):
        raise ModelFileError(f"config: layers[{i}].config must be an object")
    cfg = dict(cfg)
    if cfg.get("readout") is not None:
        cfg["readout"] = _layer(i, {"kind": "Dense", "config": cfg["readout"]}, types)
    return build(types[kind], cfg, f"layers[{i}]")


def build(cls: type, cfg: dict[str, Any], where: str):
    allowed = _arguments(cls)
    unknown = set(cfg) - allowed
    if unknown:
        raise ModelFileError(f"config: {where} ({cls.__name__}) has unknown keys "
                             f"{sorted(unknown)}")
    for k, v in cfg.items():
        if k != "readout" and not _plain(v):
            raise ModelFileError(f"config: {where}.{k} must be plain data, got "
                                 f"{type(v).__name__}")
    try:
        return cls(**cfg)
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"config: {where} ({cls.__name__}): {e}") from None


def _arguments(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            params = inspect.signature(klass.__init__).parameters
            names |= {n for n, p in params.items() if n != "self" and p.kind not in
                      (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return names


def _plain(v: Any, depth: int = 0) -> bool:
    if depth > 3:
        return False
    if v is None or isinstance(v, (bool, int, float, str)):
        return True
    return isinstance(v, list) and all(_plain(x, depth + 1) for x in v)
