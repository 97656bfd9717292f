"""Checkpoint format 2: every callback's state is saved, resume from any epoch equals the
uninterrupted run, format 1 migrates, and the metadata is checked field by field."""

import json
import shutil

import numpy as np
import pytest

import rnnkit as rk
from rnnkit.checkpoint import load_checkpoint
from rnnkit.errors import ModelFileError
from rnnkit.fileio import load_tensors, save_tensors


class EveryEpoch(rk.ModelCheckpoint):
    """A checkpoint per epoch kept as ``<path>.<epoch>``: a kill after any epoch."""

    def on_epoch_end(self, trainer, epoch, logs):
        super().on_epoch_end(trainer, epoch, logs)
        shutil.copy(self.path, f"{self.path}.{epoch + 1}")


def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((48, 8, 2)).astype(np.float32)
    y = X[:, -3:, :1].sum(axis=1) + 0.3 * rng.standard_normal((48, 1)).astype(np.float32)
    return X[:36], y[:36], X[36:], y[36:]


def train(ckpt=None, resume=None, epochs=40):
    X, y, Xv, yv = data()
    model = rk.Sequential([rk.GRU(6), rk.Dense(1)], seed=3)
    callbacks = [rk.EarlyStopping(patience=3), rk.NaNGuard(max_in_row=4)]
    if ckpt is not None:
        callbacks.insert(0, EveryEpoch(ckpt))  # fit moves checkpoints after the others
    opt = rk.Adam(0.05)  # large steps: the validation loss goes up and down
    h = model.fit(X, y, optimizer=opt, epochs=epochs, batch_size=8, validation_data=(Xv, yv),
                  callbacks=callbacks, schedule=rk.optim.StepLR(opt, 4, 0.7), seed=5,
                  resume=resume)
    return model, h


def untimed(h):
    return [{k: v for k, v in e.items() if k != "time"} for e in h.epochs], h.stop_reason


def test_resume_from_every_epoch_equals_the_uninterrupted_run(tmp_path):
    ckpt = tmp_path / "ck.safetensors"
    model, h = train(ckpt)
    assert h.stop_reason.startswith("early stopping"), "the test needs early stopping to act"
    waits = []
    for epoch in range(1, len(h) + 1):
        _, tensors, state = load_checkpoint(f"{ckpt}.{epoch}", rk.Sequential)
        es = state["callbacks"]["EarlyStopping"]["state"]
        waits.append(es["wait"])
        assert state["format"] == 2 and state["epoch"] == epoch
        assert any(k.startswith("callback/EarlyStopping/") for k in tensors)
        resumed, h2 = train(resume=f"{ckpt}.{epoch}")
        for k, v in model.parameters().items():
            np.testing.assert_array_equal(resumed.parameters()[k], v, err_msg=f"epoch {epoch}")
        assert untimed(h2) == untimed(h)
    assert max(waits) >= 2 and 0 in waits[1:], "kills should land both mid-wait and after a best"
    # the last checkpoint holds the stop decision: a resume trains no further
    assert state["stop"] == h.stop_reason


def test_a_format_1_checkpoint_still_resumes(tmp_path):
    ckpt = tmp_path / "ck.safetensors"
    train(ckpt, epochs=3)
    tensors, meta = load_tensors(f"{ckpt}.3")
    state = json.loads(meta["checkpoint"])
    for k in ("format", "stop", "callbacks"):
        del state[k]
    tensors = {k: v for k, v in tensors.items() if not k.startswith("callback/")}
    save_tensors(ckpt, tensors, {**meta, "checkpoint": json.dumps(state)})
    _, _, migrated = load_checkpoint(ckpt, rk.Sequential)
    assert migrated["format"] == 2 and migrated["callbacks"] == {} and migrated["stop"] is None
    _, h = train(resume=ckpt, epochs=4)
    assert len(h) == 4


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    ckpt = tmp_path_factory.mktemp("ck") / "ck.safetensors"
    train(ckpt, epochs=2)
    tensors, meta = load_tensors(ckpt)
    return tensors, meta


def rewrite(path, tensors, meta, change):
    state = json.loads(meta["checkpoint"])
    change(state)
    save_tensors(path, tensors, {**meta, "checkpoint": json.dumps(state)})


def _drop_rng_state(s):
    del s["rng"]["state"]


def _set(path, value):
    def change(s):
        node = s
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
    return change


