"""rnnkit's threads: how many, and how a call is run in parts side by side.

Pure Python (no numba): ``rnnkit.kernels`` runs compiled loops and products through
:func:`run_parts`, one part per thread.
"""

from __future__ import annotations

import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_threads = 1  # set at the end of this module
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_cpus: set[int] = set()  # the CPUs this process may use, where it can choose (Linux)
_worker = threading.local()


def set_num_threads(n: int) -> None:
    """Threads for the large products (input projections, weight gradients) and the large
    time loops (each thread takes a part of the batch). Default: the
    environment's ``RNNKIT_NUM_THREADS``, else ``OPENBLAS_NUM_THREADS`` or ``OMP_NUM_THREADS``
    (so that a limit set for NumPy's BLAS holds here too), else the CPUs this process may
    use."""
    global _threads, _pool
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be an integer >= 1, got {n!r}")
    if _pool is not None and n != _threads:
        _pool.shutdown(wait=True)
        _pool = None
    _threads = n


def get_num_threads() -> int:
    """The thread count set by :func:`set_num_threads` or its default."""
    return _threads


def _default_threads() -> int:
    for var in ("RNNKIT_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else (os.cpu_count() or 1)


def run_parts(fn: Any, calls: list[tuple]) -> None:
    """``fn(*args)`` for each ``args`` of ``calls``, side by side: the first on this thread,
    the others on the pool's; returns when all have ended (re-raising the first error).

    Where the OS allows (Linux), this thread stays on its CPU for the call and the pool's
    threads keep off it. A thread that sleeps (a pool thread between jobs, or this one
    waiting for the GIL) is woken where the scheduler sees fit, and on a small machine that is
    often the CPU of the thread that woke it: the parts then run one after the other (measured
    on 2 cores, LSTM medium loop: 2.1-2.5 ms side by side, 3.6-5.3 ms in long runs of calls
    that shared a CPU)."""
    global _pool, _pool_pid, _pool_cpus
    if _pool is None or _pool_pid != os.getpid():
        # a forked child inherits the pool but not its threads: its jobs would never start
        _pool, _pool_pid = ThreadPoolExecutor(_threads - 1, thread_name_prefix="rnnkit"), \
            os.getpid()
        _pool_cpus = os.sched_getaffinity(0) if _sched_getcpu is not None else set()
    here = _sched_getcpu() if len(_pool_cpus) > 1 else -1
    if here in _pool_cpus:
        mask = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {here})
    else:
        here, mask = -1, None
    try:
        jobs = [_pool.submit(_away_from, here, fn, args) for args in calls[1:]]
        try:
            fn(*calls[0])
        finally:
            for job in jobs:
                job.exception()
    finally:
        if mask is not None:
            os.sched_setaffinity(0, mask)
    for job in jobs:
        job.result()


def _away_from(cpu: int, fn: Any, args: tuple) -> None:
    """Run ``fn(*args)`` on a pool thread kept off ``cpu`` (-1: anywhere)."""
    if getattr(_worker, "avoids", -1) != cpu:
        os.sched_setaffinity(0, _pool_cpus - {cpu} if cpu >= 0 else _pool_cpus)
        _worker.avoids = cpu
    fn(*args)


def _libc_sched_getcpu() -> Any:
    if not hasattr(os, "sched_setaffinity"):  # Linux only
        return None
    try:
        fn = ctypes.CDLL(None).sched_getcpu
    except (OSError, AttributeError):
        return None
    fn.restype, fn.argtypes = ctypes.c_int, []
    return fn


_sched_getcpu = _libc_sched_getcpu()
_threads = _default_threads()
