"""Two toy tasks learned in seconds: the numbers behind the training story.

    python examples/toy_tasks.py

Classification: is the sum of the first 4 steps of channel 0 positive? (256 sequences,
T = 12, D = 2, a GRU). Regression: the running sum of channel 0 at every step (an LSTM with
a target per step). Prints loss before and after training, the held-out score, and seconds.
"""

from __future__ import annotations

import time

import numpy as np

import rnnkit as rk


def run(name, model, X, y, loss, metric, **fit):
    before = model.evaluate(X[192:], y[192:], loss=loss, metrics=[metric])
    start = time.perf_counter()
    model.fit(X[:192], y[:192], loss=loss, **fit)
    seconds = time.perf_counter() - start
    after = model.evaluate(X[192:], y[192:], loss=loss, metrics=[metric])
    print(f"| {name} | {before['loss']:.4f} | {after['loss']:.4f} | {metric} "
          f"{after[metric]:.3f} | {seconds:.1f} |")


def main() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 12, 2)).astype(np.float32)
    labels = (X[:, :4, 0].sum(axis=1) > 0).astype(np.int64)
    running = 0.3 * np.cumsum(X[..., :1], axis=1)
    print("| task | held-out loss before | held-out loss after | held-out metric | seconds |")
    print("|---|---:|---:|---:|---:|")
    run("classification (GRU 16, cross-entropy)", rk.Sequential([rk.GRU(16), rk.Dense(2)]),
        X, labels, "cross_entropy", "accuracy", optimizer=rk.Adam(1e-2), epochs=20,
        batch_size=32)
    run("regression (LSTM 16, MSE per step)",
        rk.Sequential([rk.LSTM(16, return_sequences=True), rk.Dense(1)]), X, running, "mse",
        "rmse", optimizer=rk.Adam(1e-2), epochs=20, batch_size=32)


if __name__ == "__main__":
    main()
