"""Faults during training: SIGKILL while checkpoints are written, resume after it, a full disk,
exploding gradients, extreme inputs and very long sequences."""

import errno
import os
import random
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import rnnkit as rk
from rnnkit.checkpoint import load_checkpoint

KILLS = int(os.environ.get("RNNKIT_KILLS", "8"))

CHILD = textwrap.dedent("""
    import os, sys
    import numpy as np
    import rnnkit as rk
    ckpt, final, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    X = np.random.default_rng(0).standard_normal((512, 20, 4)).astype(np.float32)
    y = (X[:, :3, 0].sum(axis=1) > 0).astype(np.int64)
    model = rk.Sequential([rk.GRU(96), rk.Dense(2)], seed=1)
    model.fit(X, y, loss="cross_entropy", optimizer=rk.Adam(1e-3), epochs=epochs,
              batch_size=16, seed=2, callbacks=[rk.ModelCheckpoint(ckpt)],
              resume=ckpt if os.path.exists(ckpt) else None)
    model.save(final)
""")


def reference_weights(epochs):
    X = np.random.default_rng(0).standard_normal((512, 20, 4)).astype(np.float32)
    y = (X[:, :3, 0].sum(axis=1) > 0).astype(np.int64)
    model = rk.Sequential([rk.GRU(96), rk.Dense(2)], seed=1)
    model.fit(X, y, loss="cross_entropy", optimizer=rk.Adam(1e-3), epochs=epochs,
              batch_size=16, seed=2)
    return model.parameters()


def wait_for_a_new_checkpoint(ckpt, child, timeout=60.0):
    before = ckpt.stat().st_mtime_ns if ckpt.exists() else None
    deadline = time.monotonic() + timeout
    while child.poll() is None and time.monotonic() < deadline:
        if ckpt.exists() and ckpt.stat().st_mtime_ns != before:
            return
        time.sleep(0.005)


def test_sigkill_while_checkpointing_never_tears_the_file_and_resume_is_exact(tmp_path):
    """Kill the trainer at random moments many times; after each kill the checkpoint is a
    whole, loadable earlier or later epoch; the restarted run resumes from it and ends with
    exactly the weights of an uninterrupted run."""
    ckpt, final = tmp_path / "ckpt.safetensors", tmp_path / "final.safetensors"
    epochs = 6 * KILLS + 20  # each kill lands after at least one new epoch
    rand = random.Random(0)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    args = [sys.executable, "-c", CHILD, str(ckpt), str(final), str(epochs)]
    seen_epochs, kills = [], 0
    while kills < KILLS:
        child = subprocess.Popen(args, env=env)
        wait_for_a_new_checkpoint(ckpt, child)
        time.sleep(rand.uniform(0.0, 0.15))  # an epoch takes ~0.07 s: lands anywhere in one
        if child.poll() is None:
            child.kill()
            kills += 1
        child.wait()
        if ckpt.exists():
            _, _, state = load_checkpoint(ckpt, rk.Sequential)  # raises if torn
            seen_epochs.append(state["epoch"])
        if child.returncode == 0:
            break  # it finished before the next kill
    if not final.exists():
        assert subprocess.run(args, env=env, timeout=600).returncode == 0
    print(f"\n{kills} SIGKILLs, checkpoints seen at epochs {seen_epochs}")
    assert kills >= min(KILLS, 5) and seen_epochs == sorted(seen_epochs)
    assert len(set(seen_epochs)) > 1, "the kills should land at different epochs"
    resumed = rk.load(final).parameters()
    for k, v in reference_weights(epochs).items():
        np.testing.assert_array_equal(resumed[k], v)


def test_full_disk_keeps_the_previous_file(tmp_path, monkeypatch):
    model = rk.Sequential([rk.LSTM(4), rk.Dense(1)])
    model.build(2)
    path = tmp_path / "m.safetensors"
    model.save(path)
    before = path.read_bytes()
    real_fdopen = os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    model.parameters()["0.W_x"][:] += 1
    with pytest.raises(OSError, match="No space left on device"):
        model.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_unwritable_folder_is_a_clear_error(tmp_path):
    model = rk.Sequential([rk.RNN(3)])
    model.build(2)
    with pytest.raises(OSError, match="cannot write"):
        model.save(tmp_path / "missing-folder" / "m.safetensors")


def exploding_model():
    # relu recurrence with W_h = 3·I: spectral radius 3, so h grows like 3^t
    model = rk.Sequential([rk.RNN(16, activation="relu", recurrent_init="identity",
                                  return_sequences=True), rk.Dense(1)], seed=0)
    model.build(2)
    model.parameters()["0.W_h"][:] *= 3
    return model


def exploding_data():
    X = np.abs(np.random.default_rng(0).standard_normal((32, 100, 2))).astype(np.float32)
    return X, np.ones((32, 100, 1), np.float32)


def test_exploding_gradients_without_clipping_are_stopped_and_never_saved(tmp_path):
    model = exploding_model()
    X, y = exploding_data()
    ckpt = tmp_path / "ckpt.safetensors"
    h = model.fit(X, y, loss="mse", optimizer=rk.SGD(1e-3), epochs=5, batch_size=8,
                  callbacks=[rk.NaNGuard(max_in_row=3), rk.ModelCheckpoint(ckpt)])
    assert h.stop_reason is not None and "non-finite" in h.stop_reason
    assert all(np.all(np.isfinite(v)) for v in model.parameters().values())
    if ckpt.exists():
        load_checkpoint(ckpt, rk.Sequential)  # whatever was saved is finite (loading checks it)


def test_exploding_gradients_with_clipping_train():
    model = exploding_model()
    model.parameters()["0.W_h"][:] /= 3 * 1.05  # spectral radius 1.05: large, not infinite
    X, y = exploding_data()
    h = model.fit(X, y, loss="mse", optimizer=rk.SGD(1e-2), epochs=6, batch_size=8,
                  clip_norm=1.0)
    assert h.stop_reason is None and h["loss"][-1] < h["loss"][0]
    assert max(h["grad_norm_max"]) > 1.0, "clipping had work to do"


@pytest.mark.parametrize("cell", [rk.RNN, rk.LSTM, rk.GRU])
def test_extreme_inputs_and_ten_thousand_steps_stay_finite(cell):
    model = rk.Sequential([cell(8, return_sequences=True), rk.Dense(1)], seed=0)
    rng = np.random.default_rng(0)
    X = rng.choice([-1e4, 1e4], size=(2, 10_000, 3)).astype(np.float32)
    out = model.forward(X)
    dX = model.backward(np.ones_like(out))
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(dX))
    assert all(np.all(np.isfinite(g)) for g in model.gradients().values())
