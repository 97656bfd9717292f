"""Data-parallel training: the same script on one process or on K.

    python examples/distributed_fit.py                      # one process
    mpiexec -n 2 python examples/distributed_fit.py         # two ranks, the same model

Each rank maps the arrays (np.load with mmap_mode="r") and reads only the rows of its share of
every batch; rank 0 prints and writes. The weights printed at the end are the same for both
launches (float64: to about 1e-15).
"""

import os
import sys
import tempfile

import numpy as np

import rnnkit as rk
from rnnkit.distributed import world

here = os.path.join(tempfile.gettempdir(), "rnnkit-distributed-example")
w = world()  # what fit(distributed="auto") will use: rank and size of this job
if w.rank == 0 and not os.path.exists(os.path.join(here, "y.npy")):
    # a toy dataset on disk; in real use it is already there (np.save or the data tools)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 20, 3)).astype(np.float32)
    y = X[:, -5:, :].sum(axis=(1, 2))[:, None] / 5  # the sum of the last five steps
    os.makedirs(here, exist_ok=True)
    np.save(os.path.join(here, "X.npy"), X)
    np.save(os.path.join(here, "y.npy"), y)
if w.size > 1:
    w.bcast(np.zeros(1))  # the others wait until rank 0 has written the files

X = np.load(os.path.join(here, "X.npy"), mmap_mode="r")
y = np.load(os.path.join(here, "y.npy"), mmap_mode="r")
model = rk.Sequential([rk.GRU(16), rk.Dense(1)], dtype="float64")
history = model.fit(X, y, epochs=3, batch_size=64, optimizer=rk.Adam(3e-3),
                    validation_split=0.1)
if w.rank == 0:
    print(f"{w.size} process(es): loss {history['loss'][-1]:.6f}, "
          f"val_loss {history['val_loss'][-1]:.6f}, "
          f"sum of weights {sum(float(v.sum()) for v in model.parameters().values()):.12f}")
    model.save(os.path.join(here, "model.safetensors"))
sys.exit(0)
