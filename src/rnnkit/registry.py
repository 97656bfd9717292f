"""Looking up a function by name in a table, with the error every registry gives."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def lookup(table: Mapping[str, Callable[..., Any]], name: Any, kind: str,
           plural: str | None = None) -> Callable[..., Any]:
    """``table[name]`` (case-insensitive); a callable is returned as is.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if callable(name):
        return name
    if isinstance(name, str) and name.lower() in table:
        return table[name.lower()]
    raise ValueError(f"{kind}: unknown {kind} {name!r}; known {plural or kind + 's'}: "
                     f"{', '.join(table)}")
