"""Large products handed to NumPy's BLAS where it is faster on this host, by measurement.

``kernels.matmul`` makes each product outside the time loops (input projections, weight
gradients, ``dX``) with rnnkit's micro-kernel (``_gemm.py``) on rnnkit's threads. For small
products that is faster than a BLAS call (no thread wake-up), but for large ones the BLAS
may win: OpenBLAS packs its operands into its own layout and blocks for every cache level,
which the micro-kernel does not (3200 × 640 @ 640 × 2048 float32: 20-32 GFLOP/s against
27-45, docs/benchmarks.md), while on other hosts or BLAS builds it is the other way round.
Nothing is assumed: a product of at least ``MIN_FLOPS`` looks up its shape class (dtype, each
of M, K and N rounded up to a power of two, whether ``a`` is a transpose, rnnkit's thread
count). The first product of a class times both ways on that product's operands (one
warm-up each, then the best of ``REPS`` runs each, alternating, into scratch: the caller's
output is written once, by the winner) and the faster is used from then on. Choices are kept in
``blas.json`` in the kernel cache folder (``_jit._KernelCache``: per kernels version and
CPU target), so a later process does not measure again.

Either way the product is split by rows over rnnkit's threads, the BLAS on one thread in each
part (``one_thread``): the BLAS's own threads never wake. Woken, they spin for a while after
each call, on the core that the next split time loop needs, and the loops read them as another
program's (``_parallel.usable_threads``) and ran on one thread: LSTM B=32, T=100, H=128
training step on 2 threads of a quiet 2-core machine, 22.2 ms, against 15.7 ms with
``RNNKIT_BLAS=never`` (docs/benchmarks.md, round 5).

That file is read like any file: a JSON object ``{"format": 1, "choices": {class: "blas" |
"rnnkit"}}`` of at most ``MAX_BYTES`` and ``MAX_CLASSES`` entries, every key of the form
``key()`` makes and every value one of the two; anything else and the file is ignored
(measured again, then rewritten atomically). A file that cannot be written costs a
measurement per process, nothing else.

``RNNKIT_BLAS``: ``auto`` (the default: measure), ``never`` (rnnkit's product always; results
then depend on no measurement: the two ways differ in rounding only, but a seeded run is
bit-for-bit the same only when each product is made the same way), ``always`` (NumPy's BLAS
for every product of at least ``MIN_FLOPS``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

#: products of fewer FLOPs (2·M·K·N) always use rnnkit's micro-kernel: a BLAS call wakes its
#: threads, which then spin on the cores rnnkit's threads need (``kernels.matmul``)
MIN_FLOPS = 1e8
#: timed runs each way, after one warm-up each; one when a run takes over ``LONG_S`` seconds
REPS, LONG_S = 3, 0.2
ENV, MODES = "RNNKIT_BLAS", ("auto", "never", "always")
# format 2: the BLAS way on one thread per part (format 1 timed it on the BLAS's own threads)
FILE, FORMAT, MAX_BYTES, MAX_CLASSES = "blas.json", 2, 1 << 16, 512
_KEY = re.compile(r"^(float32|float64)/\d{1,2}x\d{1,2}x\d{1,2}/[nt]/\d{1,3}$")
_CHOICES = ("blas", "rnnkit")

_lock = threading.Lock()
_choices: dict[str, str] | None = None  # read from the file on first use
_libs: list | None = None  # threadpoolctl's controllers of the BLAS libraries loaded
_held: list = [0, []]  # the blocks in one_thread now, and the thread counts they restore


def mode() -> str:
    """``RNNKIT_BLAS`` (read at each call: tests and users may set it at any time)."""
    value = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"{ENV}: expected one of {', '.join(MODES)}, got {value!r}")
    return value


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """NumPy's BLAS on the calling thread only, for the block (blocks may overlap on several
    threads: the first sets it, the last restores it). The setting is the library's, for the
    whole process: a BLAS call of another thread meanwhile runs on one thread too."""
    global _libs
    with _lock:
        if _libs is None:
            from threadpoolctl import ThreadpoolController

            _libs = ThreadpoolController().select(user_api="blas").lib_controllers
        if _held[0] == 0:
            _held[1] = [lib.num_threads for lib in _libs]
            for lib in _libs:
                lib.set_num_threads(1)
        _held[0] += 1
    try:
        yield
    finally:
        with _lock:
            _held[0] -= 1
            if _held[0] == 0:
                for lib, n in zip(_libs, _held[1]):
                    lib.set_num_threads(n)


def rows(a: np.ndarray, b: np.ndarray, out: np.ndarray, accumulate: bool,
         bias: np.ndarray | None) -> None:
    """``out = a @ b (+ bias)``, or ``out += a @ b``, by NumPy's BLAS (a part of a product
    split by rows)."""
    if accumulate:
        out += np.matmul(a, b)
        return
    np.matmul(a, b, out=out)
    if bias is not None:
        out += bias


def _up(n: int) -> int:
    return max(0, int(n) - 1).bit_length()


def key(dtype: np.dtype, M: int, K: int, N: int, transposed: bool, threads: int) -> str:
    """The shape class of a product: ``float32/12x7x11/t/2`` (log2 of M, K, N rounded up)."""
    return f"{np.dtype(dtype).name}/{_up(M)}x{_up(K)}x{_up(N)}/{'t' if transposed else 'n'}" \
           f"/{threads}"


def path() -> str | None:
    """``blas.json`` in the kernel cache folder, or ``None`` when there is none."""
    from . import _gemm
    from ._jit import _KernelCache

    fn = _gemm.matmul.py_func
    where = _KernelCache.from_function(fn, fn.__code__.co_filename)
    return None if where is None else os.path.join(where.get_cache_path(), FILE)


def parse(data: bytes) -> dict[str, str]:
    """The choices in a ``blas.json``'s bytes; ``ValueError`` naming what is wrong."""
    if len(data) > MAX_BYTES:
        raise ValueError(f"{FILE}: {len(data)} bytes, expected at most {MAX_BYTES}")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{FILE}: not JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{FILE}: expected an object with format {FORMAT}")
    choices = doc.get("choices")
    if not isinstance(choices, dict) or len(choices) > MAX_CLASSES:
        raise ValueError(f"{FILE}: choices must be an object of at most {MAX_CLASSES} entries")
    for k, v in choices.items():
        if not _KEY.match(k) or v not in _CHOICES:
            raise ValueError(f"{FILE}: entry {k[:80]!r}: {str(v)[:20]!r} is not a choice")
    return dict(choices)


