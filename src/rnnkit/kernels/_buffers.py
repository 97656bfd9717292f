"""Arrays for the compiled loops: kept for reuse between calls (a fresh array is mapped page by
page as it is first written), started at a cache line where the parts of a split loop write
them, one per part for a buffer every step writes over."""

from __future__ import annotations

import math

import numpy as np

#: arrays of finished backward passes (tapes, dxz), by (shape, dtype), for the next call: a
#: fresh array is mapped page by page as it is first written, which cost 25% of an LSTM
#: medium training step (measured), the kernel's zeroing of every page included
_spare: dict[tuple, list[np.ndarray]] = {}
#: arrays kept per (shape, dtype) (two directions of two stacked layers), and bytes in all
SPARE_PER_SHAPE, SPARE_BYTES = 4, 256 * 2**20
#: smaller arrays are not kept: malloc reuses their memory without new page faults (below
#: glibc's mmap threshold), and keeping them cost more than it saved (LSTM tiny predict:
#: ~1 µs per array)
SPARE_MIN_BYTES = 256 * 2**10


#: bytes of a cache line. The arrays that the parts of a split loop write start at one, so
#: that no line holds rows of two parts (rows a multiple of it long): such a line moves
#: between the two cores at each write. malloc's large arrays start 16 bytes into a line;
#: so started, in-process A/B: LSTM B=16, H=64 `predict` 310 → 290 µs, training step 927 →
#: 855 µs; B=32, H=128 `predict` 1454 → 1415 µs.
LINE = 64


def _empty(shape: tuple, dt: np.dtype, aligned: bool = False) -> np.ndarray:
    """``np.empty(shape, dt)``, starting at a cache line when ``aligned`` (costs ~1.5 µs)."""
    if not aligned:
        return np.empty(shape, dt)
    n = math.prod(shape) * dt.itemsize
    raw = np.empty(n + LINE, np.uint8)
    start = -raw.ctypes.data % LINE
    return raw[start : start + n].view(dt).reshape(shape)


def _take(shape: tuple, dt: np.dtype, aligned: bool = False) -> np.ndarray:
    """An array kept for reuse (see ``recycle``), else a new one (see ``_empty``)."""
    free = _spare.get((shape, dt))
    while free:
        a = free.pop()
        if not aligned or a.ctypes.data % LINE == 0:
            return a
    return _empty(shape, dt, aligned)


def _whole(a: np.ndarray) -> np.ndarray | None:
    """The array that ``a`` is a view of (an aligned array is itself a view of bytes, and
    NumPy makes views of it views of the bytes: those give ``None``)."""
    while isinstance(a.base, np.ndarray) and a.base.dtype == a.dtype:
        a = a.base
    return a if a.flags.c_contiguous else None


def recycle(*arrays: np.ndarray) -> None:
    """Hand arrays that nothing else refers to any more (a backward's ``dxz``, ``dhz``) back
    for reuse by the next forward or backward of the same shape; a view stands for the array
    it views. Over ``SPARE_BYTES``, the shapes recycled longest ago are dropped first (inputs
    of changing lengths); an ``_Own`` stands for its arrays."""
    kept: dict[int, np.ndarray] = {}
    for v in arrays:
        for a in v if isinstance(v, _Own) else (v,):
            a = _whole(a)
            if a is not None and a.nbytes >= SPARE_MIN_BYTES:
                kept[id(a)] = a
    if not kept:
        return
    for a in kept.values():
        key = (a.shape, a.dtype)
        free = _spare.pop(key, [])  # back in at the end: the most recent shape
        _spare[key] = [*free, a][-SPARE_PER_SHAPE:]
    total = sum(a.nbytes for free in _spare.values() for a in free)
    while total > SPARE_BYTES:
        key = next(iter(_spare))
        total -= sum(a.nbytes for a in _spare.pop(key))


def release_buffers() -> None:
    """Free the arrays kept for reuse (at most those of the last training step)."""
    _spare.clear()


class _Own(tuple):
    """Arrays, one for each part of a split loop: a buffer that every step writes over, each
    part its own. Parts writing neighbouring rows of one such buffer (LSTM B=64, H=512,
    `predict`: the gates of a step, 256 KB a part) ran at times 15-20% slower in the second
    part, on either CPU (rows 32-63: 44-45 ms, rows 0-31: 37-38 ms); each in its own buffer,
    both 37-38 ms (in-process A/B: `predict` 46 → 39.7 ms). The cause was not found: a gap
    of 8-64 KB between the parts' rows did not help, one of 512 KB did."""


def _per_part(shape: tuple, dt: np.dtype, parts: int, own: bool = True) -> np.ndarray | _Own:
    """An array for a loop in ``parts`` parts, starting at a cache line when split (see
    ``LINE``): with ``own`` (a buffer every step writes over), one for each part."""
    if own and parts > 1:
        return _Own(_take(shape, dt, True) for _ in range(parts))
    return _take(shape, dt, parts > 1)
