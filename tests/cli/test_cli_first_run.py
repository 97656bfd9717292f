"""The time loop a job runs in: a small job runs NumPy's loop (compiling would cost more than
the job), chosen from the job's size alone (``kernels.job_backend``, ``cli.train.job_size``)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import rnnkit as rk
from rnnkit import kernels
from rnnkit.cli import train as cli_train


def _blas_threads() -> list[int]:
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


@pytest.fixture
def auto():
    previous = kernels.get_backend()
    kernels.set_backend("auto")
    yield
    kernels.set_backend(previous)


def test_a_small_job_runs_numpy_a_large_one_or_a_forced_backend_does_not(auto):
    steps, macs = kernels.SMALL_JOB_STEPS, kernels.SMALL_JOB_MACS
    assert kernels.job_backend(steps, macs) == "numpy"  # the limits are small
    assert kernels.job_backend(steps + 1, 1.0) == "auto"
    assert kernels.job_backend(1, macs * 1.01) == "auto"
    for forced in ("numpy", "numba") if kernels.numba_available() else ("numpy",):
        kernels.set_backend(forced)
        assert kernels.job_backend(1, 1.0) == forced
        assert kernels.job_backend(steps * 10, macs * 10) == forced


def test_for_job_runs_numpy_on_one_blas_thread_and_restores(auto):
    before = _blas_threads()
    with kernels.for_job(10, 1e6) as used:
        assert used == "numpy" and kernels.get_backend() == "numpy"
        assert kernels.running() == "numpy"
        assert all(n == 1 for n in _blas_threads())
    assert kernels.get_backend() == "auto" and _blas_threads() == before
    with pytest.raises(RuntimeError), kernels.for_job(10, 1e6):
        raise RuntimeError("stop")
    assert kernels.get_backend() == "auto" and _blas_threads() == before
    with kernels.for_job(kernels.SMALL_JOB_STEPS + 1, 1e6) as used:
        assert kernels.get_backend() == "auto"
        assert used == ("numba" if kernels.numba_available() else "numpy")


def test_job_size_counts_every_planned_epoch_batch_layer_and_direction():
    model = rk.Sequential([rk.layers.LSTM(6, bidirectional=True, return_sequences=True),
                           rk.layers.GRU(3), rk.layers.Dense(1)])
    s = SimpleNamespace(epochs=3, batch_size=4)
    weights = sum(int(np.prod(v)) for v in model.param_shapes(2).values())
    p = SimpleNamespace(X=np.zeros((10, 5, 2)), val=(np.zeros((3, 5, 2)), None))
    # 3 epochs x (3 training + 1 validation batches) x 5 steps x 3 loops (2 directions + 1)
    assert cli_train.job_size(s, p, model) == (3 * 4 * 5 * 3, 3.0 * (3 * 10 + 3) * 5 * weights)
    p = SimpleNamespace(X=[np.zeros((n, 2)) for n in (3, 7, 5)], val=None)
    assert cli_train.job_size(s, p, model) == (3 * 1 * 7 * 3, 3.0 * 9 * 7 * weights)


def test_the_default_job_is_small_and_a_large_one_compiles(cli, tmp_path, auto, monkeypatch):
    code, _, _ = cli("train", "--epochs", "2", "--hidden", "4", "--out", tmp_path / "a",
                     "--quiet")
    assert code == 0
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["kernels"] == "numpy"
    model = rk.load(tmp_path / "a" / "model.safetensors")
    assert model.metadata["trained"]["kernels"] == "numpy"
    # the default job as planned (100 epochs) is small too: no compiling on a first run
    seen = []
    real = kernels.for_job
    monkeypatch.setattr(kernels, "for_job", lambda *a: seen.append(a) or real(*a))
    assert cli("train", "--epochs", "2", "--out", tmp_path / "b", "--quiet")[0] == 0
    steps, macs = seen[0]
    assert kernels.job_backend(steps * 50, macs * 50) == "numpy"
    if kernels.numba_available():
        monkeypatch.setattr(kernels, "SMALL_JOB_STEPS", 0)
        cli("train", "--epochs", "1", "--hidden", "4", "--out", tmp_path / "c", "--quiet")
        assert json.loads((tmp_path / "c" / "metrics.json").read_text())["kernels"] == "numba"


def test_a_backtest_is_one_job_sized_by_all_its_fits(cli, tmp_path, auto, monkeypatch):
    """Every fit and forecast of a backtest runs in the loop chosen for all of its folds: a
    small one in NumPy's (no compiling), scaled by the rows of every fold's history."""
    seen, loops = [], []
    real = kernels.for_job

    def spy(*size):
        seen.append(size)
        loops.append(kernels.job_backend(*size))
        return real(*size)

    monkeypatch.setattr(kernels, "for_job", spy)
    flags = ["--window", "5", "--horizon", "2", "--epochs", "1", "--hidden", "4", "--quiet",
             "--no-classical"]
    assert cli("backtest", "nile", "--folds", "3", "--out", tmp_path / "a", *flags)[0] == 0
    assert len(seen) == 6 and len(set(seen)) == 1 and set(loops) == {"numpy"}  # 3 fits, 3 forecasts
    one = seen[0]
    seen.clear()
    assert cli("backtest", "nile", "--folds", "3", "--no-refit", "--out", tmp_path / "b",
               *flags)[0] == 0
    assert len(seen) == 4 and seen[0][0] < one[0] / 2  # one fit: a third of the rows
    if kernels.numba_available():
        monkeypatch.setattr(kernels, "SMALL_JOB_STEPS", 0)
        loops.clear()
        assert cli("backtest", "nile", "--folds", "2", "--out", tmp_path / "c", *flags)[0] == 0
        assert loops and "numpy" not in loops  # the backend in force: compiled
