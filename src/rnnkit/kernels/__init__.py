"""The fast path: compiled time loops for the recurrent layer, with the NumPy loop as reference.

``layers/recurrent.py`` asks :func:`forward` to run one direction; it returns ``None`` when no
kernel applies (numba missing, the ``"numpy"`` backend forced, an activation other than
tanh/sigmoid/relu/identity, a dtype other than float32/float64) and the layer then runs its
reference NumPy loop. A forward that ran here returns a :class:`Tape`, and the layer hands it
back to :func:`backward`. Both compute exactly the cells' equations (see ``elman.py``,
``lstm.py``, ``gru.py``); only the rounding order of the sums may differ.

Two loops per cell, chosen by the batch size (``BLAS_MIN_BATCH``, ``..._BACKWARD``), and
the BLAS loop for every one-step forward (streaming: the fused loop would first copy
``W_h.T``, which costs more than the step):

- fused: the whole time loop in one compiled call with a hand-written product; best for
  one or a few sequences (long single sequences), where a BLAS call costs more than the
  product;
- blas: the whole time loop in one compiled call too, whose per-step product is NumPy's own
  OpenBLAS ``cblas_?gemm`` called from inside it (``_blas.py``; its threads as for
  ``np.matmul``). Where that library cannot be found, a Python loop over ``np.matmul(...,
  out=)`` and a compiled step.

Backend: :func:`set_backend` or the environment variable ``RNNKIT_BACKEND``, read at import:
``"auto"`` (default: numba when importable), ``"numpy"`` (always the reference loop),
``"numba"`` (require numba).
"""

from __future__ import annotations

import functools
import importlib
import os
from types import ModuleType
from typing import Any

import numpy as np

from ..cells import ElmanCell, GRUCell, LSTMCell

BACKENDS = ("auto", "numpy", "numba")
#: batch size from which the BLAS loop beats the fused one, forward and backward. Measured on
#: a quiet 2-core AVX-512 machine (docs/benchmarks.md), float32, T=100, every cell, H 32-128:
#: the crossover depends on B, not on the product's size (B=1 H=128: fused 2x faster; B=16
#: H=32, same multiply-adds: BLAS 3x faster in training). Forward: even at B=4, BLAS from B=8.
#: Backward: the fused ``matmul_add`` is the slow part, BLAS wins 2x from B=4.
BLAS_MIN_BATCH = 8
BLAS_MIN_BATCH_BACKWARD = 4
ACTIVATIONS = ("tanh", "sigmoid", "relu", "identity")
_KIND = {ElmanCell: "elman", LSTMCell: "lstm", GRUCell: "gru"}
_backend = "auto"  # then RNNKIT_BACKEND, at the end of this module
_modules: dict[str, ModuleType] | None = None


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


def numba_available() -> bool:
    """Whether numba imports (the ``fast`` extra); imports it on the first call."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _load() -> dict[str, ModuleType] | None:
    global _modules
    if _modules is None:  # tried once; {} when numba is missing
        _modules = ({k: importlib.import_module(f"{__name__}.{k}") for k in _KIND.values()}
                    if numba_available() else {})
    return _modules or None


class Tape:
    """What a compiled forward keeps for its backward: the kernel's name, its arrays and the
    loop it chose, plus the activation codes."""

    __slots__ = ("arrays", "blas", "codes", "kind")

    def __init__(self, kind: str, arrays: tuple, blas: bool, codes: tuple[int, int]) -> None:
        self.kind, self.arrays, self.blas, self.codes = kind, arrays, blas, codes


_NO_MASK = np.ones((1, 1), dtype=bool)
_DUMMY: dict[np.dtype, tuple[np.ndarray, np.ndarray]] = {}


def _dummies(dt: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    if dt not in _DUMMY:
        _DUMMY[dt] = (np.zeros(1, dt), np.zeros((1, 1, 1), dt))
    return _DUMMY[dt]


@functools.cache
def _gemm(dt: np.dtype) -> tuple[int, bool] | None:
    """``(address of cblas_sgemm or _dgemm, ilp64)`` of NumPy's OpenBLAS, or ``None``."""
    from ._blas import gemm_pointers

    ptrs = gemm_pointers()
    if ptrs is None:
        return None
    return (ptrs[0] if dt == np.float32 else ptrs[1]), ptrs[2]


@functools.cache
def _codes_of(names: tuple[str, str]) -> tuple[int, int] | None:
    if names[0] not in ACTIVATIONS or names[1] not in ACTIVATIONS:
        return None
    return ACTIVATIONS.index(names[0]), ACTIVATIONS.index(names[1])


def _codes(cell: Any) -> tuple[int, int] | None:
    return _codes_of((cell.act.name, getattr(cell, "gate", cell.act).name))


