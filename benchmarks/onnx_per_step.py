"""Where ONNX Runtime keeps up with rnnkit: B=1 LSTM/GRU, T=1000, H=64, one step at a time.
Each case with the default activations (tanh/sigmoid) and with relu for both, to see how much
of a step the activations take on each side: ``predict`` against ONNX Runtime on the exported
model, alternating blocks of 21 runs, medians, ``--threads`` on both sides (default 2).

    python benchmarks/onnx_per_step.py [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import rnnkit as rk
from rnnkit.interop.onnx_bench import session
from rnnkit.kernels import set_num_threads


def median_ms(f, *args, reps: int = 21) -> float:
    f(*args)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f(*args)
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    set_num_threads(args.threads)
    X = np.random.default_rng(0).standard_normal((1, 1000, 1)).astype("float32")
    for cell in ("LSTM", "GRU"):
        for act, gate in (("tanh", "sigmoid"), ("relu", "relu")):
            model = rk.Sequential([getattr(rk, cell)(64, activation=act, gate_activation=gate,
                                                     return_sequences=True)], seed=0)
            model.build(1)
            s = session(model.to_onnx(), args.threads)
            rows = [(median_ms(model.predict, X), median_ms(s.run, None, {"X": X}))
                    for _ in range(3)]
            ours, ort = (float(np.median(c)) for c in zip(*rows))
            print(f"{cell} {act}/{gate}: rnnkit {ours:.3f} ms ({ours:.2f} µs/step), "
                  f"ORT {ort:.3f} ms, ORT/rnnkit {ort / ours:.2f}", flush=True)


if __name__ == "__main__":
    main()
