"""Checking plain data read from a file (JSON metadata) against a schema.

A schema is built from small checkers. Each checker is a function ``check(value, path)`` that
returns the value (possibly normalised, e.g. an int given where a float is expected) or raises
:class:`~rnnkit.errors.ModelFileError` naming the path of the field, what was expected and what
came::

    config.layers[1].hidden: expected an integer >= 1, got "x"

Build a schema once, at import time, and call it on what a file says::

    LAYER = obj({"hidden": integer(1), "bidirectional": (boolean(), False),
                 "readout": (optional(DENSE), OMIT)})
    cfg = LAYER(json_value, "config.layers[0]")

In :func:`obj`, a field given as a bare checker is required; ``(checker, default)`` fills the
default when the key is absent, and ``(checker, OMIT)`` leaves an absent key absent. Keys not in
the schema are refused unless ``extra=True``. Cross-field rules are functions ``rule(d, path)``
run after every field has passed; they raise with :func:`fail`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import ModelFileError

Check = Callable[[Any, str], Any]
Rule = Callable[[dict, str], None]

__all__ = ["OMIT", "REQUIRED", "Check", "any_of", "boolean", "fail", "integer", "list_of",
           "number", "obj", "one_of", "optional", "show", "text"]


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


REQUIRED = _Marker("REQUIRED")  # the key must be present
OMIT = _Marker("OMIT")  # the key may be absent, and then stays absent


def show(value: Any, limit: int = 60) -> str:
    """A short, JSON-like rendering of an untrusted value for error messages."""
    try:
        s = json.dumps(value, ensure_ascii=True, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        s = type(value).__name__
    return s if len(s) <= limit else s[: limit - 3] + "..."


def fail(path: str, expected: str, value: Any = None, *, got: str | None = None) -> None:
    """Raise the schema error: ``"<path>: expected <expected>, got <value>"``."""
    shown = got if got is not None else show(value)
    raise ModelFileError(f"{path}: expected {expected}, got {shown}")


def _bounds(lo: Any, hi: Any, below: Any = None) -> str:
    parts = []
    if lo is not None:
        parts.append(f">= {lo}")
    if hi is not None:
        parts.append(f"<= {hi}")
    if below is not None:
        parts.append(f"< {below}")
    return " and ".join(parts)


def boolean() -> Check:
    def check(v: Any, path: str) -> bool:
        if not isinstance(v, bool):
            fail(path, "true or false", v)
        return v
    return check


def integer(lo: int | None = None, hi: int | None = None) -> Check:
    """An integer (never a bool, never a float such as 3.0) in ``[lo, hi]``."""
    what = "an integer" + (" " + _bounds(lo, hi) if lo is not None or hi is not None else "")

    def check(v: Any, path: str) -> int:
        if type(v) is not int or (lo is not None and v < lo) or (hi is not None and v > hi):
            fail(path, what, v)
        return v
    return check


def number(lo: float | None = None, hi: float | None = None, *,
           below: float | None = None) -> Check:
    """A finite real number (an int is accepted and returned as float) in ``[lo, hi]``, and
    ``< below`` when given."""
    bounds = _bounds(lo, hi, below)
    what = "a finite number" + (" " + bounds if bounds else "")

    def check(v: Any, path: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            fail(path, what, v)
        try:
            x = float(v)
        except OverflowError:  # an int too large for a float
            fail(path, what, got="an integer too large for a float")
        if not math.isfinite(x) or (lo is not None and x < lo) or (hi is not None and x > hi) \
                or (below is not None and x >= below):
            fail(path, what, v)
        return x
    return check


def text(max_len: int = 10_000, *, nonempty: bool = False) -> Check:
    what = "a non-empty string" if nonempty else "a string"

    def check(v: Any, path: str) -> str:
        if not isinstance(v, str) or (nonempty and not v):
            fail(path, what, v)
        if len(v) > max_len:
            fail(path, f"{what} of at most {max_len} characters",
                 got=f"{len(v)} characters")
        return v
    return check


def one_of(*values: Any) -> Check:
    """Exactly one of the given plain values (``True`` is not ``1``)."""
    what = "one of " + ", ".join(show(x) for x in values)

    def check(v: Any, path: str) -> Any:
        for x in values:
            if type(v) is type(x) and v == x:
                return v
        fail(path, what, v)
    return check


def optional(inner: Check) -> Check:
    """``null`` or whatever ``inner`` accepts."""
    def check(v: Any, path: str) -> Any:
        return None if v is None else inner(v, path)
    return check


def any_of(*checks: Check, expected: str) -> Check:
    """The first checker that accepts the value; otherwise one error naming ``expected``."""
    def check(v: Any, path: str) -> Any:
        for c in checks:
            try:
                return c(v, path)
            except ModelFileError:
                continue
        fail(path, expected, v)
    return check


def list_of(item: Check, min_len: int = 0, max_len: int | None = None) -> Check:
    n = f"at least {min_len}" if max_len is None else (
        f"{min_len}" if min_len == max_len else f"{min_len} to {max_len}")
    what = "a list" if min_len == 0 and max_len is None else f"a list of {n} items"

    def check(v: Any, path: str) -> list:
        if not isinstance(v, list):
            fail(path, what, v)
        if len(v) < min_len or (max_len is not None and len(v) > max_len):
            fail(path, what, got=f"a list of {len(v)}")
        return [item(x, f"{path}[{i}]") for i, x in enumerate(v)]
    return check


def obj(fields: Mapping[str, Check | tuple[Check, Any]], *, extra: bool = False,
        rules: Sequence[Rule] = ()) -> Check:
    """A JSON object with the given fields (see the module docstring for defaults)."""
    spec: dict[str, tuple[Check, Any]] = {
        k: f if isinstance(f, tuple) else (f, REQUIRED) for k, f in fields.items()}

    def check(v: Any, path: str) -> dict:
        if not isinstance(v, dict):
            fail(path, "an object", v)
        unknown = [k for k in v if k not in spec]
        if unknown and not extra:
            raise ModelFileError(f"{path}: unknown key {show(unknown[0])}; known keys: "
                                 f"{', '.join(spec)}")
        out = {k: v[k] for k in unknown}
        for k, (c, default) in spec.items():
            where = f"{path}.{k}" if path else k
            if k in v:
                out[k] = c(v[k], where)
            elif default is REQUIRED:
                raise ModelFileError(f"{where}: missing (required)")
            elif default is not OMIT:
                out[k] = default
        for rule in rules:
            rule(out, path)
        return out
    return check
