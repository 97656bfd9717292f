"""Forecasting from the command line: horizons, strategies, intervals, dates, bad input."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

import rnnkit as rk

TINY = ["--epochs", "2", "--hidden", "4", "--quiet"]


def _metrics(run):
    return json.loads((run / "metrics.json").read_text())


def test_quantile_horizon_run_scores_each_step_and_predict_writes_intervals(cli, tmp_path):
    run = tmp_path / "q"
    code, out, _ = cli("train", "airline", "--horizon", "3", "--loss", "quantile",
                       "--quantiles", "0.1,0.5,0.9", "--out", run, *TINY)
    assert code == 0
    assert "MAE per step ahead" in out and "80% interval: coverage" in out
    assert "seasonal naive (12)" in out and "*" in out  # the best per metric is marked
    m = _metrics(run)
    assert set(m["scores"]["LSTM(4)"]) == {"mae", "rmse", "mase", "smape"}
    assert all(len(v["mae"]) == 3 for v in m["per_step"].values())
    assert m["intervals"]["intervals"][0]["nominal"] == 0.8
    assert set(m["best"]) == {"mae", "rmse", "mase", "smape"}
    assert ("LOSES" in m["verdict"]) == any(v != "LSTM(4)" for v in m["best"].values())
    assert {"forecast.png", "error_by_step.png"} <= set(m["files"])
    code, out, _ = cli("predict", run / "model.safetensors", "--steps", "2")
    rows = list(csv.reader(io.StringIO(out)))
    assert code == 0 and rows[0] == ["step", "time", "forecast_value", "q0.1", "q0.5", "q0.9"]
    assert [r[1] for r in rows[1:]] == ["1961-01", "1961-02"]  # months continue
    assert all(float(r[3]) <= float(r[4]) <= float(r[5]) for r in rows[1:])
    code, _, err = cli("predict", run / "model.safetensors", "--steps", "5")
    assert code == 3 and "--horizon 3 steps only" in err


def test_gaussian_run_reports_exact_crps(cli, tmp_path):
    run = tmp_path / "g"
    code, out, _ = cli("train", "nile", "--window", "5", "--loss", "gaussian", "--out", run,
                       *TINY)
    assert code == 0 and "CRPS" in out and "(from the quantiles)" not in out
    assert _metrics(run)["intervals"]["crps_exact"] is True


def test_recursive_strategy_feeds_forecasts_back(cli, tmp_path, series_csv):
    run = tmp_path / "r"
    code, _, _ = cli("train", series_csv, "--target", "sales", "--window", "6", "--horizon", "3",
                     "--strategy", "recursive", "--out", run, *TINY)
    assert code == 0
    m = _metrics(run)
    assert m["settings"]["strategy"] == "recursive" and len(m["per_step"]["drift"]["mae"]) == 3
    # a one-step model: its head emits one value, the other steps come from feeding back
    model = rk.load(run / "model.safetensors")
    assert model.metadata["strategy"] == "recursive" and model.layers[-1].units == 1


def test_recursive_refuses_features_and_probabilistic_losses(cli, tmp_path, series_csv):
    code, _, err = cli("train", series_csv, "--target", "sales", "--features", "temp",
                       "--strategy", "recursive", "--out", tmp_path / "x", *TINY)
    assert code == 2 and "also reads temp" in err and not (tmp_path / "x").exists()
    code, _, err = cli("train", "nile", "--strategy", "recursive", "--loss", "gaussian",
                       "--out", tmp_path / "y", *TINY)
    assert code == 2 and "use --strategy direct" in err and not (tmp_path / "y").exists()


def test_bad_quantiles_period_and_dates_fail_with_one_line(cli, tmp_path):
    for q in ("0.9,0.1", "0,0.5", "0.5,1.2", "a,b"):
        code, _, err = cli("train", "nile", "--loss", "quantile", "--quantiles", q, *TINY)
        assert code == 2 and "--quantiles" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("train", "nile", "--period", "60", "--out", tmp_path / "p", *TINY)
    assert code == 3 and "--period 60 needs at least two seasons" in err
    assert not (tmp_path / "p").exists()
    bad = tmp_path / "bad.csv"
    rows = [f"{2000 + (i if i != 20 else 3)},{i % 7}" for i in range(40)]
    bad.write_text("year,v\n" + "\n".join(rows) + "\n")
    code, _, err = cli("train", bad, "--target", "v", "--date", "year", "--window", "4",
                       "--out", tmp_path / "d", *TINY)
    assert code == 3 and "dates must increase" in err and not (tmp_path / "d").exists()
    bad.write_text("day,v\n" + "\n".join(f"day {i},{i % 7}" for i in range(40)) + "\n")
    code, _, err = cli("train", bad, "--target", "v", "--date", "day", "--window", "4", *TINY)
    assert code == 3 and "--date day" in err and "expected a year" in err


def test_period_detected_from_monthly_dates(cli, tmp_path, series_csv):
    run = tmp_path / "s"
    code, out, _ = cli("train", series_csv, "--target", "sales", "--window", "12", "--out", run,
                       *TINY)
    assert code == 0 and "seasonal naive (12)" in out
    assert _metrics(run)["settings"]["period"] is None  # found, not given


def test_evaluate_and_predict_map_renamed_columns_and_plot(cli, tmp_path, series_csv):
    run = tmp_path / "m"
    code, _, _ = cli("train", series_csv, "--target", "sales", "--features", "temp", "--window",
                     "6", "--out", run, *TINY)
    assert code == 0
    renamed = tmp_path / "renamed.csv"
    text = series_csv.read_text().replace("date,sales,temp", "day,units,t")
    renamed.write_text(text)
    model = run / "model.safetensors"
    code, out, _ = cli("evaluate", model, renamed, "--target", "units", "--features", "t",
                       "--date", "day")
    assert code == 0 and "persistence" in out
    code, _, err = cli("evaluate", model, renamed, "--target", "units", "--features", "t,x")
    assert code == 3 and "the model reads 1 feature column(s) (temp), got 2" in err
    png = tmp_path / "p.png"
    code, out, _ = cli("predict", model, renamed, "--target", "units", "--features", "t",
                       "--date", "day", "--plot", png)
    assert code == 0 and png.stat().st_size > 10_000
    assert out.splitlines()[1].split(",")[1] == "2005-01-01"  # the monthly dates continue


def test_schedule_flag_sets_the_learning_rate_per_epoch(cli, tmp_path):
    run = tmp_path / "lr"
    code, _, _ = cli("train", "nile", "--window", "5", "--schedule", "cosine", "--epochs", "4",
                     "--hidden", "4", "--patience", "0", "--quiet", "--out", run)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO((run / "history.csv").read_text())))
    lrs = [float(r["lr"]) for r in rows]
    # cosine over 4 epochs from 0.003: the lr used in epochs 1..4
    assert lrs == pytest.approx([0.003 * (1 + np.cos(np.pi * e / 4)) / 2 for e in range(4)])
    code, _, err = cli("train", "nile", "--schedule", "linear", *TINY)
    assert code == 2 and "--schedule" in err
