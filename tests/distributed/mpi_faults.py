"""Run under ``mpiexec -n 2`` with one fault (argv[1]); the job must end, never hang."""

import os
import signal
import sys

import numpy as np

import rnnkit as rk
from rnnkit.distributed import world

W = world("on")
FAULT = sys.argv[1]
X = np.random.default_rng(0).standard_normal((40, 5, 2))
y = np.random.default_rng(1).standard_normal((40, 1))
if FAULT == "bad-shard":
    X[35, 2, 1] = np.nan  # in rank 1's half: only rank 1 checks it


class Fault(rk.Callback):
    def on_batch_end(self, trainer, batch, logs):
        if W.rank != 1 or trainer.epoch != 1 or batch != 2:
            return
        if FAULT == "raise":
            raise RuntimeError("a planted failure on rank 1")
        if FAULT == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if FAULT == "interrupt":  # Ctrl-C seen by one rank only: all stop at the same step
            os.kill(os.getpid(), signal.SIGINT)
        if FAULT == "diverge":
            trainer.model.parameters()["0.W_h"][0, 0] += 1e-3


model = rk.Sequential([rk.GRU(3), rk.Dense(1)], dtype="float64")
path = os.path.join(sys.argv[2], "ckpt.safetensors")
h = model.fit(X, y, epochs=50, batch_size=8, callbacks=[Fault(), rk.ModelCheckpoint(path)],
          distributed="on")
print(f"rank {W.rank}: finished {len(h)} epochs, {h.stop_reason}; weights "
      f"{sum(float(v.sum()) for v in model.parameters().values()):.15f}", flush=True)
