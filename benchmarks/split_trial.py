"""The split calls' trial (``rnnkit.kernels._parallel.split_pays``: time loops and products)
against always splitting and never splitting, in one process on two threads (docs/benchmarks.md,
round 8).

    python benchmarks/split_trial.py                     # quiet
    python benchmarks/split_trial.py --busy-second-cpu   # a busy process kept on CPU 1

Rounds of four ways in a random order, each a warm-up call and ``--calls`` (8) timed calls:
``split`` (every loop and product large enough split, as before the trial), ``whole`` (nothing
split: one thread), ``trial`` (the trial decides), ``runq`` (split, with the run queue read as
the trial's runs read it: the trial's own cost is trial/runq). Medians over all rounds, ratios
against ``split``. With ``--busy-second-cpu`` a process spinning on CPU 1 stands for what the
run queue does not show (a virtual CPU shared with another guest, a busy hyperthread sibling,
an efficiency core): the trial's run-queue look is then told that no other program runs, so
that only the trial can see the second CPU is slow. Short blocks mix the ways' effects on each
other (a split call leaves the pool's thread awake and the second CPU's caches warm for the
next way's calls); ``--calls 100 --rounds 3`` is closer to a training loop's steady state.
``--cases lstm:small:train,...`` picks cases. Linux, 2 CPUs or more.
"""

import argparse
import os
import subprocess
import sys
import time

import numpy as np

import rnnkit as rk
from rnnkit import kernels
from rnnkit.bench import SIZES
from rnnkit.kernels import _parallel

CASES = [("rnn", "small", "infer"), ("rnn", "small", "train"), ("lstm", "small", "infer"),
         ("lstm", "small", "train"), ("gru", "small", "infer"), ("gru", "small", "train"),
         ("gru", "medium", "infer"), ("lstm", "medium", "infer"), ("lstm", "medium", "train"),
         ("lstm", "large", "infer")]


def case(cell: str, size: str, mode: str):
    B, T, D, H = SIZES[size]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((B, T, D)).astype("float32")
    R = rng.standard_normal((B, T, H)).astype("float32")
    layer = {"rnn": rk.RNN, "lstm": rk.LSTM, "gru": rk.GRU}[cell](H, return_sequences=True)
    model = rk.Sequential([layer], seed=0, dtype="float32")
    model.build(D)

    def call():
        if mode == "infer":
            model.predict(X)
        else:
            model.zero_grad()
            model.forward(X)
            model.backward(R)
    return call


def compare(call, rounds: int, calls: int = 8) -> dict[str, float]:
    usable, pays, ran = kernels.usable_threads, kernels.split_pays, kernels.ran
    ways = {"split": (False, usable, pays), "whole": (False, lambda: 1, pays),
            "trial": (True, usable, pays), "runq": (True, usable, None)}
    times: dict[str, list[float]] = {w: [] for w in ways}
    rng = np.random.default_rng(0)
    for _ in range(5):
        call()
    try:
        for _ in range(rounds):
            for way in rng.permutation(list(ways)):
                adapt, threads, fn = ways[way]
                _parallel.ADAPT, kernels.usable_threads = adapt, threads
                kernels.split_pays = fn or (lambda key: True)
                kernels.ran = ran if fn else (lambda *a: None)
                for t in _parallel._trials.values():  # a pair only within the trial's calls
                    t.last = (-1, 0.0)
                call()
                for _ in range(calls):
                    start = time.perf_counter()
                    call()
                    times[way].append(time.perf_counter() - start)
    finally:
        _parallel.ADAPT, kernels.usable_threads = True, usable
        kernels.split_pays, kernels.ran = pays, ran
    return {w: float(np.median(v)) for w, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--busy-second-cpu", action="store_true")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--calls", type=int, default=8)
    ap.add_argument("--cases", default="", help="cell:size:mode,... (default: all)")
    args = ap.parse_args()
    cases = [tuple(c.split(":")) for c in args.cases.split(",")] if args.cases else CASES
    for c in cases:
        if len(c) != 3 or c[0] not in ("rnn", "lstm", "gru") or c[1] not in SIZES \
                or c[2] not in ("infer", "train"):
            ap.error(f"--cases: expected cell:size:mode (cell rnn|lstm|gru, size one of "
                     f"{', '.join(SIZES)}, mode infer|train), got {':'.join(c)!r}")
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("split_trial: needs 2 CPUs or more")
    kernels.set_num_threads(2)
    busy = None
    if args.busy_second_cpu:
        busy = subprocess.Popen(["taskset", "-c", "1", sys.executable, "-c", "while 1: pass"])
        _parallel._others = lambda: 0
    try:
        print(f"two threads, {'a busy process on CPU 1' if busy else 'quiet'}, "
              f"{args.rounds} rounds of {args.calls} calls each way")
        print("| cell | size | mode | split ms | whole/split | trial/split | trial/runq |")
        print("|---|---|---|---|---|---|---|")
        for cell, size, mode in cases:
            m = compare(case(cell, size, mode), args.rounds, args.calls)
            print(f"| {cell} | {size} | {mode} | {m['split'] * 1e3:.3f} | "
                  f"{m['whole'] / m['split']:.2f} | {m['trial'] / m['split']:.2f} | "
                  f"{m['trial'] / m['runq']:.2f} |", flush=True)
    finally:
        if busy is not None:
            busy.kill()


if __name__ == "__main__":
    main()
