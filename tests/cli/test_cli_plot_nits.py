"""Plot nits of issue 18 (item 8): units that agree with the table, names that say what ran,
yearly axes without fractions, --bidirectional for forecasting (causal: it reads the window)."""

from __future__ import annotations

import csv
import math

import pytest

from rnnkit.cli import plots

TINY = ["--epochs", "2", "--hidden", "4", "--quiet"]


@pytest.fixture
def drawn(monkeypatch):
    """The arguments of every loss curve and forecast plot drawn, and the axes' tick labels."""
    calls = {}
    real_loss, real_finish = plots.loss_curve, plots._finish

    def loss_curve(path, history, loss, title):
        calls["loss"] = (history, loss, title)
        return real_loss(path, history, loss, title)

    def finish(fig, ax, xlabel, ylabel, title):
        real_finish(fig, ax, xlabel, ylabel, title)
        fig.canvas.draw()
        calls.setdefault("ticks", []).append(
            (xlabel, [t.get_text() for t in ax.get_xticklabels()]))

    monkeypatch.setattr(plots, "loss_curve", loss_curve)
    monkeypatch.setattr(plots, "_finish", finish)
    return calls


def test_charlm_loss_curve_is_in_bits_per_char_like_its_table(cli, tmp_path, text_file, drawn):
    run = tmp_path / "lm"
    code, out, _ = cli("train", text_file, "--seq-len", "20", "--out", run, *TINY)
    assert code == 0 and "bits/char" in out
    history, label, _ = drawn["loss"]
    assert "bits per character" in label
    with open(run / "history.csv") as f:
        raw = list(csv.DictReader(f))  # history.csv keeps the optimiser's loss, in nats
    assert history[-1]["loss"] == pytest.approx(float(raw[-1]["loss"]) / math.log(2), rel=1e-4)


def test_bidirectional_forecaster_is_named_so_and_years_are_whole(cli, tmp_path, drawn):
    run = tmp_path / "bi"
    code, out, _ = cli("train", "nile", "--bidirectional", "--horizon", "3", "--window", "8",
                       "--out", run, *TINY)
    assert code == 0 and "biLSTM(4)" in out
    assert drawn["loss"][2] == "nile: biLSTM(4) training and validation loss"
    years = [labels for xlabel, labels in drawn["ticks"] if xlabel == "year"]
    assert years and all(t.lstrip("−-").isdigit() for labels in years for t in labels if t)
