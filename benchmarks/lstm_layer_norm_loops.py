"""Where the layer-normalised LSTM's training step spends its time against the plain one's: the
whole step, ``model.forward``, ``model.backward`` and the compiled forward and backward loops
alone (``kernels._loop`` timed), float32, both models in one process, calls alternating,
medians. The time is the CPU time of the calling thread (``time.thread_time``): on a shared
machine it moves far less with the load than the wall clock does. NumPy's BLAS gets as many
threads as the kernels. With one thread everything runs in the calling thread; with more, the
step and the loops count the caller's part only. Also printed: the bytes of the tape the
forward loop writes per step (every array of the tape of shape ``(T, B, ...)`` but the inputs),
plain and layer norm.

    python benchmarks/lstm_layer_norm_loops.py [--sizes small,medium] [--threads 1,2] [--reps 20]
"""

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

import rnnkit as rk
from rnnkit import kernels
from rnnkit.bench import SIZES

ap = argparse.ArgumentParser()
ap.add_argument("--sizes", default="small,medium")
ap.add_argument("--threads", default="1")
ap.add_argument("--reps", type=int, default=20)
args = ap.parse_args()
clock, spent = time.thread_time, {}
loop = kernels._loop


def timed_loop(fn, loop_args, B, parts):
    start = clock()
    loop(fn, loop_args, B, parts)
    spent[fn.py_func.__name__] = spent.get(fn.py_func.__name__, 0.0) + clock() - start


kernels._loop = timed_loop


def tape_bytes(model, size):
    """Bytes a step of the forward loop writes to the tape (arrays of shape (T, B, n), n not
    D: the inputs are not written)."""
    B, T, D, _ = size
    tape, seen = model._tape[0][0][0][0][3], {}

    def walk(v):
        if isinstance(v, np.ndarray):
            if v.ndim == 3 and v.shape[:2] == (T, B) and v.shape[2] != D:
                seen[id(v)] = v.nbytes
        elif isinstance(v, tuple):
            for a in v:
                walk(a)
    walk((tape.arrays, tape.v))
    return sum(seen.values()) / T


def case(options, size):
    B, T, D, H = size
    model = rk.Sequential([rk.LSTM(H, return_sequences=True, **options)], seed=0,
                          dtype="float32").build(D)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((B, T, D)).astype("float32")
    R = rng.standard_normal((B, T, H)).astype("float32")

    def step():
        spent.clear()
        model.zero_grad()
        t0 = clock()
        model.forward(X)
        t1 = clock()
        model.backward(R)
        t2 = clock()
        return {"step": t2 - t0, "forward": t1 - t0, "forward_loop": spent["forward_loop"],
                "backward": t2 - t1, "backward_loop": spent["backward_loop"]}
    model.forward(X)
    step.tape = tape_bytes(model, size)
    return step


for threads in (int(t) for t in args.threads.split(",")):
    kernels.set_num_threads(threads)
    blas = threadpool_limits(limits=threads, user_api="blas")
    for name in args.sizes.split(","):
        steps = {"plain": case({}, SIZES[name]), "ln": case({"layer_norm": True}, SIZES[name])}
        for step in steps.values():
            for _ in range(3):
                step()
        times = {k: [] for k in steps}
        for _ in range(args.reps):
            for k, step in steps.items():
                times[k].append(step())
        med = {k: {part: float(np.median([t[part] for t in v])) * 1e3 for part in v[0]}
               for k, v in times.items()}
        print(f"{threads} thread(s), {name}: " + ", ".join(
            f"{part} {med['plain'][part]:.3f} -> {med['ln'][part]:.3f} ms "
            f"({med['ln'][part] / med['plain'][part]:.2f}x)" for part in med["plain"]), flush=True)
        # each rep's layer-norm step over the plain step just before it: moves less with a
        # load that changes during the run; the fastest calls, less with bursts of load
        paired = [a["step"] / p["step"] for p, a in zip(times["plain"], times["ln"])]
        best = min(t["step"] for t in times["ln"]) / min(t["step"] for t in times["plain"])
        print(f"  step: median of the reps' ratios {np.median(paired):.3f} (quartiles "
              f"{np.quantile(paired, 0.25):.3f}-{np.quantile(paired, 0.75):.3f}), "
              f"fastest over fastest {best:.3f}", flush=True)
        print("  tape the forward loop writes per step: " + ", ".join(
            f"{k} {s.tape / 1024:.1f} KiB" for k, s in steps.items()), flush=True)
    blas.restore_original_limits()