def forward(cell: Any, p: dict[str, np.ndarray], xz: np.ndarray, s0: tuple,
            mask: np.ndarray | None) -> tuple[np.ndarray, Tape, tuple] | None:
    """Run one direction: ``xz (T, B, G*H)`` (input projection and bias added), initial state
    ``s0`` and ``mask (T, B)`` → ``(hs (T, B, H), tape, final state)``, or ``None`` when the
    reference NumPy loop must run."""
    if _backend == "numpy":
        return None
    kind, dt = _KIND.get(type(cell)), xz.dtype
    if kind is None or dt not in (np.float32, np.float64):
        return None
    codes = _codes(cell)
    mods = _load()
    W_h = p["W_h"]
    if mods is None or codes is None or W_h.dtype != dt or p.get("b_hn", W_h).dtype != dt:
        return None
    T, B, GH = xz.shape
    H = W_h.shape[1]
    # one step (streaming): the BLAS call takes W_h as it is, the fused loop would first copy
    # its transpose, which costs more than the step itself
    blas = B >= BLAS_MIN_BATCH or T == 1
    m, has_mask = (_NO_MASK, False) if mask is None else (np.ascontiguousarray(mask), True)
    mod, (ca, cg) = mods[kind], codes
    h0 = np.ascontiguousarray(s0[0], dt)
    hs = np.empty((T, B, H), dt)
    if kind == "elman":
        args, arrays = (xz, h0, hs, m, has_mask, ca), ()
    elif kind == "lstm":
        c0 = np.ascontiguousarray(s0[1], dt)
        cs, tcs, gates = np.empty_like(hs), np.empty_like(hs), np.empty_like(xz)
        args, arrays = (xz, h0, c0, hs, cs, tcs, gates, m, has_mask, ca, cg), (c0, cs, tcs,
                                                                               gates)
    else:
        b_hn = p.get("b_hn", _dummies(dt)[0])
        gates, hzn = np.empty_like(xz), np.empty_like(hs)
        args = (xz, h0, b_hn, "b_hn" in p, hs, gates, hzn, m, has_mask, ca, cg)
        arrays = (h0, gates, hzn)
    gemm = _gemm(dt) if blas else None
    if gemm is not None:
        mod.forward_blas(*gemm, args[0], np.ascontiguousarray(W_h), *args[1:])
    elif blas:  # no cblas found: the product by np.matmul, in a Python loop
        hz = np.empty((B, GH), dt)
        for t in range(T):
            np.matmul(h0 if t == 0 else hs[t - 1], W_h.T, out=hz)
            mod.fwd_step(t, hz, *args)
    else:
        mod.forward_fused(args[0], np.ascontiguousarray(W_h.T), *args[1:])
    final = (hs[-1].copy(),) if kind != "lstm" else (hs[-1].copy(), arrays[1][-1].copy())
    return hs, Tape(kind, arrays, blas, codes), final


def backward(tape: Tape, p: dict[str, np.ndarray], hs: np.ndarray, dhs: np.ndarray | None,
             d_state: tuple, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Backpropagate one direction through time from a :class:`Tape`: ``dhs (T, B, H)`` (or
    ``None``) is the gradient of the emitted states, ``d_state`` that of the final state.
    Returns ``(dxz, dhz, d_s0)`` as the reference loop does (``dhz is dxz`` but for the GRU)."""
    mod, (ca, cg), dt = _load()[tape.kind], tape.codes, hs.dtype
    W_h = np.ascontiguousarray(p["W_h"])
    T, B, GH = hs.shape[0], hs.shape[1], W_h.shape[0]
    m, has_mask = (_NO_MASK, False) if mask is None else (np.ascontiguousarray(mask), True)
    dhs_a, has_seq = (_dummies(dt)[1], False) if dhs is None else (
        np.ascontiguousarray(dhs, dt), True)
    dh = np.array(d_state[0], dt, order="C")  # updated in place, step by step
    dxz = np.empty((T, B, GH), dt)
    dhz, d_s0 = dxz, (dh,)
    if tape.kind == "elman":
        args = (dh, hs, dhs_a, has_seq, dxz, m, has_mask, ca)
    elif tape.kind == "lstm":
        c0, cs, tcs, gates = tape.arrays
        dc = np.array(d_state[1], dt, order="C")
        args, d_s0 = (dh, dc, c0, cs, tcs, gates, dhs_a, has_seq, dxz, m, has_mask, ca, cg), (
            dh, dc)
    else:
        h0, gates, hzn = tape.arrays
        dhz = np.empty_like(dxz)
        args = (dh, h0, hs, gates, hzn, dhs_a, has_seq, dxz, dhz, m, has_mask, ca, cg)
    blas = B >= BLAS_MIN_BATCH_BACKWARD
    gemm = _gemm(dt) if blas else None
    if gemm is not None:
        mod.backward_blas(*gemm, W_h, *args)
    elif blas:
        tmp = np.empty_like(dh)
        for t in range(T - 1, -1, -1):
            mod.bwd_step(t, *args)
            np.matmul(dhz[t], W_h, out=tmp)
            dh += tmp
    else:
        mod.backward_fused(W_h, *args)
    return dxz, dhz, d_s0


set_backend(os.environ.get("RNNKIT_BACKEND", "auto"))
