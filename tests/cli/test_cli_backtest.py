"""``rnnkit backtest`` end to end: the table, the files, no leakage, bad input."""

from __future__ import annotations

import json

import numpy as np

from rnnkit.cli import task_forecast
from rnnkit.data import load_dataset

TINY = ["--epochs", "1", "--hidden", "4", "--quiet"]


def test_backtest_table_files_and_baselines(cli, tmp_path):
    run = tmp_path / "bt"
    code, out, _ = cli("backtest", "nile", "--window", "5", "--horizon", "2", "--folds", "3",
                       "--no-classical", "--out", run, *TINY)
    assert code == 0
    assert "MASE per fold" in out and "*" in out
    m = json.loads((run / "metrics.json").read_text())
    assert set(m["overall"]) == {"LSTM(4)", "naive", "drift"}
    assert [f["origin"] for f in m["folds"]] == ["1965", "1967", "1969"]
    assert [f["test"] for f in m["folds"]] == [[94, 96], [96, 98], [98, 100]]
    assert set(m["best"]) == {"mae", "rmse", "mase", "smape"}
    assert ("LOSES" in m["verdict"]) == any(v != "LSTM(4)" for v in m["best"].values())
    for name in ("backtest.csv", "backtest.png", "config.toml"):
        assert (run / name).stat().st_size > 0
    assert (run / "backtest.csv").read_text().count("\n") == 1 + 3 * 3


def test_backtest_trains_each_fold_on_its_past_only(cli, tmp_path, monkeypatch):
    """Every fold's model (scaler, windows, early stopping) is prepared from the rows
    before its origin, exactly; with --no-refit once, from the first fold's."""
    nile = load_dataset("nile").values
    seen = []
    real = task_forecast.prepare

    def spy(series, s, name):
        seen.append(np.array(series.values))
        return real(series, s, name)

    monkeypatch.setattr(task_forecast, "prepare", spy)
    code, _, _ = cli("backtest", "nile", "--window", "5", "--horizon", "3", "--folds", "3",
                     "--step", "4", "--no-classical", "--out", tmp_path / "a", *TINY)
    assert code == 0
    origins = [100 - 3 - 8, 100 - 3 - 4, 100 - 3]
    assert [len(v) for v in seen] == origins
    for v, o in zip(seen, origins):
        np.testing.assert_array_equal(v.ravel(), nile[:o])
    seen.clear()
    code, _, _ = cli("backtest", "nile", "--window", "5", "--horizon", "3", "--folds", "3",
                     "--no-refit", "--scheme", "sliding", "--no-classical", "--out",
                     tmp_path / "b", *TINY)
    assert code == 0 and [len(v) for v in seen] == [100 - 3 - 6]


def test_backtest_of_a_quantile_model_reports_coverage(cli, tmp_path):
    run = tmp_path / "q"
    code, out, _ = cli("backtest", "nile", "--window", "5", "--horizon", "2", "--folds", "2",
                       "--loss", "quantile", "--no-classical", "--out", run, *TINY)
    assert code == 0 and "coverage (80%)" in out
    m = json.loads((run / "metrics.json").read_text())
    assert 0 <= m["overall"]["LSTM(4)"]["coverage_80"] <= 1
    assert "coverage_80" not in m["overall"]["naive"]


def test_backtest_bad_input_is_one_line_and_writes_nothing(cli, tmp_path):
    out = tmp_path / "x"
    code, _, err = cli("backtest", "nile", "--folds", "40", "--horizon", "3", "--out", out,
                       *TINY)
    assert code == 3 and "(use fewer --folds" in err and not out.exists()
    code, _, err = cli("backtest", "nile", "--cells", "lstm,tcn", "--out", out, *TINY)
    assert code == 2 and "--cells: unknown cell 'tcn'" in err and not out.exists()
    code, _, err = cli("backtest", "nile", "--period", "70", "--out", out, *TINY)
    assert code == 3 and "--period 70" in err and not out.exists()
    code, _, err = cli("backtest", "digits", "--out", out, *TINY)
    assert code == 3 and "needs a time series" in err and not out.exists()
    assert all(len(e.strip().splitlines()) == 1 for e in [err])
