"""rnnkit's threads: how many, and how a call is run in parts side by side.

``rnnkit.kernels`` runs compiled loops and products through :func:`run_parts`, one part per
thread. numba is imported only when a call is split (the waiting helpers of ``_jit.py``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
import time
from typing import Any

import numpy as np

_threads = 1  # set at the end of this module
_workers: list[Any] = []  # _Worker, made as run_parts needs them
_busy = threading.RLock()  # held by the thread whose split calls have the workers
_pid = 0  # the process the workers belong to
_cpus: set[int] = set()  # the CPUs this process may use, where it can choose (Linux)
_here = -1  # the CPU the thread in ``held`` is kept on (-1: none)


def set_num_threads(n: int) -> None:
    """Threads for the large products (input projections, weight gradients) and the large
    time loops (each thread takes a part of the batch). Default: the
    environment's ``RNNKIT_NUM_THREADS``, else ``OPENBLAS_NUM_THREADS`` or ``OMP_NUM_THREADS``
    (so that a limit set for NumPy's BLAS holds here too), else the CPUs this process may
    use."""
    global _threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be an integer >= 1, got {n!r}")
    if n < _threads:
        _stop_workers()
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


#: reads of a flag while waiting, before sleeping: ~1 ms on a Zen 5 core (24 ns per read with
#: the CPU's pause hint). Between the products and loops of one training step the threads so
#: never sleep: waking a thread took 30-50 µs on a 2-core VM, and a split call cost 60 µs
#: more than its longest part (12 µs with the spinning; LSTM small loop 0.35 -> 0.30 ms).
#: A thread that takes the GIL while another holds it sleeps too, so the GIL is handed over
#: only where the other thread is known to have let it go; SETTLE pauses (~5 µs) give the
#: caller the time to enter its own part after posting the others.
SPINS, SETTLE = 40_000, 200
#: reads of a flag before sleeping when the machine is oversubscribed (more runnable threads
#: than CPUs, see ``usable_threads``): ~50 µs. A thread spinning there takes the time slice
#: that a thread with work (ours or another program's) would have had.
SPINS_BUSY = 2_000
#: seconds between two looks at the machine's run queue, and the looks whose least count of
#: other runnable threads is taken: a busy program is in every look; a thread that runs for
#: a moment (a shell, a program's timer) is rarely in three, and does not take a CPU from
#: the split calls (2-CPU machine, nothing busy: 3-15% of looks saw one)
LOAD_CHECK_S, LOAD_LOOKS = 0.05, 3
#: whether the split calls adapt to the machine's load (``usable_threads``); Linux only, and
#: only where this process may use every CPU (a run queue of CPUs it cannot use says nothing)
ADAPT = False  # set at the end of this module
_load_seen = [-1.0, 0]  # when the run queue was last read, and the other runnable threads
_looks: list[int] = []  # the other runnable threads in the last LOAD_LOOKS looks


def _runnable() -> int:
    """Threads runnable on the whole machine now (``/proc/loadavg``'s fourth field)."""
    try:
        with open("/proc/loadavg", "rb") as f:
            return int(f.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return 0


def _others() -> int:
    """Runnable threads that are not ours: the run queue less this thread and the pool's
    threads that are not asleep, read at most every ``LOAD_CHECK_S``, the least of the last
    ``LOAD_LOOKS`` reads."""
    now = time.monotonic()
    if now - _load_seen[0] >= LOAD_CHECK_S:
        ours = 1 + sum(not w.asleep for w in _workers)
        _looks.append(max(0, _runnable() - ours))
        del _looks[:-LOAD_LOOKS]
        _load_seen[:] = [now, min(_looks)]
    return _load_seen[1]


def usable_threads() -> int:
    """The threads a call is split over now: ``get_num_threads()``, less the CPUs that other
    programs' runnable threads take (at least 1). On an oversubscribed machine a split call
    waits for its slowest part, and a part that loses its CPU to another program for a time
    slice holds up the whole call (measured: a 2-thread fit beside two busy processes ran 2x
    slower than on 1 thread). Results do not depend on it: the parts are whole rows."""
    others = _others() if _threads > 1 and ADAPT else 0
    return _threads if others == 0 else max(1, min(_threads, _ncpu - others))


#: a kind of split call (a time loop, a product or a copy of one shape) is also timed run whole, on
#: its own calls, where the program adapts (``ADAPT``): the split's gain is measured, not assumed. A
#: second CPU can be slower than the first for reasons the run queue does not show (a virtual
#: machine's CPU shared with other guests, a hyperthread whose sibling is busy, a laptop's
#: efficiency core); measured on a 2-CPU virtual machine at such a time, RNN B=16, H=64 ``predict``
#: on 2 threads 0.65-1.22 ms in the benchmark, 0.40 ms on one. The two ways are compared in pairs of
#: calls one after the other, a split call and the whole one after it (the time of a kind of call
#: drifts by 10-80% over seconds on a shared machine; two calls side by side see the same machine).
#: The split call of a pair follows another split call: the first after whole calls wakes the pool's
#: thread and finds its CPU's caches cold, and counted, it kept the trial on the whole calls where
#: the split was faster (a busy process on the second CPU: LSTM B=16, H=64 ``predict`` split 1.27x
#: faster, the trial 1.35x slower); so where the whole call is taken, a trial is two split calls.
#: One whole call every FIRST_EVERY calls until FIRST pairs (calls 4, 12, 20), then every EXPLORE
#: calls, or every LOSS·(r - 1) where the way taken is r times faster (an LSTM B=64, H=512 loop 1.9x
#: faster split: a whole call every 90, ~1% of the time). The way changes when the last PAIRS pairs'
#: time whole over their time split (their sums: slow calls now and then count as what they cost)
#: favours the other by MARGIN. Results do not depend on it (the parts are whole rows). A first
#: trial of alternate calls (split, split, whole...) cost the benchmark's short cases a third of
#: their calls run the slower way.
PAIRS, FIRST, FIRST_EVERY, EXPLORE, LOSS, MARGIN = 5, 3, 8, 32, 100, 0.1
#: kinds of call remembered, the first seen dropped first (a layer's training step has up to
#: ~10: its two loops, its products, its weights' copies)
TRIALS_KEPT = 256


class _Trial:
    """A kind of split call's trial: ``pairs``, (time whole, time split) per unit of work of
    the last PAIRS pairs; ``best``, the way taken (1 split, 0 whole); ``last``, the previous
    call's way and time per unit (way -1: none);
    ``every``, calls between two trials of the other way, the next at call ``next``, ``left``
    calls of it still to make."""

    __slots__ = ("best", "calls", "every", "last", "left", "next", "pairs")

    def __init__(self) -> None:
        self.pairs: list[tuple[float, float]] = []
        self.calls, self.best, self.last, self.every, self.next, self.left = \
            0, 1, (-1, 0.0), FIRST_EVERY, 4, 0


_trials: dict[tuple, _Trial] = {}


def split_pays(key: tuple) -> bool:
    """Whether the next call of kind ``key`` runs split (see ``PAIRS``); always without
    ``ADAPT``."""
    if not ADAPT:
        return True
    t = _trials.get(key)
    if t is None:
        t = _trials[key] = _Trial()
        if len(_trials) > TRIALS_KEPT:
            del _trials[next(iter(_trials))]
    t.calls += 1
    if t.left == 0 and t.calls >= t.next:
        t.left, t.next = (1 if t.best else 2), t.calls + t.every
    if t.left:
        t.left -= 1
        return not t.best
    return bool(t.best)


def ran(key: tuple, split: bool, seconds: float, work: float) -> None:
    """Counts a call of kind ``key`` (see ``split_pays``): ``seconds`` for ``work`` units. A
    whole call makes a pair with the call before it if that was split (the trials are made so
    that it followed a split call: the first whole call comes fourth, after the first call of
    the kind, which may have compiled its loop)."""
    t = _trials.get(key)
    if t is None:
        return
    now, (way, then) = seconds / max(work, 1), t.last
    if not split and way == 1 and now > 0 and then > 0:
        t.pairs.append((now, then))
        del t.pairs[:-PAIRS]
        if len(t.pairs) >= FIRST:
            ratio = sum(w for w, _ in t.pairs) / sum(s for _, s in t.pairs)
            if ratio < 1 - MARGIN if t.best else ratio > 1 + MARGIN:
                t.best = 1 - t.best
            faster = ratio if t.best else 1 / ratio  # the way taken, over the other
            t.every = max(EXPLORE, round(LOSS * (faster - 1)))
    t.last = (int(split), now)


def _spins() -> int:
    """Reads of a flag before sleeping: fewer when other programs wait for the CPUs."""
    return SPINS_BUSY if ADAPT and _others() > 0 else SPINS


class _Worker:
    """A pool thread: waits for a job (spinning, then asleep), runs it, publishes that it ended
    (``flags``: see ``_jit.POSTED``). ``avoids``: the CPU it keeps off (-1: none)."""

    def __init__(self) -> None:
        self.flags = np.zeros(16, np.int64)
        self.posted, self.job, self.error, self.asleep, self.avoids = 0, None, None, False, -1
        self.wake = threading.Condition()
        self.thread = threading.Thread(target=self._serve, name="rnnkit", daemon=True)
        self.thread.start()

    def post(self, job: tuple | None) -> None:
        from ._jit import POSTED, publish

        self.job, self.error = job, None
        self.posted += 1
        publish(self.flags, POSTED, self.posted)  # with the GIL held, as is reading asleep
        if self.asleep:
            with self.wake:
                self.wake.notify()

    def wait(self) -> None:
        from ._jit import ENDED, spin_until

        if not spin_until(self.flags, ENDED, self.posted, _spins()):
            while self.flags[ENDED] < self.posted:  # a long part: the worker will not notify
                time.sleep(1e-4)

    def _serve(self) -> None:
        from ._jit import POSTED, end_and_wait

        done, waited = 0, end_and_wait(self.flags, 0, _spins(), SETTLE)
        while True:
            if not waited:
                with self.wake:
                    self.asleep = True
                    while self.flags[POSTED] <= done:
                        self.wake.wait()
                    self.asleep = False
            # the latest job and its number, taken together (a caller interrupted while
            # waiting may have posted another over one not yet started)
            done, job, self.job = self.posted, self.job, None
            if job is None:
                return
            try:
                self._run(*job)
            except BaseException as e:  # re-raised on the caller's thread
                self.error = (done, e)
            del job  # its arrays are the caller's to free
            waited = end_and_wait(self.flags, done, _spins(), SETTLE)

    def _run(self, cpu: int, fn: Any, args: tuple) -> None:
        """``fn(*args)``, on a CPU other than ``cpu`` (-1: anywhere)."""
        if self.avoids != cpu:
            os.sched_setaffinity(0, _cpus - {cpu} if cpu >= 0 else _cpus)
            self.avoids = cpu
        fn(*args)


def _stop_workers() -> None:
    for w in _workers:
        w.post(None)
    _workers.clear()


def run_parts(fn: Any, calls: list[tuple]) -> None:
    """``fn(*args)`` for each ``args`` of ``calls``, side by side: the first on this thread,
    the others on the pool's; returns when all have ended (re-raising the first error).
    ``fn`` should release the GIL (numba's ``nogil``) for the parts to overlap.

    Where the OS allows (Linux), this thread stays on its CPU for the call and the pool's
    threads keep off it. A thread that sleeps (a pool thread between jobs, or this one
    waiting for the GIL) is woken where the scheduler sees fit, and on a small machine that is
    often the CPU of the thread that woke it: the parts then run one after the other (measured
    on 2 cores, LSTM medium loop: 2.1-2.5 ms side by side, 3.6-5.3 ms in long runs of calls
    that shared a CPU).

    While another thread of the program runs a split call, the workers are taken: the parts
    then run one after the other on this thread."""
    if not _claim():
        for args in calls:
            fn(*args)
        return
    try:
        _run_parts(fn, calls)
    finally:
        _busy.release()


def _claim() -> bool:
    """Takes the workers for this thread (``_busy``), unless another thread has them."""
    global _pid, _cpus, _busy
    if _pid != os.getpid():
        # a forked child inherits the workers' objects but not their threads
        _workers.clear()
        _busy = threading.RLock()
        _pid = os.getpid()
        _cpus = os.sched_getaffinity(0) if _sched_getcpu is not None else set()
    return _busy.acquire(blocking=False)


def _pin() -> tuple[int, set[int] | None]:
    """Keeps this thread on its CPU → ``(cpu, mask to restore)``; ``(-1, None)`` where it
    cannot choose (two system calls, ~4 µs)."""
    here = _sched_getcpu() if len(_cpus) > 1 else -1
    if here not in _cpus:
        return -1, None
    mask = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {here})
    return here, mask


@contextlib.contextmanager
def held() -> Any:
    """For a block of several split calls (a backward's chunks): this thread has the workers
    and stays on its CPU throughout, instead of once per call (~4 µs a call)."""
    global _here
    if _threads < 2 or not _claim():
        yield
        return
    outer, mask = _here, None
    try:
        if outer < 0:
            _here, mask = _pin()
        yield
    finally:
        _here = outer
        if mask is not None:
            os.sched_setaffinity(0, mask)
        _busy.release()


def _run_parts(fn: Any, calls: list[tuple]) -> None:
    while len(_workers) < len(calls) - 1:
        _workers.append(_Worker())
    here, mask = (_here, None) if _here >= 0 else _pin()
    used = _workers[: len(calls) - 1]
    try:
        for w, args in zip(used, calls[1:]):
            w.post((here, fn, args))
        try:
            fn(*calls[0])
        finally:
            for w in used:
                w.wait()
    finally:
        if mask is not None:
            os.sched_setaffinity(0, mask)
    for w in used:
        if w.error is not None and w.error[0] == w.posted:
            raise w.error[1]


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
_ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
ADAPT = os.path.exists("/proc/loadavg") and _ncpu == os.cpu_count() \
    and os.environ.get("RNNKIT_ADAPT_THREADS", "1").strip() != "0"
