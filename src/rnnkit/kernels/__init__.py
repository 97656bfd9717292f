"""The fast path: compiled time loops for the recurrent layer, with the NumPy loop as reference.

``layers/recurrent.py`` asks :func:`forward` to run one direction; it returns ``None`` when no
kernel applies (numba missing, the ``"numpy"`` backend forced, an activation other than
tanh/sigmoid/relu/identity, a dtype other than float32/float64) and the layer then runs its
reference NumPy loop. A forward that ran here returns a :class:`Tape`, and the layer hands it
back to :func:`backward`. Both compute exactly the cells' equations (see ``elman.py``,
``lstm.py``, ``gru.py``); only the rounding order of the sums may differ.

The whole time loop runs in one compiled call per direction, forward and backward (a large
RNN backward in a few, over chunks of steps, to bound its memory: ``chunk_steps``), with
every product done by the register-blocked micro-kernel of ``_gemm.py`` (faster than NumPy's
BLAS at every size of the benchmark, B=1 to 64, H=32 to 512: docs/benchmarks.md). When a
loop is large (``SPLIT_MIN_MACS``), the threads run it on parts of the batch: the rows are
independent sequences, so the parts never wait for each other. Whether the split pays is
also measured on the calls themselves, against the loop run whole
(``_parallel.split_pays``). Without a backward to follow (``train=False``: predict,
evaluate, streaming) the cell states (and the GRU's gates) go through one- and two-step
buffers instead of a tape over all steps. A one-step forward (streaming) does not run the
loop, which would first copy ``W_h.T`` into the micro-kernel's layout, at more cost than the
step: for one sequence, a compiled call makes the products with the weights as they are
(``_gemm.matvec``) and the step; otherwise NumPy's products and the compiled step
(``_step``).

:func:`matmul` is the layer's product for everything outside the loop (input projections
with their bias, weight gradients, ``dX``), split by rows over the threads when large, or
whole where the split was slower (timed as the loops are: ``_by_rows``).

Backend: :func:`set_backend` or the environment variable ``RNNKIT_BACKEND``, read at import:
``"auto"`` (default: numba when importable), ``"numpy"`` (always the reference loop),
``"numba"`` (require numba).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import itertools
import os
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np

from ..cells import ElmanCell, GRUCell, LSTMCell
from . import _blas
from ._buffers import LINE, _empty, _Own, _per_part, _take, recycle, release_buffers
from ._parallel import (
    get_num_threads,
    held,
    ran,
    run_parts,
    set_num_threads,
    split_pays,
    usable_threads,
)

__all__ = ["BACKENDS", "Tape", "backward", "compiled_on_disk", "for_job", "forward",
           "get_backend", "get_num_threads", "job_backend", "matmul", "numba_available",
           "recycle", "release_buffers", "running", "set_backend", "set_num_threads"]

BACKENDS = ("auto", "numpy", "numba")
ACTIVATIONS = ("tanh", "sigmoid", "relu", "identity")
_KIND = {ElmanCell: "elman", LSTMCell: "lstm", GRUCell: "gru"}
_backend = "auto"  # then RNNKIT_BACKEND, at the end of this module
_modules: dict[str, ModuleType] | None = None
_gemm: ModuleType | None = None  # with _modules
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def set_backend(name: str) -> None:
    """Choose the time loop: ``"auto"``, ``"numpy"`` (the reference) or ``"numba"``."""
    global _backend
    if name not in BACKENDS:
        raise ValueError(f"set_backend: name must be one of {BACKENDS}, got {name!r}")
    if name == "numba" and not numba_available():
        raise ImportError("set_backend('numba'): numba is not installed; "
                          "pip install numba")
    _backend = name


def get_backend() -> str:
    """The backend in force: ``"auto"``, ``"numpy"`` or ``"numba"``."""
    return _backend


#: a job (a whole ``rnnkit train``: every planned epoch's training and validation steps) of at
#: most SMALL_JOB_STEPS time-step calls of its recurrent layers and SMALL_JOB_MACS
#: multiply-adds runs the NumPy reference loop, with NumPy's BLAS on one thread, under the
#: ``"auto"`` backend (:func:`job_backend`). Compiling the LSTM's loops and product takes 19-22
#: s of CPU (60-230 s of wall time on a busy 2-core machine), more than such a job takes in
#: NumPy: the default ``rnnkit train`` (LSTM(32), sunspots, 100 epochs planned: 33,000 step
#: calls, 5.9e9 multiply-adds) 2.4 s of CPU in NumPy on one BLAS thread, 3.2 s with the
#: compiled loops loaded from the cache, 22 s with an empty cache (docs/benchmarks.md). The
#: rule reads the job's size only, never the cache: a seeded run gives the same numbers with
#: a cache or without, and a resumed run takes the path of the run it resumes.
SMALL_JOB_STEPS, SMALL_JOB_MACS = 60_000, 2e10


def job_backend(steps: int, macs: float) -> str:
    """The time loop for a job of ``steps`` time-step calls and ``macs`` multiply-adds:
    ``"numpy"`` for a small job under ``"auto"`` (see ``SMALL_JOB_STEPS``), else the backend
    in force (a forced ``"numba"`` or ``"numpy"`` stays)."""
    if _backend == "auto" and steps <= SMALL_JOB_STEPS and macs <= SMALL_JOB_MACS:
        return "numpy"
    return _backend


@contextlib.contextmanager
def for_job(steps: int, macs: float) -> Iterator[str]:
    """Run a job in the time loop that :func:`job_backend` picks for its size; yields what
    runs: ``"numpy"`` (the reference loop, NumPy's BLAS on one thread: its threads would spin
    on the cores of a busy machine for products of microseconds) or ``"numba"``."""
    global _backend
    chosen = job_backend(steps, macs)
    if chosen != "numpy" or _backend == "numpy":
        yield running()
        return
    from threadpoolctl import threadpool_limits

    previous, _backend = _backend, "numpy"
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield "numpy"
    finally:
        _backend = previous


def running() -> str:
    """The time loop that runs now: ``"numba"`` (compiled) or ``"numpy"`` (the reference)."""
    return "numba" if _backend != "numpy" and _load() is not None else "numpy"


def numba_available() -> bool:
    """Whether numba imports (the ``fast`` extra); imports it on the first call."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _load() -> dict[str, ModuleType] | None:
    global _modules, _gemm
    if _modules is None:  # tried once; {} when numba is missing
        _modules = {}
        if numba_available():
            _gemm = importlib.import_module(f"{__name__}._gemm")
            _modules = {k: importlib.import_module(f"{__name__}.{k}") for k in _KIND.values()}
            _clean_cache()
    return _modules or None


