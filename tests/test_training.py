"""fit / evaluate / stream / save / load / resume: the training story end to end."""

import json
import os
import signal
import warnings

import numpy as np
import pytest

import rnnkit as rk
from rnnkit.errors import ModelFileError


def toy_classification(n=256, T=12, seed=0):
    """Label = whether the first 4 steps of channel 0 sum to more than 0."""
    X = np.random.default_rng(seed).standard_normal((n, T, 2)).astype(np.float32)
    return X, (X[:, :4, 0].sum(axis=1) > 0).astype(np.int64)


def toy_regression(n=256, T=12, seed=0):
    """Targets at every step: a running sum of channel 0."""
    X = np.random.default_rng(seed).standard_normal((n, T, 2)).astype(np.float32)
    return X, 0.3 * np.cumsum(X[..., :1], axis=1)


def test_learns_a_classification_task_in_seconds():
    X, y = toy_classification()
    model = rk.Sequential([rk.GRU(16), rk.Dense(2)], seed=0)
    h = model.fit(X, y, loss="cross_entropy", optimizer=rk.Adam(1e-2), epochs=15,
                  batch_size=32, validation_split=0.25)
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    assert h["val_accuracy"][-1] > 0.8  # chance is 0.5
    proba = model.predict_proba(X[:5])
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert model.evaluate(X, y)["accuracy"] > 0.85


def test_learns_a_regression_task_with_sequence_targets():
    X, Y = toy_regression()
    model = rk.Sequential([rk.LSTM(16, return_sequences=True), rk.Dense(1)], seed=0)
    h = model.fit(X, Y, loss="mse", optimizer=rk.Adam(1e-2), epochs=10, batch_size=32)
    assert h["loss"][-1] < 0.2 * h["loss"][0]
    assert set(h.epochs[0]) >= {"loss", "rmse", "grad_norm", "grad_norm_max", "time", "lr"}


def test_history_is_deterministic_for_a_seed():
    X, y = toy_classification(n=64)

    def run():
        model = rk.Sequential([rk.RNN(8), rk.Dense(2)], seed=3)
        h = model.fit(X, y, loss="cross_entropy", epochs=3, batch_size=16, seed=7,
                      validation_split=0.25)
        return [{k: v for k, v in e.items() if k != "time"} for e in h.epochs], \
            model.parameters()

    (h1, p1), (h2, p2) = run(), run()
    assert h1 == h2
    for k in p1:
        np.testing.assert_array_equal(p1[k], p2[k])


@pytest.mark.parametrize("cells", [("lstm",), ("gru", "rnn")])
def test_tbptt_chunks_forward_equals_full_sequence(cells):
    kinds = {"lstm": rk.LSTM, "gru": rk.GRU, "rnn": rk.RNN}
    model = rk.Sequential([kinds[c](5, return_sequences=True) for c in cells] + [rk.Dense(2)],
                          dtype="float64")
    X = np.random.default_rng(0).standard_normal((3, 11, 2))
    x, mask, _ = model.prepare(X, [11, 7, 4])
    full, _, _ = model.run(x, mask)
    state, parts = None, []
    for s in range(0, 11, 4):
        out, _, state = model.run(x[s : s + 4], mask[s : s + 4], state)
        parts.append(out)
    np.testing.assert_array_equal(np.concatenate(parts), full)


def test_tbptt_trains_a_long_sequence():
    X, Y = toy_regression(n=32, T=60)
    model = rk.Sequential([rk.GRU(8, return_sequences=True), rk.Dense(1)], seed=0)
    h = model.fit(X, Y, loss="mse", optimizer=rk.Adam(1e-2), epochs=6, batch_size=8, tbptt=15)
    assert h["loss"][-1] < h["loss"][0]


