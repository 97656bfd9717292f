"""Fuzz resuming from a checkpoint at the metadata level: a valid checkpoint whose JSON is
mutated (a value of another type or out of range, a key dropped or added, a list shortened or
lengthened) resumes and trains on, or fails with a ValueError (a ModelFileError naming the
field, or "trained with another optimizer"), never another exception.
RNNKIT_CHECKPOINT_FUZZ sets the number of cases (default 2000, ~20 s on a quiet machine)."""

import copy
import json
import os
import random

import numpy as np
import pytest
import safetensors.numpy

import rnnkit as rk
from rnnkit.fileio import load_tensors

CASES = int(os.environ.get("RNNKIT_CHECKPOINT_FUZZ", "2000"))
rng = np.random.default_rng(0)
X = rng.standard_normal((12, 5, 2)).astype(np.float32)
Y = X[:, -1, :1].copy()
EPOCHS = 3
ODD = [None, True, False, 0, 1, -1, -5, 2, 10**9, 2**64, -(2**70), 0.5, -0.5, 1e308, 3.0, "",
       "x", "PCG64", "Adam", "SGD", "EarlyStopping", [], [1], [0.9, 0.999], {}, {"a": 1},
       float("nan"), float("inf"), float("-inf")]


def train(resume=None, ckpt=None, epochs=EPOCHS):
    model = rk.Sequential([rk.GRU(3), rk.Dense(1)], seed=0)
    opt = rk.Adam(1e-2)
    callbacks = [rk.EarlyStopping(patience=2), rk.NaNGuard()]
    if ckpt is not None:
        callbacks.append(rk.ModelCheckpoint(ckpt))
    model.fit(X, Y, optimizer=opt, epochs=epochs, batch_size=6, validation_data=(X, Y),
              callbacks=callbacks, schedule=rk.optim.ReduceLROnPlateau(opt, patience=1),
              resume=resume)
    return model


def nodes(obj, path=()):
    yield path
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from nodes(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from nodes(v, (*path, i))


def mutate(state, r):
    """One random change at a random place of the metadata."""
    state = copy.deepcopy(state)
    where = r.choice(list(nodes(state))[1:])
    parent = state
    for k in where[:-1]:
        parent = parent[k]
    key, old = where[-1], parent[where[-1]]
    kind = r.random()
    if kind < 0.15 and isinstance(parent, dict):
        del parent[key]
    elif kind < 0.25 and isinstance(parent, dict):
        parent[r.choice(["extra", "epoch", "wait", "class", "state"]) + "_"] = r.choice(ODD)
    elif kind < 0.35 and isinstance(old, list) and old:
        parent[key] = old[:-1] if r.random() < 0.5 else [*old, copy.deepcopy(old[-1])]
    elif kind < 0.6 and type(old) in (int, float):
        parent[key] = r.choice([-old, old + 1, old - 1, old * 10**9, -5, 10**9, 1e308, 0.5])
    else:
        parent[key] = copy.deepcopy(r.choice(ODD))
    return state


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    ckpt = tmp_path_factory.mktemp("fuzz") / "ck.safetensors"
    train(ckpt=ckpt, epochs=EPOCHS)
    return load_tensors(ckpt)


def test_mutated_checkpoint_metadata_resumes_or_is_refused_cleanly(tmp_path, valid):
    tensors, meta = valid
    state = json.loads(meta["checkpoint"])
    r = random.Random(int(os.environ.get("RNNKIT_CHECKPOINT_FUZZ_SEED", "0")))
    path = tmp_path / "m.safetensors"
    outcomes = {"refused": 0, "resumed": 0}
    for case in range(CASES):
        bad = mutate(state, r)
        data = safetensors.numpy.save(tensors, {**meta, "checkpoint": json.dumps(bad)})
        path.write_bytes(data)  # no fsync: thousands of files
        try:
            # a valid checkpoint may hold lr = 2**64: the epoch after it overflows, which is the
            # NaN guard's business (tests/reliability/test_faults.py), not the reader's
            with np.errstate(over="ignore", invalid="ignore"):
                model = train(resume=path, epochs=EPOCHS + 1)
        except ValueError:
            outcomes["refused"] += 1
            continue
        except Exception as e:  # anything but a ValueError is a bug
            raise AssertionError(f"case {case}: {type(e).__name__}: {e}\n"
                                 f"{json.dumps(bad)[:2000]}") from e
        outcomes["resumed"] += 1
        assert all(np.all(np.isfinite(v)) for v in model.parameters().values())
    print(f"\n{CASES} mutated checkpoints: {outcomes}")
    assert outcomes["refused"] > CASES // 2 and outcomes["resumed"] > 0