def _clean_cache() -> None:
    """Remove the compiled code of other kernel versions beside this one's cache folder
    (``_target.clean_old``: only rnnkit's own folders, untouched for a day)."""
    from ._jit import _KernelCache
    from ._target import clean_old

    fn = _gemm.matmul.py_func
    where = _KernelCache.from_function(fn, fn.__code__.co_filename)
    if where is not None:
        clean_old(where.get_cache_path())


def compiled_on_disk(kind: str) -> bool | None:
    """Whether the time loops of a cell (``"elman"``, ``"lstm"``, ``"gru"``) are in numba's
    on-disk cache for this version of the kernels and this target, so that a run loads them
    instead of compiling them (seconds to a minute); ``None`` when no kernel would run
    (numba missing, the ``"numpy"`` backend)."""
    if _backend == "numpy" or _load() is None:
        return None
    from ._jit import _KernelCache

    fn = _modules[kind].forward_loop.py_func
    where = _KernelCache.from_function(fn, fn.__code__.co_filename)
    try:
        names = os.listdir(where.get_cache_path()) if where is not None else []
    except OSError:
        return False
    return any(n.startswith(f"{kind}.forward_loop-") and n.endswith(".nbi") for n in names)


class Tape:
    """What a compiled forward keeps for its backward: the kernel's name, its arrays and the
    activation codes."""

    __slots__ = ("arrays", "codes", "kind", "r", "v")

    def __init__(self, kind: str, arrays: tuple, codes: tuple[int, int],
                 r: np.ndarray | None = None, v: tuple = ()) -> None:
        self.kind, self.arrays, self.codes, self.r = kind, arrays, codes, r
        self.v = v  # the variants' arguments (_variant_args), for the backward


#: a one-step forward of one sequence makes its products with ``_gemm.matvec`` (in the same
#: compiled call as the step) up to this many bytes of ``W_x`` and ``W_h``. A stream step,
#: float32, D = H/4, both ways one after the other: RNN H=64 5.9 against 6.8 µs, GRU H=64
#: 6.7 against 8.6, LSTM H=256 20.8 against 26.5, GRU H=384 (2.2 MiB) 31.5 against 37.6;
#: LSTM H=384 (2.8 MiB) 39 against 33, GRU H=512 50 against 39. Above, each product by
#: ``_gemm.matvec`` in blocks of rows on rnnkit's threads (``matmul``), not by NumPy on
#: OpenBLAS's threads, whose spinning fights rnnkit's: LSTM H=512 step on a 2-CPU machine
#: with a load of 19, 27.5 -> 1.8 ms.
ONE_STEP_MAX_BYTES = 5 * 2**19

#: one sequence of a plain cell without a tape goes to ``_sequence`` up to this many bytes of
#: ``W_h``: larger ones go in panels (``_weights``), and the Python saved is small beside
#: their steps
SEQUENCE_MAX_BYTES = 1 << 20

