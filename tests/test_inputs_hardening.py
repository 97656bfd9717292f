"""Data and inputs from the outside (issue 21 C): what is refused, and how it is reported."""

import os

import numpy as np
import pytest

import rnnkit as rk
import rnnkit.model as model_module
from rnnkit.data import Scaler, load_npz, read_text
from rnnkit.errors import DataError, MemoryLimitError, ModelFileError
from rnnkit.fileio import open_regular
from rnnkit.model import check_memory


def npz(tmp_path, name="d.npz", **arrays):
    np.savez(tmp_path / name, **arrays)
    return tmp_path / name


@pytest.mark.parametrize("X,y,message", [
    (np.ones((4, 3, 2), complex), np.arange(4) % 2, r"expected real numeric X .* got complex128"),
    (np.ones((4, 3, 2)), np.arange(4) + 1j, r"expected y of class labels .* got dtype complex"),
    (np.ones((4, 0, 2)), np.arange(4) % 2, r"X of shape \(4, 0, 2\) is empty"),
    (np.ones((4, 3, 0)), np.arange(4) % 2, r"X of shape \(4, 3, 0\) is empty"),
    (np.ones((64, 10)), np.arange(64) % 2, r"got float64 \(64, 10\); for one feature"),
])
def test_npz_content_is_refused_with_rnnkit_errors(tmp_path, X, y, message):
    with pytest.raises(DataError, match=message):
        load_npz(npz(tmp_path, X=X, y=y))


def test_a_file_named_npz_that_is_not_one(tmp_path):
    (tmp_path / "t.npz").write_text("hello, this is text\n")
    with pytest.raises(DataError, match=r"t\.npz: expected an \.npz file \(a zip archive") as e:
        load_npz(tmp_path / "t.npz")
    assert "pickle" not in str(e.value)
    np.save(tmp_path / "a.npy", np.zeros(3))
    os.replace(tmp_path / "a.npy", tmp_path / "a.npz")
    with pytest.raises(DataError, match=r"got a single \.npy array"):
        load_npz(tmp_path / "a.npz")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifos_and_devices_are_never_read(tmp_path):
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    for read in (read_text, load_npz):  # each would block forever on the FIFO
        with pytest.raises(DataError, match=r"fifo\.csv: expected .*, got a FIFO"):
            read(fifo)
    with pytest.raises(DataError, match=r"/dev/zero: expected a file, got a character device"):
        read_text("/dev/zero")
    with pytest.raises(DataError, match="got a folder"):
        open_regular(tmp_path)
    with pytest.raises(ModelFileError, match="not a regular file"):
        rk.load(fifo)


def test_config_file_fifo_is_a_usage_error(tmp_path):
    from rnnkit.cli import main

    os.mkfifo(tmp_path / "c.toml")
    assert main(["train", "--config", str(tmp_path / "c.toml")]) == 2


def test_values_near_the_float_limit_are_called_too_large_not_missing():
    values = np.array([1.0, 2.0, 1e308, 3.0])
    with pytest.raises(DataError, match=r"value 1e\+308 \(row 2, column 0\) is too large"):
        Scaler().fit(values)
    with pytest.raises(DataError, match=r"value -1\.7e\+308 \(row 1, column 1\) is too large"):
        Scaler().fit(np.array([[1.0, 2.0], [3.0, -1.7e308]]))
    scaler = Scaler().fit(np.array([1.0, 2.0, 3.0]))
    with pytest.raises(DataError, match=r"value -1\.7e\+308 is too large"):
        scaler.transform(np.array([1.0, -1.7e308]))
    assert np.isnan(scaler.transform(np.array([np.nan, 1e150]))[0])  # NaN stays missing


def test_fit_on_empty_data_is_refused():
    model = rk.Sequential([rk.RNN(3), rk.Dense(1)])
    with pytest.raises(ValueError, match=r"fit: X is empty, shape \(0, 3, 2\)"):
        model.fit(np.zeros((0, 3, 2)), np.zeros((0, 1)), epochs=1)
    with pytest.raises(ValueError, match=r"fit: X_val is empty"):
        model.fit(np.zeros((2, 3, 2)), np.zeros((2, 1)), epochs=1,
                  validation_data=(np.zeros((0, 3, 2)), np.zeros((0, 1))))


def test_a_2d_x_is_reported_as_given():
    model = rk.Sequential([rk.RNN(3), rk.Dense(1)])
    with pytest.raises(ValueError, match=r"X of shape \(64, 10\) is one sequence of T=64 steps "
                                         r"with D=10 features, but y has 64 entries"):
        model.fit(np.zeros((64, 10)), np.zeros(64), epochs=1)
    with pytest.raises(ValueError, match=r"X of shape \(64, 10\) is one sequence .* but y has 64 "
                                         r"entries \(shape \(64, 1\)\)"):  # not (1, 64, 1)
        model.fit(np.zeros((64, 10)), np.zeros((64, 1)), epochs=1)
    seq = rk.Sequential([rk.RNN(3, return_sequences=True), rk.Dense(1)])
    seq.fit(np.zeros((64, 10)), np.zeros((64, 1)), epochs=1)  # one sequence, a target per step
    model.build(1)
    with pytest.raises(ValueError, match=r"got X of shape \(64, 10\) \(T, D\)"):
        model.evaluate(np.zeros((64, 10)), np.zeros((1, 1)))


