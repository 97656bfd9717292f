"""Memory per rank when K ranks train from one memory-mapped array (docs/distributed.md).

    python benchmarks/distributed_memory.py make /tmp/big 1.2     # write a 1.2 GB X.npy, y.npy
    python benchmarks/distributed_memory.py train /tmp/big          # K=1
    mpiexec -n 2 python benchmarks/distributed_memory.py train /tmp/big

Each rank samples its RssAnon (memory of its own, not file cache) after every step and
prints the largest; training stops after STEPS steps (the same step on every rank).
"""

import os
import sys

import numpy as np

import rnnkit as rk
from rnnkit.distributed import world

T, D, STEPS, BATCH = 50, 32, 30, 1024


def rss_anon_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Sample(rk.Callback):
    def __init__(self):
        self.peak = 0.0

    def on_batch_end(self, trainer, batch, logs):
        self.peak = max(self.peak, rss_anon_mb())
        if batch + 1 >= STEPS:
            trainer.stop = f"measured {STEPS} steps"


def make(folder: str, gb: float) -> None:
    n = int(gb * 2**30 / (T * D * 4))
    os.makedirs(folder, exist_ok=True)
    X = np.lib.format.open_memmap(os.path.join(folder, "X.npy"), "w+", np.float32, (n, T, D))
    rng = np.random.default_rng(0)
    for s in range(0, n, 8192):
        X[s : s + 8192] = rng.standard_normal((min(8192, n - s), T, D), np.float32)
    X.flush()
    np.save(os.path.join(folder, "y.npy"), np.asarray(X[:, -1, :1]))
    print(f"X.npy: {n} x {T} x {D} float32, {X.nbytes / 2**30:.2f} GiB")


def train(folder: str) -> None:
    w = world()
    X = np.load(os.path.join(folder, "X.npy"), mmap_mode="r")
    y = np.load(os.path.join(folder, "y.npy"), mmap_mode="r")
    before = rss_anon_mb()
    sample = Sample()
    model = rk.Sequential([rk.GRU(32), rk.Dense(1)])
    model.fit(X, y, epochs=1, batch_size=BATCH, callbacks=[sample])
    print(f"K={w.size} rank {w.rank}: RssAnon {before:.0f} MB before fit, peak {sample.peak:.0f}"
          f" MB during {STEPS} steps of a global batch of {BATCH} ({BATCH // w.size} rows "
          f"per rank, {BATCH // w.size * T * D * 4 / 2**20:.1f} MB of X); the array is "
          f"{X.nbytes / 2**20:.0f} MB", flush=True)


if __name__ == "__main__":
    make(sys.argv[2], float(sys.argv[3])) if sys.argv[1] == "make" else train(sys.argv[2])
