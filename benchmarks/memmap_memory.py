"""Peak memory of training on (or predicting from) memory-mapped .npy files, at several sizes.

    python benchmarks/memmap_memory.py --sizes 20000 200000 --steps 20 --features 16
    python benchmarks/memmap_memory.py --predict --sizes 800000      # a 1 GB X
    python benchmarks/memmap_memory.py --predict --whole --sizes 800000  # predict not in blocks

With ``--predict``, the peak RssAnon is sampled every 5 ms during ``model.predict(X)``, and
reported beside RssAnon before the call and the result's own size.

Writes X (N, T, D) float32 and y (N,) to a temp folder, opens them with
``np.load(path, mmap_mode="r")``, trains one epoch, and reports the peak of NumPy/Python
allocations (tracemalloc) and the process's anonymous resident memory (RssAnon: excludes the
file pages the OS maps in and can drop at any time).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np

import rnnkit as rk


def rss_anon_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_files(folder: Path, n: int, steps: int, features: int) -> tuple[Path, Path]:
    X = np.lib.format.open_memmap(folder / "X.npy", mode="w+", dtype=np.float32,
                                  shape=(n, steps, features))
    rng = np.random.default_rng(0)
    for start in range(0, n, 4096):  # written block by block: never all in memory
        stop = min(start + 4096, n)
        X[start:stop] = rng.standard_normal((stop - start, steps, features))
    X.flush()
    y = (np.asarray(X[:, :3, 0]).sum(axis=1) > 0).astype(np.int64)
    np.save(folder / "y.npy", y)
    del X
    return folder / "X.npy", folder / "y.npy"


def measure(n: int, steps: int, features: int, batch_size: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        xp, yp = make_files(Path(tmp), n, steps, features)
        X, y = np.load(xp, mmap_mode="r"), np.load(yp, mmap_mode="r")
        model = rk.Sequential([rk.GRU(32), rk.Dense(2)], seed=0)
        # warm-up: first-call costs (lazy imports, compiled kernels) are not the data's
        model.fit(X[:batch_size], y[:batch_size], loss="cross_entropy", epochs=1,
                  batch_size=batch_size)
        tracemalloc.start()
        start = time.perf_counter()
        model.fit(X, y, loss="cross_entropy", epochs=1, batch_size=batch_size)
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return {"n": n, "dataset_mb": xp.stat().st_size / 2**20, "peak_traced_mb": peak / 2**20,
                "rss_anon_mb": rss_anon_mb(), "seconds": seconds}


def measure_predict(n: int, steps: int, features: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        xp, _ = make_files(Path(tmp), n, steps, features)
        X = np.load(xp, mmap_mode="r")
        model = rk.Sequential([rk.GRU(32), rk.Dense(2)], seed=0)
        model.predict(X[:64])  # warm-up
        before, peak, done = rss_anon_mb(), [0.0], threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], rss_anon_mb())
                done.wait(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        start = time.perf_counter()
        out = model.predict(X)
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
        return {"n": n, "dataset_mb": xp.stat().st_size / 2**20, "before_mb": before,
                "peak_mb": peak[0], "result_mb": out.nbytes / 2**20, "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--features", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--predict", action="store_true", help="measure predict, not fit")
    ap.add_argument("--whole", action="store_true", help="predict without blocks (as before)")
    args = ap.parse_args()
    if args.predict:
        if args.whole:
            rk.model.PREDICT_BLOCK_BYTES = 1 << 62
        print("| samples | dataset MB | RssAnon before MB | peak RssAnon MB | result MB | s |")
        print("|---:|---:|---:|---:|---:|---:|")
        for n in args.sizes:
            r = measure_predict(n, args.steps, args.features)
            print(f"| {r['n']} | {r['dataset_mb']:.0f} | {r['before_mb']:.0f} | "
                  f"{r['peak_mb']:.0f} | {r['result_mb']:.1f} | {r['seconds']:.1f} |")
        return
    print("| samples | dataset MB | peak traced MB | RssAnon MB | seconds |")
    print("|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        r = measure(n, args.steps, args.features, args.batch_size)
        print(f"| {r['n']} | {r['dataset_mb']:.0f} | {r['peak_traced_mb']:.2f} | "
              f"{r['rss_anon_mb']:.0f} | {r['seconds']:.1f} |")


if __name__ == "__main__":
    main()