@pytest.mark.parametrize("change, field", [
    (_drop_rng_state, r"checkpoint\.rng\.state: missing"),
    (_set(["history"], 5), r"checkpoint\.history"),
    (_set(["optimizer", "steps", "0.W_h"], -1), r"checkpoint\.optimizer\.steps\.0\.W_h"),
    (_set(["epoch"], 10**9), r"checkpoint\.epoch"),
    (_set(["epoch"], -5), r"checkpoint\.epoch"),
    (_set(["epoch"], 1), r"checkpoint\.epoch: expected the number of epochs in the history"),
    (_set(["format"], 3), r"checkpoint\.format"),
    (_set(["stop"], 7), r"checkpoint\.stop"),
    (_set(["rng", "state", "inc"], "x"), r"checkpoint\.rng\.state\.inc"),
    (_set(["history", "epochs", 1, "loss"], "x"), r"checkpoint\.history\.epochs\[1\]\.loss"),
    (_set(["optimizer", "hyperparameters", "lr"], -1.0), r"checkpoint\.optimizer\.hyper"),
    (_set(["optimizer", "hyperparameters", "betas"], [0.9]), r"optimizer\.hyperparameters\.betas"),
    (_set(["optimizer", "class"], "Lion"), r"checkpoint\.optimizer\.class"),
    (_set(["schedule", "step_size"], 0), r"checkpoint\.schedule"),
    (_set(["schedule", "last_epoch"], -2), r"checkpoint\.schedule\.last_epoch"),
    (_set(["callbacks", "EarlyStopping", "class"], "NaNGuard"), r"callbacks\.EarlyStopping"),
    (_set(["extra"], 1), r'checkpoint: unknown key "extra"'),
])
def test_bad_checkpoint_metadata_names_the_field(tmp_path, checkpoint, change, field):
    path = tmp_path / "bad.safetensors"
    rewrite(path, *checkpoint, change)
    with pytest.raises(ModelFileError, match=field):
        load_checkpoint(path, rk.Sequential)


@pytest.mark.parametrize("change, field", [
    (_set(["callbacks", "EarlyStopping", "state", "wait"], -1), r"EarlyStopping\.state: wait"),
    (_set(["callbacks", "EarlyStopping", "state", "best"], "x"), r"EarlyStopping\.state: best"),
    (_set(["callbacks", "NaNGuard", "state"], {}), r"NaNGuard\.state"),
])
def test_bad_callback_state_names_the_field_on_resume(tmp_path, checkpoint, change, field):
    path = tmp_path / "bad.safetensors"
    rewrite(path, *checkpoint, change)
    with pytest.raises(ModelFileError, match=field):
        train(resume=path, epochs=3)


def test_callback_tensors_must_be_whole_parameter_sets(tmp_path, checkpoint):
    tensors, meta = checkpoint
    path = tmp_path / "bad.safetensors"
    cut = {k: v for k, v in tensors.items() if k != "callback/EarlyStopping/0.W_h"}
    save_tensors(path, cut, meta)
    with pytest.raises(ModelFileError, match="one tensor per parameter"):
        load_checkpoint(path, rk.Sequential)
    wrong = {**tensors, "optim/exp_avg.0.W_h": np.zeros((2, 2), np.float32)}
    save_tensors(path, wrong, meta)
    with pytest.raises(ModelFileError, match=r"optim/exp_avg\.0\.W_h"):
        load_checkpoint(path, rk.Sequential)


def test_nan_guard_count_survives_a_checkpoint():
    guard = rk.NaNGuard(max_in_row=5)
    guard.on_train_begin(None)
    guard.in_row = 3
    other = rk.NaNGuard(max_in_row=5)
    other.on_train_begin(None)
    other.load_state_dict(*guard.state_dict())
    assert other.in_row == 3


def test_ctrl_c_is_not_saved_as_a_stop_decision(tmp_path):
    X, y, _, _ = data()
    model = rk.Sequential([rk.GRU(4), rk.Dense(1)], seed=0)

    class CtrlC(rk.Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            if epoch == 1:
                trainer.interrupted = True  # what the SIGINT handler does

    ckpt = tmp_path / "ck.safetensors"
    h = model.fit(X, y, epochs=5, callbacks=[CtrlC(), rk.ModelCheckpoint(ckpt)])
    assert len(h) == 2 and h.stop_reason.startswith("interrupted")
    _, _, state = load_checkpoint(ckpt, rk.Sequential)
    assert state["stop"] is None and state["epoch"] == 2
