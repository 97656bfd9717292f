"""A two-party step barrier for a time loop split over two threads.

Each thread owns a slice of the hidden units: it computes their gates and states, and the next
step's product needs every unit of the state. So after each step a thread publishes how far it
got (``sync[party] = step + 1``, an atomic store with release order) and waits until the other
has got as far (atomic loads with acquire order, a ``pause`` between polls on x86). Writes made
before the store are visible to the other thread after its load: the C++/LLVM memory model's
release-acquire pairing, the same guarantee a mutex gives, without a system call per step.

``sync[2] != 0`` means abort: the Python side sets it when the other thread failed to start,
so that a waiting thread never waits forever.
"""

from __future__ import annotations

import platform
import sys

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
#: polls with a ``pause`` before each further poll gives the CPU away (``sched_yield``): if
#: both threads share one CPU (before the scheduler spreads them, or with other work on the
#: machine), pure spinning would hold the CPU the other thread needs for a whole time slice
SPINS = 2000
#: the loops split only where the C library's ``sched_yield`` exists (POSIX)
SPLIT_SUPPORTED = sys.platform != "win32"


def _slot(context, builder, arrty, arr, index):
    data = context.make_array(arrty)(context, builder, arr).data
    return builder.gep(data, [index])


@intrinsic
def _store_release(typingctx, sync, index, value):
    sig = types.void(sync, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        builder.store_atomic(args[2], _slot(context, builder, signature.args[0], *args[:2]),
                             "release", 8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _load_acquire(typingctx, sync, index):
    sig = types.int64(sync, types.int64)

    def codegen(context, builder, signature, args):
        return builder.load_atomic(_slot(context, builder, signature.args[0], *args),
                                   "acquire", 8)

    return sig, codegen


def _call_without_arguments(symbol: str, returns: ir.Type, enabled: bool):
    """An intrinsic that calls the external function ``symbol()`` (nothing where not
    ``enabled``) and ignores what it returns."""

    @intrinsic
    def call(typingctx):
        def codegen(context, builder, signature, args):
            if enabled:
                fn = cgutils.get_or_insert_function(builder.module,
                                                    ir.FunctionType(returns, []), symbol)
                builder.call(fn, [])
            return context.get_dummy_value()

        return types.void(), codegen

    return call


_pause = _call_without_arguments("llvm.x86.sse2.pause", ir.VoidType(), _X86)
_yield_cpu = _call_without_arguments("sched_yield", ir.IntType(32), SPLIT_SUPPORTED)


@numba.njit(cache=True, nogil=True, inline="always")
def barrier(sync, party, step):
    """Publish that ``party`` (0 or 1) finished ``step``, then wait for the other party;
    returns ``False`` on abort. A single party (``sync`` of length 1) returns at once."""
    if sync.shape[0] < 3:
        return True
    _store_release(sync, party, step + 1)
    polls = 0
    while _load_acquire(sync, 1 - party) <= step:
        if _load_acquire(sync, 2) != 0:
            return False
        polls += 1
        if polls < SPINS:
            _pause()
        else:
            _yield_cpu()
    return True