def test_stream_equals_predict_on_every_prefix():
    model = rk.Sequential([rk.LSTM(6, return_sequences=True, h0="learned"),
                           rk.GRU(5, return_sequences=True), rk.Dense(3)], dtype="float64")
    X = np.random.default_rng(1).standard_normal((7, 2))
    full = model.predict(X)
    stream = model.stream()
    for t in range(7):
        np.testing.assert_allclose(stream.step(X[t]), model.predict(X[: t + 1])[-1],
                                   rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(model.predict(X[: t + 1])[-1], full[t], rtol=1e-14)
    stream.reset()
    np.testing.assert_allclose(stream.step(X[0]), full[0], rtol=1e-14)


def test_stream_of_token_ids_for_sampling():
    model = rk.Sequential([rk.Embedding(9, 4), rk.GRU(6, return_sequences=True),
                           rk.Dense(9)], dtype="float64")
    ids = np.array([3, 1, 4, 1, 5])
    stream = model.stream()
    outs = np.stack([stream.step(i) for i in ids])
    np.testing.assert_allclose(outs, model.predict(ids), rtol=1e-14, atol=1e-15)


def test_stream_checks_each_step_and_takes_what_predict_takes():
    model = rk.Sequential([rk.GRU(5, return_sequences=True), rk.Dense(2)], dtype="float32")
    X = np.random.default_rng(2).standard_normal((3, 4)) * np.array([1, 1, 1, 1e30])
    with pytest.raises(ValueError, match="finite"):  # NaN and inf on the model's first step
        model.stream().step(np.array([0.0, np.nan, 0.0, 0.0]))
    stream = model.stream()
    stream.step(X[0])
    for bad in ([np.inf, 0, 0, 0], np.array([[0, 0, 0, np.nan]], np.float32)):
        with pytest.raises(ValueError, match="X must be finite"):
            stream.step(bad)
    with pytest.raises(ValueError, match="expects inputs with 4 features"):
        stream.step(np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="must be numeric"):
        stream.step(np.array(["a", "b", "c", "d"]))
    # 1e30 squared overflows float32 but is finite: taken; float64, lists and ints converted
    stream = model.stream()
    ints = np.array([1, -2, 3, 0])
    got = [stream.step(X[0]), stream.step(X[1].tolist()), stream.step(ints)]
    want = model.predict(np.stack([X[0], X[1], ints]))
    np.testing.assert_allclose(np.stack(got), want, rtol=1e-5)


def test_stream_rejects_bidirectional():
    with pytest.raises(ValueError, match="bidirectional"):
        rk.Sequential([rk.GRU(3, bidirectional=True)]).stream()


def test_save_load_round_trip_is_exact(tmp_path):
    model = rk.Sequential([rk.LSTM(4, return_sequences=True, h0="learned", c0=np.ones(4)),
                           rk.GRU(3, readout=rk.Dense(2, activation="softmax"), output="y")],
                          seed=5)
    X = np.random.default_rng(0).standard_normal((3, 6, 2)).astype(np.float32)
    before = model.predict(X)
    path = tmp_path / "m.safetensors"
    model.save(path, metadata={"note": "hello", "classes": [1, 2]})
    loaded = rk.load(path)
    np.testing.assert_array_equal(loaded.predict(X), before)
    assert loaded.metadata == {"note": "hello", "classes": [1, 2]}
    assert loaded.get_config() == model.get_config()
    assert not list(tmp_path.glob("*.tmp*")), "no temp files left behind"


def test_save_refuses_nan_weights_and_keeps_the_old_file(tmp_path):
    model = rk.Sequential([rk.RNN(3)])
    model.build(2)
    path = tmp_path / "m.safetensors"
    model.save(path)
    good = path.read_bytes()
    model.parameters()["0.W_h"][0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        model.save(path)
    assert path.read_bytes() == good


def _write_model_with_config(tmp_path, config):
    from rnnkit.fileio import save_tensors

    path = tmp_path / "bad.safetensors"
    save_tensors(path, {"0.W_x": np.zeros((3, 2), np.float32)}, {"rnnkit": json.dumps(config)})
    return path


BAD_CONFIGS = [
    ({"format": "rnnkit", "version": 1, "dtype": "float32", "seed": 0,
      "layers": [{"kind": "os.system", "config": {}}]},
     r'layers\[0\]\.kind: unknown layer type "os\.system"'),
    ({"format": "rnnkit", "version": 1, "dtype": "float32", "seed": 0,
      "layers": [{"kind": "RNN", "config": {"hidden": 3, "__class__": "x"}}]},
     r'layers\[0\]\.config: unknown key "__class__"'),
    ({"format": "rnnkit", "version": 1, "dtype": "float32", "seed": 0, "extra": 1,
      "layers": []}, 'config: unknown key "extra"'),
    ({"format": "rnnkit", "version": 1, "dtype": "float16", "seed": 0,
      "layers": [{"kind": "RNN", "config": {"hidden": 3}}]},
     'config.dtype: expected one of "float32", "float64", got "float16"'),
    ({"format": "rnnkit", "version": 1, "dtype": "float32", "seed": 0,
      "layers": [{"kind": "RNN", "config": {"hidden": 3, "input_size": 2}}]},
     "tensors do not match"),
    ({"format": "rnnkit", "version": 1, "dtype": "float32", "seed": 0,
      "layers": [{"kind": "RNN", "config": {"hidden": -3, "input_size": 2}}]},
     r"config\.layers\[0\]\.config\.hidden: expected an integer >= 1"),
]


@pytest.mark.parametrize("config,match", BAD_CONFIGS)
def test_malformed_configs_are_rejected(tmp_path, config, match):
    with pytest.raises(ModelFileError, match=match):
        rk.load(_write_model_with_config(tmp_path, config))


def test_files_that_are_not_models(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x80\x04\x95 this is a pickle")
    with pytest.raises(ModelFileError, match="pickle"):
        rk.load(junk)
    model = rk.Sequential([rk.RNN(3)])
    model.build(2)
    path = tmp_path / "m.safetensors"
    model.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 5])
    with pytest.raises(ModelFileError):
        rk.load(path)


def test_resume_equals_an_uninterrupted_run(tmp_path):
    X, y = toy_classification(n=96)

    def model():
        return rk.Sequential([rk.GRU(8), rk.Dense(2)], seed=1)

    opts = dict(loss="cross_entropy", batch_size=16, seed=4, validation_split=0.25)
    full = model()
    h_full = full.fit(X, y, epochs=4, optimizer=rk.Adam(1e-2), **opts)
    ckpt = tmp_path / "ckpt.safetensors"
    first = model()
    first.fit(X, y, epochs=2, optimizer=rk.Adam(1e-2),
              callbacks=[rk.ModelCheckpoint(ckpt)], **opts)
    resumed = model()
    h_res = resumed.fit(X, y, epochs=4, optimizer=rk.Adam(1e-2), resume=str(ckpt), **opts)
    for k, v in full.parameters().items():
        np.testing.assert_array_equal(resumed.parameters()[k], v)
    assert h_res["loss"] == h_full["loss"]


def test_guard_skips_non_finite_steps_and_stops_after_too_many():
    X, y = toy_regression(n=64)
    calls = {"n": 0}

    def poisoned(out, target, mask=None):
        calls["n"] += 1
        d = out - target
        value = float(np.mean(d * d)) if not 3 <= calls["n"] <= 4 else float("nan")
        return value, 2 * d / d.size

    model = rk.Sequential([rk.GRU(4, return_sequences=True), rk.Dense(1)], seed=0)
    h = model.fit(X, y, loss=poisoned, epochs=2, batch_size=16)
    assert h["skipped"][0] == 2 and h.stop_reason is None
    assert all(np.all(np.isfinite(v)) for v in model.parameters().values())

    def always_nan(out, target, mask=None):
        return float("nan"), np.zeros_like(out)

    before = {k: v.copy() for k, v in model.parameters().items()}
    h = model.fit(X, y, loss=always_nan, epochs=5, batch_size=4,
                  callbacks=[rk.NaNGuard(max_in_row=3)])
    assert "3 steps in a row" in h.stop_reason
    for k, v in model.parameters().items():
        np.testing.assert_array_equal(v, before[k])


def test_ctrl_c_stops_after_the_current_batch():
    X, y = toy_classification(n=64)

    class Interrupt(rk.Callback):
        def on_batch_end(self, trainer, batch, logs):
            if trainer.epoch == 1 and batch == 1:
                os.kill(os.getpid(), signal.SIGINT)

    model = rk.Sequential([rk.RNN(4), rk.Dense(2)])
    h = model.fit(X, y, loss="cross_entropy", epochs=10, batch_size=16,
                  callbacks=[Interrupt()])
    assert "interrupted" in h.stop_reason and len(h) == 1
    assert all(np.all(np.isfinite(v)) for v in model.parameters().values())


def test_early_stopping_restores_the_best_weights():
    X, y = toy_classification(n=64)
    model = rk.Sequential([rk.RNN(4), rk.Dense(2)])
    stopper = rk.EarlyStopping(patience=2)
    h = model.fit(X, y, loss="cross_entropy", optimizer=rk.SGD(5.0), epochs=30,
                  batch_size=8, validation_split=0.25, callbacks=[stopper])
    best = int(np.argmin(h["val_loss"]))
    for k, v in model.parameters().items():
        np.testing.assert_array_equal(v, stopper.weights[k])
    assert h.stop_reason is None or best == stopper.best_epoch


BAD_FIT = [
    (dict(batch_size=0), ValueError, "batch_size must be a positive integer, got 0"),
    (dict(loss="hinge"), ValueError, "unknown loss 'hinge'"),
    (dict(optimizer="lbfgs"), ValueError, "unknown optimizer 'lbfgs'"),
    (dict(epochs=-1), ValueError, "epochs must be a positive integer"),
    (dict(clip_norm=-1.0), ValueError, "clip_norm must be a positive number"),
    (dict(validation_split=1.5), ValueError, "validation_split must be a float in"),
]


@pytest.mark.parametrize("opts,exc,match", BAD_FIT)
def test_bad_fit_arguments(opts, exc, match):
    X, y = toy_classification(n=8)
    model = rk.Sequential([rk.RNN(3), rk.Dense(2)])
    with pytest.raises(exc, match=match):
        model.fit(X, y, **{"loss": "cross_entropy", **opts})


def test_bad_targets_name_the_sample():
    X, y = toy_classification(n=8)
    model = rk.Sequential([rk.RNN(3), rk.Dense(2)])
    with pytest.raises(ValueError, match="X has 8 samples but y has 7"):
        model.fit(X, y[:7], loss="cross_entropy")
    y_bad = y.copy()
    y_bad[5] = 4
    with pytest.raises(ValueError, match="label 4 at sample 5 is out of range for 2 classes"):
        model.fit(X, y_bad, loss="cross_entropy", batch_size=8, shuffle=False)
    yr = np.zeros((8, 1))
    yr[3] = np.nan
    with pytest.raises(ValueError, match="sample 3 has NaN"):
        rk.Sequential([rk.RNN(3), rk.Dense(1)]).fit(X, yr)
    Xn = X.copy()
    Xn[6, 2, 1] = np.inf
    with pytest.raises(ValueError, match="X must be finite, got inf at sample 6"):
        model.fit(Xn, y, loss="cross_entropy")


def test_a_config_that_lies_about_sizes_fails_before_allocating(tmp_path):
    import tracemalloc

    from rnnkit.fileio import save_tensors

    config = {"format": "rnnkit", "version": 1, "dtype": "float32", "seed": 0,
              "layers": [{"kind": "RNN", "config": {"hidden": 10**6, "input_size": 2}}]}
    path = tmp_path / "huge.safetensors"
    save_tensors(path, {"0.W_x": np.zeros((3, 2), np.float32),
                        "0.W_h": np.zeros((3, 3), np.float32), "0.b": np.zeros(3, np.float32)},
                 {"rnnkit": json.dumps(config)})
    tracemalloc.start()
    with pytest.raises(ModelFileError, match=r"the config needs float32\(1000000, 2\)"):
        rk.load(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 10 * 2**20  # W_h alone would be 4 TB


def test_an_epoch_with_no_applicable_step_stops_with_a_reason():
    X, y = toy_regression(n=16)

    def always_nan(out, target, mask=None):
        return float("nan"), np.zeros_like(out)

    model = rk.Sequential([rk.GRU(3, return_sequences=True), rk.Dense(1)])
    h = model.fit(X, y, loss=always_nan, epochs=3, batch_size=8)  # 2 steps < max_in_row
    assert len(h) == 0 and "no step of epoch 1 could be applied" in h.stop_reason


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fit_and_predict_make_no_blas_dot_products_of_10000_values(dtype, monkeypatch):
    # OpenBLAS runs dot products of 10,000 values or more on its threads, which keep
    # spinning afterwards and take the CPUs from rnnkit's own: a training step of an LSTM
    # with H=128 took 2.5x as long after the gradient norm made them so, float64 predict at
    # B=16 4.7x after the input's finite test. The input is checked and the norm summed
    # without BLAS above that size.
    big = []

    def spy(fn):
        def wrapped(*args, **kwargs):
            big.extend(np.size(a) for a in args if np.size(a) >= 10_000)
            return fn(*args, **kwargs)
        return wrapped

    for name in ("vdot", "dot", "inner"):
        monkeypatch.setattr(np, name, spy(getattr(np, name)))
    monkeypatch.setattr(np.linalg, "norm", spy(np.linalg.norm))
    X = np.random.default_rng(0).standard_normal((64, 20, 16)).astype(dtype)  # 20,480 values
    y = X[:, -1, :1] * 0.5
    model = rk.Sequential([rk.LSTM(64), rk.Dense(1)], dtype=dtype)  # W_h: 16,384 values
    norms = model.fit(X, y, epochs=2, batch_size=32, clip_norm=1.0)["grad_norm"]
    assert len(norms) == 2 and all(0 < n < np.inf for n in norms)
    model.predict(X)
    model.evaluate(X, y)
    assert big == []


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_inputs_are_checked_for_nan_and_inf_exactly(dtype):
    # above FINITE_DOT_MAX values the finite test is max and min (NaN propagates): the
    # first bad value is named, and huge finite values pass without a warning
    from rnnkit.inputs import FINITE_DOT_MAX

    model = rk.Sequential([rk.GRU(3), rk.Dense(1)], dtype=dtype)
    X = np.random.default_rng(1).standard_normal((8, FINITE_DOT_MAX // 8 + 5, 2))
    assert X.size > FINITE_DOT_MAX
    for bad, where in ((np.nan, (5, 100, 1)), (np.inf, (7, 3, 0)), (-np.inf, (0, 0, 0))):
        Xb = X.copy()
        Xb[where] = bad
        with pytest.raises(ValueError, match=f"X must be finite, got {bad} at sample "
                                             f"{where[0]}, step {where[1]}, feature {where[2]}"):
            model.predict(Xb.astype(dtype))
    huge = (np.clip(X, -1, 1) * (float(np.finfo(dtype).max) / 8)).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(huge)