def _read() -> dict[str, str]:
    where = path()
    if where is None:
        return {}
    try:
        with open(where, "rb") as f:
            return parse(f.read(MAX_BYTES + 1))
    except (OSError, ValueError):  # missing, unreadable or not ours: measure again
        return {}


def _write(choices: dict[str, str]) -> None:
    from ..fileio import write_atomic

    where = path()
    if where is None:
        return
    doc = {"format": FORMAT, "choices": dict(sorted(choices.items())[:MAX_CLASSES])}
    try:
        write_atomic(where, json.dumps(doc, indent=1).encode())
    except OSError:
        pass  # a read-only cache: measured again by the next process


def forget() -> None:
    """Drop the choices read or made in this process (the file stays)."""
    global _choices
    with _lock:
        _choices = None


def _once(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _best(ours: Callable[[], object], blas: Callable[[], object]) -> tuple[float, float]:
    """The best times of ``ours`` and ``blas``: one warm-up each, then ``REPS`` rounds of one
    run each (alternating, so that a change of the machine's load meets both)."""
    long = max(_once(ours), _once(blas)) > LONG_S
    t = [np.inf, np.inf]
    for _ in range(1 if long else REPS):
        t = [min(t[0], _once(ours)), min(t[1], _once(blas))]
    return t[0], t[1]


def use_blas(cls: str, ours: Callable[[np.ndarray], object],
             blas: Callable[[np.ndarray], object], out: np.ndarray) -> bool:
    """Whether products of class ``cls`` go to the BLAS: the choice kept for it, else measured
    now by timing ``ours(scratch)`` and ``blas(scratch)`` (each writes ``out``'s shape)."""
    global _choices
    how = mode()
    if how != "auto":
        return how == "always"
    with _lock:
        if _choices is None:
            _choices = _read()
        known = _choices.get(cls)
    if known is not None:
        return known == "blas"
    scratch = np.empty_like(out)
    t_ours, t_blas = _best(lambda: ours(scratch), lambda: blas(scratch))
    choice = "blas" if t_blas < t_ours else "rnnkit"
    with _lock:
        _choices[cls] = choice
        mine = dict(_choices)
    _write({**_read(), **mine})  # another process's choices too
    return choice == "blas"
