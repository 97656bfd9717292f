"""fit(verbose=...): silent by default, Keras-like bars on a terminal, a line per epoch else."""

import io

import numpy as np
import pytest

import rnnkit as rk


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _data():
    X = np.random.default_rng(0).normal(size=(40, 4, 2))
    return X, X.sum(axis=(1, 2))[:, None]


def test_verbose_0_is_silent_and_2_prints_a_line_per_epoch(capsys):
    X, y = _data()
    rk.Sequential([rk.GRU(3), rk.Dense(1)], seed=0).fit(X, y, epochs=2, batch_size=20)
    assert capsys.readouterr() == ("", "")
    rk.Sequential([rk.GRU(3), rk.Dense(1)], seed=0).fit(X, y, epochs=2, batch_size=20,
                                                         verbose=2)
    lines = capsys.readouterr().err.splitlines()
    assert [ln.split(" - ")[0] for ln in lines] == ["Epoch 1/2", "Epoch 2/2"]
    assert all("loss: " in ln and "rmse: " in ln for ln in lines)


def test_verbose_1_draws_a_bar_that_fills_per_batch_on_a_terminal():
    X, y = _data()
    out = _Terminal()
    rk.Sequential([rk.GRU(3), rk.Dense(1)], seed=0).fit(
        X, y, epochs=1, batch_size=10, callbacks=[rk.ProgressBar(1, out)],
        validation_data=(X, y))
    frames = out.getvalue().split("\r")
    assert "Epoch 1/1 1/4 [=======>" in frames[1] and frames[-1].endswith("\n")
    assert "4/4 [==============================]" in frames[-1] and "val_loss: " in frames[-1]


def test_verbose_must_be_0_1_or_2():
    X, y = _data()
    with pytest.raises(ValueError, match="verbose must be 0"):
        rk.Sequential([rk.GRU(3), rk.Dense(1)]).fit(X, y, epochs=1, verbose=3)