def test_complex_inputs_are_refused():
    model = rk.Sequential([rk.RNN(3), rk.Dense(1)])
    with pytest.raises(TypeError, match="complex"):
        model.fit(np.ones((2, 3, 2), complex), np.ones((2, 1)), epochs=1)
    with pytest.raises(TypeError, match="complex"):
        model.fit(np.ones((2, 3, 2)), np.ones((2, 1), complex), epochs=1)


def test_a_model_too_large_for_memory_is_refused_before_allocating():
    model = rk.Sequential([rk.LSTM(100_000_000), rk.Dense(1)])
    with pytest.raises(MemoryLimitError, match=r"layer 0 \(LSTM, hidden=100000000\).*make "
                                               r"hidden smaller"):
        model.build(2)
    assert not model.built
    small = rk.Sequential([rk.GRU(8), rk.Dense(3)])
    n = sum(np.prod(s) for s in small.param_shapes(4).values())
    check_memory(small, 4, available=int(n * 16))  # float32 weights, gradients, a temporary
    with pytest.raises(MemoryLimitError, match=r"layer 0 \(GRU, hidden=8\)"):
        check_memory(small, 4, available=int(n * 16) - 1)
    with pytest.raises(MemoryError):  # it is one, for whoever catches MemoryError
        rk.Sequential([rk.Embedding(10**9, 10**6)]).build(1)
    check_memory(small, 4, available=int(n * 24), slots=2)  # and Adam's two moments
    with pytest.raises(MemoryLimitError, match="weights and gradients and 2 optimizer buff"):
        check_memory(small, 4, available=int(n * 24) - 1, slots=2)


@pytest.mark.parametrize("layer,input_size,message", [
    (rk.LSTM(100_000_000), 3, r"LSTM\(hidden=100000000\): 4e\+16 parameters .* make hidden"),
    (rk.GRU(4, readout=rk.Dense(10**10)), 3,
     r"GRU\(hidden=4\) with readout Dense\(units=10000000000\): 5e\+10 .* make units"),
    (rk.Dense(10**6), 10**6, r"Dense\(units=1000000\): 1e\+12 parameters .* make units"),
    (rk.Embedding(10**9, 10**6), 1, r"Embedding\(vocab_size=1000000000, dim=1000000\)"),
])
def test_a_layer_built_alone_is_refused_before_numpy_runs_out(layer, input_size, message):
    with pytest.raises(MemoryLimitError, match=message):
        layer.build(input_size, np.random.default_rng(0), np.dtype(np.float32))
    assert not layer.built


def test_the_layer_check_counts_weights_gradients_and_a_temporary():
    from rnnkit.memory import check_layer

    layer = rk.RNN(8)
    n = sum(np.prod(s) for s in layer.param_shapes(4)[0].values())
    check_layer(layer, 4, np.float64, available=int(n * 24))
    with pytest.raises(MemoryLimitError, match=r"RNN\(hidden=8\): 104 parameters need about "
                                               r"2.5 KB .*float64 .* 2.5 KB of memory"):
        check_layer(layer, 4, np.float64, available=int(n * 24) - 1)


@pytest.mark.parametrize("layers", [
    lambda: [rk.LSTM(5), rk.Dense(2)],
    lambda: [rk.GRU(4, return_sequences=True, bidirectional=True), rk.Dense(2)],
    lambda: [rk.Embedding(10, 3), rk.RNN(4), rk.Dense(2)],
])
def test_predict_on_a_memmap_runs_in_blocks(tmp_path, monkeypatch, layers):
    model = rk.Sequential(layers())
    rng = np.random.default_rng(0)
    if model.takes_ids:
        X = rng.integers(0, 10, (300, 7))
    else:
        X = rng.normal(size=(300, 7, 3)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    lengths = rng.integers(1, 8, 300)
    whole, whole_masked = model.predict(X), model.predict(X, lengths)
    batches = []
    run = model.run
    monkeypatch.setattr(model, "run", lambda x, *a, **k: (batches.append(x.shape[1]),
                                                           run(x, *a, **k))[1])
    monkeypatch.setattr(model_module, "PREDICT_BLOCK_BYTES", 1)  # blocks of 64 rows at most
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    assert np.array_equal(model.predict(mapped), whole)
    assert batches == [60] * 5  # 300 rows in blocks of equal size
    assert np.array_equal(model.predict(mapped, lengths), whole_masked)
    with pytest.raises(ValueError, match="lengths must have one entry per sequence"):
        model.predict(mapped, lengths[:-1])
