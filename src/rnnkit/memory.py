"""What a model's parameters need in memory, computed before anything is allocated.

``hidden=100_000_000`` would otherwise grow to gigabytes before NumPy gives up with a
``MemoryError`` from deep inside an initialiser; these checks fail first, naming the size.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from .errors import MemoryLimitError

#: bytes per parameter while building: the weights and their gradients in the model's dtype,
#: and a float64 temporary of the initialisers
BUILD_BYTES = {np.dtype(np.float32): 2 * 4 + 8, np.dtype(np.float64): 2 * 8 + 8}
#: the constructor arguments that set a layer's size, as its error names them
SIZE_ARGS = ("hidden", "units", "vocab_size", "dim")


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux: MemAvailable), or ``None``."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"


def size_args(layer: Any) -> str:
    """``"hidden=8"``, ``"vocab_size=50, dim=16"``: what sets the layer's size."""
    return ", ".join(f"{a}={getattr(layer, a)}" for a in SIZE_ARGS if hasattr(layer, a))


def check_layer(layer: Any, input_size: int, dtype: Any, available: int | None = None) -> None:
    """Refuse to build one layer whose parameters and gradients cannot fit in memory (a layer
    built outside ``Sequential``, which checks the whole model first)."""
    available = available_memory() if available is None else available
    if available is None:
        return
    own, _ = layer.param_shapes(input_size)
    n = sum(math.prod(s) for s in own.values())
    need = n * BUILD_BYTES[np.dtype(dtype)]
    if need <= available:
        return
    name, args = f"{type(layer).__name__}({size_args(layer)})", size_args(layer)
    readout = getattr(layer, "readout", None)
    if readout is not None:
        n_out = sum(math.prod(s) for s in readout.param_shapes(layer.state_size)[0].values())
        if 2 * n_out > n:  # the readout is the larger part: its size is the one to change
            name += f" with readout Dense({size_args(readout)})"
            args = size_args(readout)
    raise MemoryLimitError(
        f"{name}: {n:.3g} parameters need about {human_bytes(need)} to build "
        f"({np.dtype(dtype).name} weights and gradients), but {human_bytes(available)} of "
        f"memory is available: make {args.split('=')[0]} smaller")
