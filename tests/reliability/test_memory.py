"""Training from memory-mapped .npy files: memory bounded by the batch, not the dataset."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from memmap_memory import measure


def test_peak_memory_does_not_grow_with_the_dataset():
    small = measure(1_000, steps=10, features=8, batch_size=32)
    large = measure(10_000, steps=10, features=8, batch_size=32)
    # 10x the data; what may grow is the shuffling permutation (8 bytes a sample) and y
    assert large["peak_traced_mb"] < small["peak_traced_mb"] + 0.5
    assert large["peak_traced_mb"] < 0.25 * large["dataset_mb"]


def test_memmap_training_equals_in_memory_training(tmp_path):
    import rnnkit as rk

    X = np.random.default_rng(0).standard_normal((40, 6, 3)).astype(np.float32)
    y = (X[:, 0, 0] > 0).astype(np.int64)
    np.save(tmp_path / "X.npy", X)
    weights = []
    for data in (X, np.load(tmp_path / "X.npy", mmap_mode="r")):
        model = rk.Sequential([rk.LSTM(5), rk.Dense(2)], seed=0)
        model.fit(data, y, loss="cross_entropy", epochs=2, batch_size=8, seed=1)
        weights.append(model.parameters())
    for k in weights[0]:
        np.testing.assert_array_equal(weights[0][k], weights[1][k])
