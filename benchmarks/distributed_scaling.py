"""Measured data-parallel step times and Allreduce costs, and the ring model's projection
(docs/scaling.md). Run at K=1, 2, 3:

    python benchmarks/distributed_scaling.py steps
    mpiexec -n 2 python benchmarks/distributed_scaling.py steps
    mpiexec -n 2 python benchmarks/distributed_scaling.py allreduce
    python benchmarks/distributed_scaling.py project

``steps``: per training step of the bench sizes (an LSTM, global batch B, T=100, rnnkit's
bench shapes), the time in compute and in the step's one Allreduce (median of the steps after
the first). ``allreduce``: the in-place Allreduce of 10 KB to 10 MB, median time.
``project``: efficiency = compute / (compute + ring Allreduce) for K = 8..256 ranks on 10 and
100 Gb/s networks, and the batch per rank that keeps it at 90%.
"""

import sys
import time

import numpy as np

import rnnkit as rk
from rnnkit.distributed import MPIWorld, World, world

# name: (B global, T, D, H) as rnnkit.bench.SIZES
SIZES = {"small": (16, 100, 16, 64), "medium": (32, 100, 32, 128), "large": (64, 100, 128, 512)}
STEPS = 6
# the networks of the projection: latency per message (s), bandwidth (bytes/s)
NETWORKS = {"10 Gb/s Ethernet (TCP)": (25e-6, 10e9 / 8), "100 Gb/s InfiniBand": (2e-6, 100e9 / 8)}
KS = (8, 16, 32, 64, 128, 256)


class Timed(World):
    """The world of this job, with the time spent in Allreduce recorded per call."""

    def __init__(self, inner: World) -> None:
        self.inner, self.rank, self.size, self.calls = inner, inner.rank, inner.size, []

    def allreduce(self, buf):
        t = time.perf_counter()
        self.inner.allreduce(buf)
        if buf.size > 1:  # a step's, not the end of an epoch's stop flag
            self.calls.append(time.perf_counter() - t)
        return buf

    def bcast(self, buf):
        return self.inner.bcast(buf)

    def gather(self, arr):
        return self.inner.gather(arr)


class Clock(rk.Callback):
    def __init__(self):
        self.ends = []

    def on_batch_end(self, trainer, batch, logs):
        self.ends.append(time.perf_counter())


def steps() -> None:
    w = world()
    for name, (B, T, D, H) in SIZES.items():
        rng = np.random.default_rng(0)
        X = rng.standard_normal((B * STEPS, T, D)).astype(np.float32)
        y = rng.standard_normal((B * STEPS, 1)).astype(np.float32)
        model = rk.Sequential([rk.LSTM(H), rk.Dense(1)])
        timed, clock = Timed(w) if w.size > 1 else None, Clock()
        model.fit(X, y, epochs=2, batch_size=B, shuffle=False, callbacks=[clock],
                  distributed=timed or "off")
        times = np.diff(clock.ends)[1:]
        calls = np.array(timed.calls[2:] if timed else [0.0] * len(times))
        step, comm = float(np.median(times)), float(np.median(calls))
        best = float(np.min(times - calls))
        n = sum(v.size for v in model.parameters().values())
        if w.rank == 0:
            print(f"{name} B={B} T={T} D={D} H={H}: K={w.size} step {step * 1e3:.2f} ms = "
                  f"compute {(step - comm) * 1e3:.2f} ms + Allreduce {comm * 1e3:.3f} ms "
                  f"of {n * 4 / 1e3:.0f} KB (median; best compute {best * 1e3:.2f} ms)",
                  flush=True)


def allreduce() -> None:
    w = world("on")
    assert isinstance(w, MPIWorld)
    for kb in (10, 100, 1000, 10000):
        buf = np.ones(kb * 1000 // 4, np.float32)
        times = []
        for _ in range(30 if kb < 10000 else 10):
            w.comm.Barrier()
            t = time.perf_counter()
            w.allreduce(buf)
            times.append(time.perf_counter() - t)
        med, best = float(np.median(times)), float(np.min(times))
        if w.rank == 0:
            print(f"K={w.size} Allreduce {kb} KB: median {med * 1e6:.0f} us, best "
                  f"{best * 1e6:.0f} us ({kb * 1e3 / best / 1e9:.2f} GB/s)", flush=True)


def ring(k: int, nbytes: float, alpha: float, beta: float) -> float:
    """Ring Allreduce: a reduce-scatter and an allgather, 2(K-1) messages of n/K bytes."""
    return 2 * (k - 1) * (alpha + nbytes / k / beta)


def project(compute_ms: dict[str, float]) -> None:
    """``compute_ms``: per size, the best compute ms of a step of the bench batch at K=1."""
    shapes = {name: 4 * H * (D + H + 1) + H + 1 for name, (_, _, D, H) in SIZES.items()}
    compute_ms = {name: (ms, shapes[name]) for name, ms in compute_ms.items()}
    for net, (alpha, beta) in NETWORKS.items():
        print(f"\n{net}: efficiency at K ranks, each with the bench batch B "
              f"(weak scaling), and (in brackets) the batch per rank for 90%")
        for name, (ms, n) in compute_ms.items():
            B = SIZES[name][0]
            per_row = ms / 1e3 / B
            cells = []
            for k in KS:
                t = ring(k, 4 * n, alpha, beta)
                cells.append(f"K={k}: {per_row * B / (per_row * B + t):.0%} "
                             f"({9 * t / per_row:.0f})")
            print(f"  {name}: " + ", ".join(cells))


if __name__ == "__main__":
    if sys.argv[1] == "project":  # project small=MS medium=MS large=MS
        project({a.split("=")[0]: float(a.split("=")[1]) for a in sys.argv[2:]})
    else:
        {"steps": steps, "allreduce": allreduce}[sys.argv[1]]()