_NO_MASK = np.ones((1, 1), dtype=bool)
_DUMMY: dict[np.dtype, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _dummies(dt: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arrays standing for none: one zero, no bias (empty), no ``dhs``."""
    if dt not in _DUMMY:
        _DUMMY[dt] = (np.zeros(1, dt), np.zeros(0, dt), np.zeros((1, 1, 1), dt))
    return _DUMMY[dt]


@functools.cache
def _codes_of(names: tuple[str, str]) -> tuple[int, int] | None:
    if names[0] not in ACTIVATIONS or names[1] not in ACTIVATIONS:
        return None
    return ACTIVATIONS.index(names[0]), ACTIVATIONS.index(names[1])


def _codes(cell: Any) -> tuple[int, int] | None:
    return _codes_of((cell.act.name, getattr(cell, "gate", cell.act).name))


def _same_dtype(p: dict[str, np.ndarray], dt: np.dtype) -> bool:
    """Whether ``dt`` is float32 or float64 and every parameter has it."""
    if dt not in _FLOATS:
        return False
    for v in p.values():
        if v.dtype != dt:
            return False
    return True


def _no_r(dt: np.dtype, B: int, H: int, r: np.ndarray | None) -> tuple:
    """The loops' recurrent-dropout arguments ``(r, scratch (B, H), has_r)``; arrays
    standing for none without ``r``."""
    if r is None:
        none = np.zeros((1, 1), dt)
        return none, none, False
    return np.ascontiguousarray(r, dt), np.empty((B, H), dt), True


def _zone(zone: tuple | None, k: int, dt: np.dtype, n: int) -> tuple[np.ndarray, bool]:
    """Zoneout's arguments ``(z, has_z)`` for state vector ``k``: a ``(T, B, n)`` mask, or
    the rate (inference) as ``(1, 1, n)``; an array standing for none at rate 0."""
    z = None if zone is None else zone[k]
    if z is None or (np.ndim(z) == 0 and z == 0):
        return _dummies(dt)[2], False
    if np.ndim(z) == 0:
        return np.full((1, 1, n), z, dt), True
    return np.ascontiguousarray(z, dt), True


def _ln_args(kind: str, p: dict[str, np.ndarray], dt: np.dtype, steps: int, B: int, GH: int,
             parts: int, own: bool) -> tuple:
    """Layer norm's arguments of a gated loop, ``(xh, hh, iv, lnp, has_ln)``: the normalised
    projections ``(steps, B, GH)``, their ``1 / std`` per row ``iv (steps, B, 2)`` and the
    parameters in one row, ``lnp``: ``g_x, g_h, b`` (zeros without a bias), then the LSTM's
    ``g_c, b_c``; stand-ins without layer norm. The LSTM keeps no normalised input rows
    (lstm.py): its ``xh`` is ``xk``, the input projection as it came, for a forward with a
    backward (not ``own``) from ``LN_KEEP_MIN_D`` inputs, else a stand-in (the backward makes
    it again from the inputs), and its ``iv (steps, B, 5)`` holds the three ``1 / std`` and the
    means of the input part and of ``c``."""
    lstm = kind == "lstm"
    none = _dummies(dt)[2]
    if "g_x" not in p:
        return (none, none, none, _dummies(dt)[1], False)
    b = p["b"] if "b" in p else np.zeros(GH, dt)
    lnp = np.concatenate([p["g_x"], p["g_h"], b, *((p["g_c"], p["b_c"]) if lstm else ())])
    keep = not lstm or (not own and p["W_x"].shape[1] >= LN_KEEP_MIN_D)
    xh = _per_part((steps, B, GH), dt, parts, own) if keep else none
    hh = _per_part((steps, B, GH), dt, parts, own)
    # a row of iv a cache line of its own when the parts of a split loop share iv: their
    # neighbouring rows in one line moved between the two cores at each step's writes
    width = 5 if lstm else 2
    iv = _per_part((steps, B, max(width, LINE // dt.itemsize) if parts > 1 and not own
                    else width), dt, parts, own)
    return (xh, hh, iv, lnp, True)


#: the layer-normalised LSTM's forward keeps each step's input projection for the backward
#: from this many inputs (D) on; with fewer, the backward makes it again (lstm.py), which
#: costs D multiply-adds per value instead of the tape's write and read. Training step over
#: the plain one's, float32, one thread (benchmarks/lstm_layer_norm_loops.py): large (D=128)
#: made again 1.13-1.16x, kept 1.03-1.05x; medium (D=32) 1.18x either way; small (D=16) made
#: again 1.38x, kept 1.41x (its forward loop 1.41 -> 1.53x)
LN_KEEP_MIN_D = 64


def _ln_grads(kind: str, acc: Any, grads: dict[str, np.ndarray], H: int) -> None:
    """Adds a backward's layer-norm gradients, ``acc`` (one per part; in the order of
    ``lnp``, and the GRU's ``b_hn`` last), into ``grads``."""
    total = sum(acc) if isinstance(acc, _Own) else acc
    G = (4 if kind == "lstm" else 3) * H
    names = ["g_x", "g_h", "b"] + (["g_c", "b_c"] if kind == "lstm" else ["b_hn"])
    starts = [0, G, 2 * G, 3 * G, 3 * G + H, 3 * G + 2 * H]
    for name, i, j in zip(names, starts, starts[1:]):
        if name in grads:
            grads[name] += total[i:j]


def forward(cell: Any, p: dict[str, np.ndarray], x: np.ndarray, s0: tuple,
            mask: np.ndarray | None, train: bool = True, r: np.ndarray | None = None,
            zone: tuple | None = None) -> tuple[np.ndarray, Tape | None, tuple] | None:
    """Run one direction: inputs ``x (T, B, D)``, initial state ``s0`` and ``mask (T, B)`` →
    ``(hs (T, B, H), tape, final state)``, or ``None`` when the reference NumPy loop must run.
    Every step's input projection ``x_t @ W_x.T + b`` is made first, as one product (made
    step by step inside the loop, it was 5-20% slower: two products per step); the LSTM's
    loop turns it into the gates in place. The GRU makes its projection step by step, for
    memory (its loop has the two products anyway). ``train=False``: no tape (``None``); the
    cell states (and the GRU's gates) go through buffers of one or two steps, which stay in
    cache, instead of arrays over all steps. One step (streaming) goes to ``_step`` (a cell with
    variants with a tape: the loop for ``T = 1``). ``r (B, H)``:
    recurrent dropout's mask (cells/base.py), kept on the tape for the backward; ``zone``:
    zoneout's, per state vector (layers/recurrent.py); peepholes, the projection and layer
    norm from ``p`` (``P``, ``W_hr``, ``g_x``...)."""
    if _backend == "numpy":
        return None
    kind, dt = _KIND.get(type(cell)), x.dtype
    if kind is None or not _same_dtype(p, dt):
        return None
    codes, mods = _codes(cell), _load()
    if mods is None or codes is None:
        return None
    m, has_mask = (_NO_MASK, False) if mask is None else (np.ascontiguousarray(mask), True)
    mod, h0 = mods[kind], np.ascontiguousarray(s0[0], dt)
    if x.shape[0] == 1 and (not train or (r is None and zone is None and cell.plain)):
        return _step(kind, mod, p, x, h0, s0, m, has_mask, codes, train, zone,
                     zone is None and cell.plain)
    if not all(v.flags.writeable for v in p.values()):  # a read-only map (joblib's mmap_mode)
        p = {k: np.array(v) for k, v in p.items()}  # is another type: the loops compiled again
    if x.shape[1] == 1 and not train and zone is None and cell.plain \
            and p["W_h"].nbytes <= SEQUENCE_MAX_BYTES:
        return _sequence(kind, mod, p, x, h0, s0, m, has_mask, codes)
    (T, B, _), W_h, (ca, cg) = x.shape, p["W_h"], codes
    H = W_h.shape[1]  # of h: the LSTM's proj_size when it projects; Hc of its cell state
    parts, key = _parts(T, B, W_h, ("forward", kind, train, len(p)))
    split = parts > 1  # the arrays the loop writes start at a cache line (_buffers.LINE)
    own = not train  # buffers of one step are each part's own (see _Own)
    hs = _empty((T, B, H), dt, split)
    steps, cells = (T, T) if train else (1, 2)  # steps the buffers hold
    zh, has_zh = _zone(zone, 0, dt, H)
    ln = () if kind == "elman" else _ln_args(kind, p, dt, steps, B, W_h.shape[0], parts, own)
    bias = None if ln and ln[-1] else p.get("b")  # layer norm: b added after it, in the step
    if kind == "elman":
        args, arrays = (h0, hs, m, has_mask, ca), ()
        hc = _empty((T, B, H), dt, split) if has_zh else hs  # the cell's h (elman.py)
        v = (hc, zh, has_zh)
    elif kind == "lstm":
        # with at least INSIDE_MIN_ROWS rows a part, the loop makes each step's projection
        inside = B // parts >= INSIDE_MIN_ROWS
        gates = _per_part((T if train or not inside else 1, B, W_h.shape[0]), dt, parts,
                          own and inside)
        c0, Hc = np.ascontiguousarray(s0[1], dt), W_h.shape[0] // 4
        cs, tcs = _take((cells, B, Hc), dt, split), _take((steps, B, Hc), dt, split)
        args, arrays = (h0, c0, hs, cs, tcs, gates, m, has_mask, ca, cg), (c0, cs, tcs, gates)
        zc, has_zc = _zone(zone, 1, dt, Hc)
        cc = _take((steps, B, Hc), dt, split) if has_zc else cs  # the cell's c (lstm.py)
        P = p["P"] if "P" in p else _dummies(dt)[1]
        ms = _take((steps, B, Hc), dt, split) if "W_hr" in p else hs  # m (lstm.py)
        WhrT = _operand(p["W_hr"].T) if "W_hr" in p else _NO_R[dt]
        v = (P, "P" in p, zh, has_zh, zc, has_zc, cc, ms, ln)
    else:
        b_hn = p.get("b_hn", _dummies(dt)[0])
        gates = _per_part((steps, B, W_h.shape[0]), dt, parts, own)
        hzn = _per_part((steps, B, H), dt, parts, own)
        args = (h0, b_hn, "b_hn" in p, hs, gates, hzn, m, has_mask, ca, cg)
        arrays, v = (h0, gates, hzn), (zh, has_zh, ln)
    if kind == "elman":  # the projection goes into hc, which the loop activates in place
        matmul(x.reshape(T * B, -1), p["W_x"].T, hc.reshape(T * B, -1), bias=p.get("b"))
        WhT = _weights(W_h.T)
        _loop(mod.forward_loop, (WhT, _per_part((B, H), dt, parts), *args, *_no_r(dt, B, H, r),
                                 *v), B, parts, key, T)
        recycle(WhT)
    else:  # the loop reads x: the GRU's projection is step by step (gru.py: for memory)
        WxT, WhT, xc = _operand(p["W_x"].T), _weights(W_h.T), np.ascontiguousarray(x, dt)
        head = (xc, WxT, _dummies(dt)[1] if bias is None else bias)
        if kind == "lstm":
            if not inside:
                matmul(x.reshape(T * B, -1), WxT, gates.reshape(T * B, -1), bias=bias)
            head += (inside,)
        else:  # scratch for the step's two products
            head += (_per_part((B, W_h.shape[0]), dt, parts),
                     _per_part((B, W_h.shape[0]), dt, parts))
        tail = (WhrT, "W_hr" in p) if kind == "lstm" else ()
        _loop(mod.forward_loop, (*head, WhT, *args, *_no_r(dt, B, H, r), *v[:-1], *tail,
                                 *ln), B, parts, key, T)
        recycle(WxT, WhT, *tail[:1])
        if kind == "lstm" and ln[-1] and train:  # the inputs, for x @ W_x.T made again
            v = (*v[:-1], (xc, *ln))
    final = (hs[-1].copy(),) if kind != "lstm" else (hs[-1].copy(), cs[(T - 1) % cells].copy())
    if not train:
        recycle(*arrays[1:], *(a for a in v[6:8] if kind == "lstm" and a is not cs
                               and a is not hs), *ln[:-2])
    return hs, Tape(kind, arrays, codes, r, v) if train else None, final


def _step(kind: str, mod: ModuleType, p: dict[str, np.ndarray], x: np.ndarray, h0: np.ndarray,
          s0: tuple, m: np.ndarray, has_mask: bool, codes: tuple[int, int], train: bool,
          zone: tuple | None, plain: bool) -> tuple[np.ndarray, Tape | None, tuple]:
    """``forward`` for one time step (streaming), with the least Python around the compiled
    step: a plain cell with or without a tape, a cell with variants (zoneout as its
    expectation, layer norm, peepholes, the projection, from ``p`` and ``zone``) without one;
    ``plain``: no zoneout and ``cell.plain``. One sequence of a plain cell without a tape:
    products and step in one compiled call (``one_step``, by ``_gemm.matvec``) while the
    weights stay in cache. Otherwise ``matmul`` (for one row, a matrix-vector product on the
    weight in place), then the step alone: the loop would first copy ``W_h.T``, which costs
    more than the step."""
    B, W_h, W_x, dt, (ca, cg) = x.shape[1], p["W_h"], p["W_x"], x.dtype, codes
    H, ln, proj = W_h.shape[1], "g_x" in p, "W_hr" in p
    zh, has_zh = _zone(zone, 0, dt, H)
    if plain and B == 1 and not train and W_h.nbytes + W_x.nbytes <= ONE_STEP_MAX_BYTES:
        b = p["b"] if "b" in p else _dummies(dt)[1]
        x_t, hs = x[0, 0], np.empty((1, 1, H), dt)
        if kind == "elman":
            mod.one_step(W_x, x_t, b, W_h, h0, hs, m, has_mask, ca)
            return hs, None, (hs[0].copy(),)
        if kind == "lstm":
            cs = np.empty((1, 1, H), dt)
            mod.one_step(W_x, x_t, b, W_h, h0, np.ascontiguousarray(s0[1], dt), hs, cs, m,
                         has_mask, ca, cg)
            return hs, None, (hs[0].copy(), cs[0])  # cs is no one else's
        mod.one_step(W_x, x_t, b, W_h, h0, p.get("b_hn", _dummies(dt)[0]), "b_hn" in p, hs, m,
                     has_mask, ca, cg)
        return hs, None, (hs[0].copy(),)
    xz = matmul(x[0], W_x.T, bias=None if ln else p.get("b"))  # B = 1: by rows of W
    hz = matmul(h0, W_h.T)
    if kind == "elman":  # the projection becomes the cell's h in place
        hs = np.empty((1, B, H), dt) if has_zh else xz[None]
        mod.fwd_step(0, 0, B, hz, h0, hs, m, has_mask, ca, xz[None], zh, has_zh)
        tape = Tape(kind, (), codes, None, (hs, zh, has_zh)) if train else None
        return hs, tape, (hs[0].copy(),)
    lna = _ln_args(kind, p, dt, 1, B, W_h.shape[0], 1, True)  # stand-ins without layer norm
    hs = np.empty((1, B, H), dt)
    if kind == "gru":
        gates, hzn = np.empty((1, *xz.shape), dt), np.empty((1, B, H), dt)
        mod.fwd_step(0, 0, B, xz, hz, h0, p.get("b_hn", _dummies(dt)[0]), "b_hn" in p, hs,
                     gates, hzn, m, has_mask, ca, cg, zh, has_zh, *lna)
        tape = Tape(kind, (h0, gates, hzn), codes, None, (zh, has_zh, lna)) if train else None
        return hs, tape, (hs[0].copy(),)
    Hc, c0 = W_h.shape[0] // 4, np.ascontiguousarray(s0[1], dt)
    if not ln:
        xz += hz  # the gates' z, activated in place
    gates, cs, tcs = xz[None], np.empty((1, B, Hc), dt), np.empty((1, B, Hc), dt)
    zc, has_zc = _zone(zone, 1, dt, Hc)
    cc = np.empty((1, B, Hc), dt) if has_zc else cs  # the cell's c (lstm.py)
    ms = np.empty((1, B, Hc), dt) if proj else hs  # m, before the projection
    v = (p.get("P", _dummies(dt)[1]), "P" in p, zh, has_zh, zc, has_zc, cc, ms, lna)
    mod.fwd_step(0, 0, B, h0, c0, hs, cs, tcs, gates, m, has_mask, ca, cg, *v[:2], cc, zh,
                 has_zh, zc, has_zc, ms, proj, (lna[0], hz[None], *lna[2:-1]), lna[-1])
    if proj:  # h = m @ W_hr.T, then the masked rows carried, the zoned-out ones mixed
        hs[0] = matmul(ms[0], p["W_hr"].T)
        mod.proj_finish(0, 0, B, h0, hs, m, has_mask, zh, has_zh)
    if not train:
        return hs, None, (hs[0].copy(), cs[0])  # cs is no one else's
    return hs, Tape(kind, (c0, cs, tcs, gates), codes, None, v), (hs[0].copy(), cs[0].copy())


def _sequence(kind: str, mod: ModuleType, p: dict[str, np.ndarray], x: np.ndarray,
              h0: np.ndarray, s0: tuple, m: np.ndarray, has_mask: bool,
              codes: tuple[int, int]) -> tuple[np.ndarray, None, tuple]:
    """``forward`` for one sequence of a plain cell without a tape: the same loop, to the bit,
    with less Python around it (one part, no buffers kept for reuse, the variants' stand-ins
    shared). ``predict`` of B=1, T=100, D=8, H=32, float32, the two ways alternated in one
    process (medians of 7 rounds): LSTM 1.11-1.26x faster over 7 processes (~10-25 µs of
    60-130), RNN 1.10-1.21x, GRU 1.13-1.15x, H=128 1.03-1.13x; T=1000, H=64, where the
    loop is the time, 0.95-1.10x (the noise). A compiled function doing the copies, the
    projection and the steps in one call was 1.2-1.6x faster, but compiled 3-9 s more per
    cell and dtype on first use."""
    T, W_h, dt, (ca, cg) = x.shape[0], p["W_h"], x.dtype, codes
    (GH, H), none1, none3 = W_h.shape, _dummies(dt)[1], _dummies(dt)[2]
    b = p["b"] if "b" in p else none1
    x = np.ascontiguousarray(x)
    WxT, WhT, hs = _operand(p["W_x"].T), _operand(W_h.T), np.empty((T, 1, H), dt)
    no_r = (_NO_R[dt], _NO_R[dt], False)
    if kind == "elman":
        matmul(x[:, 0], WxT, hs[:, 0], bias=p.get("b"))
        mod.forward_loop(WhT, np.empty((1, H), dt), h0, hs, m, has_mask, ca, *no_r, hs, none3,
                         False, 0, 1)
        return hs, None, (hs[-1].copy(),)
    if kind == "lstm":
        cs, gates = np.empty((2, 1, H), dt), np.empty((T, 1, GH), dt)
        matmul(x[:, 0], WxT, gates[:, 0], bias=p.get("b"))
        mod.forward_loop(x, WxT, b, False, WhT, h0, np.ascontiguousarray(s0[1], dt), hs, cs,
                         np.empty((1, 1, H), dt), gates, m, has_mask, ca, cg, *no_r, none1,
                         False, none3, False, none3, False, cs, hs, _NO_R[dt], False, none3,
                         none3, none3, none1, False, 0, 1)
        return hs, None, (hs[-1].copy(), cs[(T - 1) % 2])  # cs is no one else's
    mod.forward_loop(x, WxT, b, np.empty((1, GH), dt), np.empty((1, GH), dt), WhT, h0,
                     p.get("b_hn", _dummies(dt)[0]), "b_hn" in p, hs, np.empty((1, 1, GH), dt),
                     np.empty((1, 1, H), dt), m, has_mask, ca, cg, *no_r, none3, False, none3,
                     none3, none3, none1, False, 0, 1)
    return hs, None, (hs[-1].copy(),)


def backward(tape: Tape, p: dict[str, np.ndarray], hs: np.ndarray, dhs: np.ndarray | None,
             d_state: tuple, mask: np.ndarray | None, each: Any,
             grads: dict[str, np.ndarray] | None = None) -> tuple:
    """Backpropagate one direction through time from a :class:`Tape`: ``dhs (T, B, H)`` (or
    ``None``) is the gradient of the emitted states, ``d_state`` that of the final state.
    ``each(t0, dxz, dhz)`` gets ``∂L/∂z`` for the steps ``t0 : t0 + len(dxz)``, as the
    reference loop gives them for all steps (``dhz`` as blocks of columns), and must be done
    with them when it returns: the RNN's large ones come in chunks of steps, the last first
    (see ``chunk_steps``), and the next chunk writes over them. Returns ``d_s0``. A tape
    serves one backward: its arrays are then reused (the LSTM's and the GRU's gates become
    their ``dxz``). The gradients of the cell's own parameters (the peepholes' ``P``) are
    added into ``grads``."""
    if tape.arrays is None:
        raise RuntimeError("backward: this forward's tape was used by a backward already; run "
                           "the forward again")
    mod, (ca, cg), dt = _load()[tape.kind], tape.codes, hs.dtype
    W_h = _weights(p["W_h"])
    T, B, GH = hs.shape[0], hs.shape[1], p["W_h"].shape[0]
    m, has_mask = (_NO_MASK, False) if mask is None else (np.ascontiguousarray(mask), True)
    # dhs is read in place: usually a time-major view of the batch-first dY, whose copy would
    # be the largest array of the backward but for the tape
    dhs_a, has_seq = (_dummies(dt)[2], False) if dhs is None else (np.asarray(dhs, dt), True)
    parts, key = _parts(T, B, W_h, ("backward", tape.kind, len(p)))
    split = parts > 1  # the arrays the loop writes start at a cache line
    dh = _empty(hs.shape[1:], dt, split)  # carried from step to step, chunk to chunk
    dh[...] = d_state[0]
    d_s0, n = (dh,), GH // 3
    with held() if split else contextlib.nullcontext():  # split calls in a row
        rd = _no_r(dt, B, hs.shape[2], tape.r)
        if tape.kind == "elman":  # dxz is an array of its own: in chunks where large
            _elman_chunks(mod, W_h, GH, dh, tape.v, dhs_a, has_seq, m, has_mask, ca, parts,
                          each, rd, key)
        else:  # the gated cells write dxz over their gates, the step made in `rows`
            rows = _per_part((B, GH), dt, parts)
            ln = tape.v[-1]  # layer norm's arrays (_ln_args), its gradients summed in acc
            # acc: lnp's gradients, and the GRU's b_hn
            acc = _per_part((ln[-2].size + (GH // 3 if ln[-1] and tape.kind == "gru" else 0),),
                            dt, parts)
            for a in acc if isinstance(acc, _Own) else (acc,):
                a[...] = 0
            if tape.kind == "gru":  # and dhz's n part over h_n (gru.py)
                h0, dxz, dhzn = tape.arrays
                args = (dh, h0, hs, dxz, dhzn, dhs_a, has_seq, dhzn, m, has_mask, ca, cg, rows,
                        *rd, *tape.v[:2], _scratch(tape.v[1], B, hs.shape[2], dt, parts),
                        *ln[:-1], acc, ln[-1])
                dhz = [(0, dxz[..., : 2 * n]), (2 * n, dhzn)]
            else:
                c0, cs, tcs, dxz = tape.arrays
                dc = _empty(cs.shape[1:], dt, split)
                dc[...] = d_state[1]
                P, has_p, zh, has_zh, zc, has_zc, cc, ms, _ = tape.v
                H, proj = cs.shape[2], "W_hr" in p
                dhp = _take(hs.shape, dt, split) if proj else _dummies(dt)[2]
                # layer norm: the forward's projections (xk), or the inputs and W_x.T to make
                # each step's again, into dxz over the gates (into an array of its own when
                # dP reads dz)
                x_in, xk, hh, iv, lnp = ln[:-1] if ln[-1] else (*ln[:1], *ln[:-1])
                remake = ln[-1] and xk.shape[2] == 1
                WxT = _operand(p["W_x"].T) if remake else _NO_R[dt]
                xd = xk if ln[-1] and not remake else \
                    _take(dxz.shape, dt, split) if remake and has_p else dxz
                lnb = (x_in, WxT, remake, xd, hh, cc, iv, lnp)
                args = (dh, dc, c0, cs, tcs, dxz, dhs_a, has_seq, m, has_mask, ca, cg, rows,
                        *rd, P, has_p, zh, has_zh, zc, has_zc,
                        _scratch(has_zh, B, H, dt, parts), _scratch(has_zc, B, H, dt, parts),
                        np.ascontiguousarray(p["W_hr"]) if proj else _NO_R[dt], dhp,
                        _per_part((B, H), dt, parts) if proj else _NO_R[dt], proj,
                        *lnb, acc, ln[-1])
                dhz, d_s0 = [(0, dxz)], (dh, dc)
            _loop(mod.backward_loop, (W_h, *args), B, parts, key, T)
            if ln[-1]:  # the gradients of the projections before the norms
                _ln_grads(tape.kind, acc, grads, GH // (4 if tape.kind == "lstm" else 3))
                dxz_n, dhz = (ln[0] if tape.kind == "gru" else xd), [(0, ln[-4])]
            if tape.kind == "lstm" and has_p:
                mod.peephole_grad(dxz, c0, cs, cc, m, has_mask, grads["P"])
            if tape.kind == "lstm" and proj:  # dW_hr = Σ_t dhp[t].T @ m[t]
                matmul(dhp.reshape(-1, dhp.shape[2]).T, ms.reshape(-1, H), grads["W_hr"],
                       accumulate=True)
                recycle(dhp, ms)
            each(0, dxz_n if ln[-1] else dxz, dhz)
            recycle(*tape.arrays[1:], rows, *(tape.v[6:7] if tape.kind == "lstm" and has_zc
                                              else ()), *ln[-4:-3],  # not c0, h0, x: the caller's
                    *(ln[:1] if tape.kind == "gru" else (xd, WxT)))
    recycle(W_h)
    tape.arrays = None
    return d_s0


def _scratch(needed: bool, B: int, H: int, dt: np.dtype, parts: int) -> Any:
    """A ``(B, H)`` scratch array of a backward loop (zoneout's ``kh``, ``kc``), or a stand-in
    when not ``needed``."""
    return _per_part((B, H), dt, parts) if needed else _NO_R[dt]


_NO_R = {dt: np.zeros((1, 1), dt) for dt in _FLOATS}


def _elman_chunks(mod: ModuleType, W_h: np.ndarray, GH: int, dh: np.ndarray, v: tuple,
                  dhs: np.ndarray, has_seq: bool, m: np.ndarray, has_mask: bool, ca: int,
                  parts: int, each: Any, rd: tuple, key: tuple | None) -> None:
    """The RNN's backward loop over chunks of steps, the last first (see ``chunk_steps``),
    ``each`` taking each chunk's ``dxz`` before the next writes over it. The loop sees a
    chunk's steps as all its steps; ``dh`` is carried in place from chunk to chunk. ``v``:
    the cell's outputs ``hc`` and zoneout's ``(zh, has_zh)`` (elman.py)."""
    hs, zh, has_zh = v
    T, B = hs.shape[0], hs.shape[1]
    steps = chunk_steps(T, B * GH * hs.itemsize)
    chunk = _take((steps, B, GH), hs.dtype, parts > 1)
    for t1 in range(T, 0, -steps):
        t0 = max(0, t1 - steps)
        c, dxz = slice(t0, t1), chunk[: t1 - t0]
        _loop(mod.backward_loop, (W_h, dh, hs[c], dhs[c] if has_seq else dhs, has_seq, dxz,
                                  m[c] if has_mask else m, has_mask, ca, *rd,
                                  zh[c] if zh.shape[0] > 1 else zh, has_zh), B, parts, key,
              t1 - t0)
        each(t0, dxz, [(0, dxz)])
    recycle(chunk)


#: the RNN's backward ``∂L/∂z`` (``dxz``, an array of its own: the LSTM and the GRU write it
#: over their gates) of at least CHUNK_MIN_BYTES goes in chunks of a quarter of the steps, at
#: most CHUNK_MAX_BYTES each: the weight gradients and ``dX`` are taken from each chunk
#: before the next. Peak memory of a training step (docs/benchmarks.md): B=64, T=100, H=512
#: 32.5 -> 23.1 MB, in the same time. Smaller ones go whole: each chunk costs its own split
#: calls (~11 µs each, and caches): in chunks, the benchmark's small, medium and long
#: training steps took 4-20% longer.
CHUNK_MIN_BYTES, CHUNK_MAX_BYTES = 8 * 2**20, 64 * 2**20


def chunk_steps(T: int, step_bytes: int) -> int:
    """Steps per chunk of a backward whose ``dxz`` has ``step_bytes`` a step."""
    if T * step_bytes < CHUNK_MIN_BYTES:
        return T
    return max(1, min(-(-T // 4), CHUNK_MAX_BYTES // step_bytes))


#: products of at least this many FLOPs are split over the threads (on 2 cores, below it the
#: hand-off costs more than the second core gives)
PARALLEL_MIN_FLOPS = 4e6
#: multiply-adds of a whole recurrence (T·B·G·H·H) from which its time loop is split over the
#: threads, by batch rows, at least 4 rows each (measured on 2 cores, docs/benchmarks.md:
#: with the threads spinning between calls, from 2e6 gained 2-16% at B=8-16, H=32-64, over
#: 8e6 and 16e6; splitting every loop lost 10-33% at B=8, H=32)
SPLIT_MIN_MACS = 2_000_000
#: rows a part from which the LSTM loop makes each step's input projection itself, into a
#: one-step buffer without a backward: LSTM B=64, H=512 inference 42.8 -> 40.7 ms (the 52 MB
#: projection no longer goes through memory), B=16, H=64 ~5% faster; with one row a step's
#: product is slow (B=1: 17-20% slower than one product before the loop)
INSIDE_MIN_ROWS = 8


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None,
           accumulate: bool = False, bias: np.ndarray | None = None) -> np.ndarray:
    """``a @ b (+ bias)`` for 2-D float arrays of one dtype, into ``out`` (``out += a @ b``
    when ``accumulate``; ``bias`` only without it), on the micro-kernel of ``_gemm.py``, split
    by rows over the threads from ``PARALLEL_MIN_FLOPS``. Small products too: NumPy's
    OpenBLAS would wake its own threads, which spin for tens of milliseconds after each call
    on the core that a split time loop needs (measured: such loops 2-10x slower). NumPy
    computes it under the ``"numpy"`` backend or without numba. ``a`` may be any view (a
    transpose is read in place); ``b`` is copied if its rows are not contiguous."""
    dt = a.dtype
    compiled = _backend != "numpy" and dt in _FLOATS and b.dtype == dt and _load() is not None
    if a.shape[0] == 1 and out is None and not accumulate and b.strides[0] == b.itemsize:
        # one row (a streamed step) times a transposed weight: a matrix-vector product reads
        # the weight in place, in half the time of a matmul by the transpose; rnnkit's with
        # the bias in one call while the weight stays in cache (see ONE_STEP_MAX_BYTES; 64 ->
        # 1: 1.3 against 1.6 µs a call), in blocks of rows on the threads above; NumPy's
        # without the compiled kernels (a 1-D bias add: 0.25 µs, against 0.68 µs broadcast
        # over a row)
        W = b.T
        if compiled:
            out = np.empty((1, W.shape[0]), dt)
            bias = _dummies(dt)[1] if bias is None else np.ascontiguousarray(bias, dt)
            if b.nbytes <= ONE_STEP_MAX_BYTES:
                _gemm.matvec(W, a[0], bias, out[0])
            else:  # by blocks of rows on rnnkit's threads (not OpenBLAS's), or whole
                _split(_gemm.matvec, W.shape[0], min(usable_threads(), W.shape[0] // 64),
                       lambda k, i, j: (W[i:j], a[0], bias[i:j] if bias.size else bias,
                                        out[0, i:j]), align=16, key=("matvec", W.shape, dt.char))
            return out
        row = W.dot(a[0])
        if bias is not None:
            row += bias
        return row[None]
    if not compiled or (out is not None and (out.dtype != dt or not out.flags.c_contiguous)):
        if out is None:
            out = np.matmul(a, b)
        elif accumulate:
            out += a @ b
        else:
            np.matmul(a, b, out=out)
        if bias is not None and not accumulate:
            out += bias
        return out
    if out is None:
        out = np.empty((a.shape[0], b.shape[1]), dt)
    if 2.0 * a.shape[0] * a.shape[1] * b.shape[1] >= _blas.MIN_FLOPS and _use_blas(a, b, out,
                                                                                   bias):
        _by_blas(a, b, out, accumulate, bias)
    else:
        _product(a, b, out, accumulate, bias)
    return out


def _by_blas(a: np.ndarray, b: np.ndarray, out: np.ndarray, accumulate: bool,
             bias: np.ndarray | None) -> None:
    """:func:`matmul` by NumPy's BLAS, split by rows over rnnkit's threads as
    :func:`_product` is, the BLAS on one thread in each part (see ``_blas.one_thread``)."""
    with _blas.one_thread():
        _by_rows(_blas.rows, a, b, out, accumulate, bias)


def _by_rows(fn: Any, a: np.ndarray, b: np.ndarray, out: np.ndarray, accumulate: bool,
             bias: Any) -> None:
    """``fn(a, b, out, accumulate, bias)``, a product, by parts of its rows on the threads,
    or whole where that was faster (``_split``'s ``key``): with the loops run whole beside a
    busy second CPU, their products split were 1.14-1.36x slower than whole in a training
    step (B=16-32, H=64-128; docs/benchmarks.md, round 8)."""
    _split(fn, a.shape[0], min(usable_threads(), a.shape[0] // 16),
           lambda k, i, j: (a[i:j], b, out[i:j], accumulate, bias), align=_gemm.ROWS,
           key=("product", fn, a.shape, b.shape[1], a.dtype.char))


def _product(a: np.ndarray, b: np.ndarray, out: np.ndarray, accumulate: bool,
             bias: np.ndarray | None) -> None:
    """:func:`matmul` by the micro-kernel, split by rows over the threads when large."""
    dt = a.dtype
    copied = b.strides[1] != b.itemsize
    b = _operand(b) if copied else b
    bias = _dummies(dt)[1] if bias is None else np.ascontiguousarray(bias, dt)
    if 2.0 * a.shape[0] * a.shape[1] * b.shape[1] < PARALLEL_MIN_FLOPS:
        _gemm.matmul(a, b, out, accumulate, bias)
    else:
        _by_rows(_gemm.matmul, a, b, out, accumulate, bias)
    if copied:
        recycle(b)


def _use_blas(a: np.ndarray, b: np.ndarray, out: np.ndarray, bias: np.ndarray | None) -> bool:
    """Whether this large product goes to NumPy's BLAS: measured once per shape class on this
    host and kept (``_blas.py``; ``RNNKIT_BLAS=never|always`` decides instead)."""
    cls = _blas.key(a.dtype, a.shape[0], a.shape[1], b.shape[1], a.strides[1] != a.itemsize,
                    get_num_threads())
    return _blas.use_blas(cls, lambda c: _product(a, b, c, False, bias),
                          lambda c: _by_blas(a, b, c, False, bias), out)


def _operand(b: np.ndarray) -> np.ndarray:
    """A copy of ``b`` laid out for the micro-kernel: unit stride along rows, and the rows
    64 bytes longer than ``b``'s (a view of the first columns). Rows a multiple of 4 KiB apart
    map to the same few cache sets: the micro-kernel's walk down a column block of ``b``
    then misses the caches (LSTM H=512 step, 32 rows @ 512x2048: 31.4 ms for 100 steps,
    26.9 ms with the padded rows)."""
    K, N = b.shape
    out = _take((K, N + 64 // b.itemsize), b.dtype)[:, :N]
    if b.size < 2**14 or b.strides[1] == b.itemsize:
        # NumPy's copy: rows, or a transpose in L1 (from 2**14 float32 it is 1.7-2.4x slower
        # than the compiled copy: 512 x 32 8.7 against 5.4 µs, 512 x 128 45 against 19 µs)
        out[...] = b
    else:
        # large ones by rows on the threads (an LSTM's H=512 pair, W_h.T and W_x.T: 2.3 ms
        # with NumPy's copy, 0.27 ms)
        _split(_gemm.copy_into, K, min(usable_threads(), K // 64) if b.size >= 2**18 else 1,
               lambda k, i, j: (b[i:j], out[i:j]), key=("copy", b.shape, b.dtype.char))
    return out


def _weights(b: np.ndarray) -> np.ndarray:
    """A weight as a time loop's operand: in panels (``_gemm.pack``) when larger than
    ``_gemm.PANEL_MIN_BYTES``, else as :func:`_operand` lays it out."""
    if b.nbytes <= _gemm.PANEL_MIN_BYTES:
        return _operand(b)
    W = _gemm.panel_width(b.itemsize)
    out = _take((-(-b.shape[1] // W), b.shape[0], W), b.dtype)
    # by panels on the threads (H=1024's 16 MB W_h: 2.5-5 ms on one)
    _split(_gemm.pack, out.shape[0], min(usable_threads(), out.shape[0] // 8),
           lambda k, i, j: (b[:, i * W : j * W], out[i:j]), key=("pack", b.shape, b.dtype.char))
    return out


def _parts(T: int, B: int, W_h: np.ndarray, kind: tuple) -> tuple[int, tuple | None]:
    """How many parts of the batch a time loop of ``kind`` runs in (see ``SPLIT_MIN_MACS``),
    and the key under which :func:`_loop` times it (``None``: not timed): a loop that could be
    split runs whole where that was faster (``_parallel.split_pays``)."""
    n = max(1, min(usable_threads(), B // 4)) if T * B * W_h.size >= SPLIT_MIN_MACS else 1
    if n == 1:
        return 1, None
    key = (*kind, B, W_h.shape, W_h.dtype.char, n)
    return (n if split_pays(key) else 1), key


def _loop(fn: Any, args: tuple, B: int, parts: int, key: tuple | None = None,
          work: int = 1) -> None:
    """Run a compiled time loop over the batch rows: in one call, or in ``parts`` parts of the
    batch on the threads (see ``_parts``). Rows are independent sequences, so the parts never
    wait for each other: each runs its whole loop, reading the shared weights; an argument
    that is an ``_Own`` gives each part its own array. With a ``key`` from ``_parts``, the
    call's time for ``work`` steps is counted (``_parallel.ran``)."""
    start = time.perf_counter()
    if parts <= 1:  # no _Own in args then
        fn(*args, 0, B)
    else:
        _split(fn, B, parts,
               lambda k, b0, b1: (*(a[k] if isinstance(a, _Own) else a for a in args), b0, b1))
    if key is not None:
        ran(key, parts > 1, time.perf_counter() - start, work)


def _split(fn: Any, n: int, parts: int, args_of: Any, align: int = 1,
           key: tuple | None = None) -> None:
    """``fn(*args_of(k, i, j))`` for ``parts`` consecutive ranges ``i:j`` of ``0:n`` (part
    ``k``, each start a multiple of ``align``), side by side on the threads; in one call when
    ``parts <= 1``. With a ``key`` (a kind of call), a call that could be split runs whole
    where that was faster, timed as a time loop is (``_parallel.split_pays``)."""
    trial = key is not None and parts > 1
    if trial:
        key = (*key, parts)
        parts = parts if split_pays(key) else 1
        start = time.perf_counter()
    if parts <= 1:
        fn(*args_of(0, 0, n))
    else:
        cuts = [n * q // parts // align * align for q in range(parts)] + [n]
        run_parts(fn, [args_of(k, i, j) for k, (i, j) in enumerate(itertools.pairwise(cuts))])
    if trial:
        ran(key, parts > 1, time.perf_counter() - start, 1)


set_backend(os.environ.get("RNNKIT_BACKEND", "auto"))
