"""Several targets (``--target a,b``), known-future covariates (``--future-features``) and
calendar features (``--calendar``) through train, evaluate and predict."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

import rnnkit as rk
from rnnkit.data.baselines import persistence_forecast

TINY = ["--epochs", "2", "--hidden", "4", "--quiet"]


def _series(n=60, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    a = 10 + 3 * np.sin(2 * np.pi * t / 12) + 0.1 * t + rng.normal(0, 0.2, n)
    b = 1000 + 200 * np.cos(2 * np.pi * t / 12) + rng.normal(0, 5, n)  # another scale
    promo = t % 3
    dates = [f"{2000 + i // 12}-{1 + i % 12:02d}" for i in t]
    return dates, a, b, promo


@pytest.fixture
def two_csv(tmp_path):
    dates, a, b, promo = _series()
    rows = ["date,a,b,promo"] + [f"{d},{x:.4f},{y:.4f},{p}"
                                 for d, x, y, p in zip(dates, a, b, promo)]
    path = tmp_path / "two.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _csv_rows(out):
    return list(csv.reader(io.StringIO(out)))


def test_two_targets_train_evaluate_predict(cli, tmp_path, two_csv):
    run = tmp_path / "ab"
    code, out, _ = cli("train", two_csv, "--target", "a,b", "--window", "12", "--horizon", "2",
                       "--out", run, *TINY)
    assert code == 0 and "target a:" in out and "target b:" in out
    m = json.loads((run / "metrics.json").read_text())
    assert set(m["per_target"]) == {"a", "b"}
    # each target's baselines are its own: persistence on b is b's last value, in b's units
    _, a, b, _ = _series()
    n_test = round(60 * 0.2)
    for name, col in (("a", a), ("b", b)):
        first = 60 - n_test
        X = np.stack([col[o - 12 : o] for o in range(first, 60 - 1)])
        y = np.stack([col[o : o + 2] for o in range(first, 60 - 1)])
        mae = np.abs(persistence_forecast(X, 2) - y).mean()
        got = m["per_target"][name]["scores"]["persistence"]["mae"]
        assert got == pytest.approx(mae, rel=1e-3)
    # overall: MASE is the targets' mean
    overall = m["scores"]["LSTM(4)"]["mase"]
    per = [m["per_target"][k]["scores"]["LSTM(4)"]["mase"] for k in ("a", "b")]
    assert overall == pytest.approx(np.mean(per))
    assert {"forecast.png", "forecast_2.png", "error_by_step.png"} <= set(m["files"])
    assert "Target b" in (run / "report.html").read_text()
    model = rk.load(run / "model.safetensors")
    assert model.layers[-1].units == 2 * 2 and model.metadata["targets"] == ["a", "b"]
    code, out, _ = cli("predict", run / "model.safetensors", two_csv, "--steps", "3")
    rows = _csv_rows(out)
    assert code == 0 and rows[0] == ["step", "time", "forecast_a", "forecast_b"]
    assert [r[1] for r in rows[1:]] == ["2005-01", "2005-02", "2005-03"]
    fb = np.array([float(r[3]) for r in rows[1:]])
    assert np.all((fb > 500) & (fb < 1500))  # b unscaled with b's scaler, not a's
    renamed = tmp_path / "renamed.csv"
    renamed.write_text(two_csv.read_text().replace("date,a,b,promo", "day,x,y,promo"))
    code, out, _ = cli("evaluate", run / "model.safetensors", renamed, "--target", "x,y",
                       "--date", "day")
    assert code == 0 and "target a:" in out
    code, _, err = cli("predict", run / "model.safetensors", renamed, "--target", "x")
    assert code == 3 and "reads 2 target column(s) (a, b), got 1" in err


def test_two_targets_quantiles_and_recursive(cli, tmp_path, two_csv):
    run = tmp_path / "q"
    code, _, _ = cli("train", two_csv, "--target", "a,b", "--window", "6", "--loss", "quantile",
                     "--out", run, *TINY)
    assert code == 0
    m = json.loads((run / "metrics.json").read_text())
    assert 0 <= m["per_target"]["b"]["intervals"]["intervals"][0]["coverage"] <= 1
    code, out, _ = cli("predict", run / "model.safetensors", two_csv, "--json")
    doc = json.loads(out)
    assert doc["columns"] == ["step", "time", "forecast_a", "forecast_b", "q0.1_a", "q0.5_a",
                              "q0.9_a", "q0.1_b", "q0.5_b", "q0.9_b"]
    r = doc["rows"][0]
    assert r[4] <= r[5] <= r[6] and r[7] <= r[8] <= r[9] and r[7] > 500
    run = tmp_path / "r"
    code, _, _ = cli("train", two_csv, "--target", "a,b", "--window", "6", "--horizon", "3",
                     "--strategy", "recursive", "--out", run, *TINY)
    assert code == 0 and rk.load(run / "model.safetensors").layers[-1].units == 2
    code, out, _ = cli("predict", run / "model.safetensors", two_csv, "--steps", "4")
    assert code == 0 and len(_csv_rows(out)) == 5


def _with_future(two_csv, tmp_path, promos):
    path = tmp_path / "future.csv"
    extra = [f"2005-{i + 1:02d},,,{p}" for i, p in enumerate(promos)]
    path.write_text(two_csv.read_text() + "\n".join(extra) + "\n")
    return path


def test_future_features_are_read_at_the_forecast_steps_only(cli, tmp_path, two_csv):
    run = tmp_path / "f"
    data = _with_future(two_csv, tmp_path, [1, 2, 0, 1])
    code, _, _ = cli("train", data, "--target", "a", "--future-features", "promo", "--window",
                     "6", "--horizon", "2", "--out", run, *TINY)
    assert code == 0
    model = run / "model.safetensors"
    meta = rk.load(model).metadata
    assert meta["future_features"] == ["promo"] and meta["features"] == []

    def predict(promos, steps):
        path = _with_future(two_csv, tmp_path, promos)
        code, out, err = cli("predict", model, path, "--steps", str(steps))
        assert code == 0, err
        return [float(r[2]) for r in _csv_rows(out)[1:]]

    base = predict([1, 2, 0, 1], 2)
    assert predict([1, 2, 5, 5], 2) == base  # rows past the last step are not read
    assert predict([1, 7, 0, 1], 2) != base  # the declared future is
    assert len(predict([1, 2, 0, 1], 4)) == 4  # past the horizon: the future is known
    code, out, err = cli("predict", model, data, "--steps", "5", "--output", tmp_path / "o.csv")
    assert code == 3 and "the data has 4" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.csv").exists()
    hole = _with_future(two_csv, tmp_path, [1, "", 0, 1])
    code, _, err = cli("predict", model, hole, "--steps", "2")
    assert code == 3 and "'promo' is missing in future row 2" in err
    code, out, _ = cli("evaluate", model, data)
    assert code == 0 and "persistence" in out


def test_calendar_features(cli, tmp_path, two_csv):
    run = tmp_path / "c"
    code, _, _ = cli("train", two_csv, "--target", "a", "--calendar", "--window", "6",
                     "--horizon", "2", "--out", run, *TINY)
    assert code == 0
    m = rk.load(run / "model.safetensors")
    assert m.metadata["calendar"] == ["month_sin", "month_cos"]
    assert m.layers[0].input_size == 1 + 2 + 1  # target, month sin/cos, the future flag
    code, out, _ = cli("predict", run / "model.safetensors", two_csv, "--steps", "5")
    assert code == 0 and _csv_rows(out)[-1][1] == "2005-05"  # dates are known ahead
    code, _, err = cli("train", "nile", "--calendar", "--out", tmp_path / "n", *TINY)
    assert code == 3 and "yearly labels have no calendar" in err
    assert not (tmp_path / "n").exists()
    code, _, err = cli("train", two_csv, "--target", "a", "--features", "promo",
                       "--future-features", "promo", "--out", tmp_path / "d", *TINY)
    assert code == 2 and "'promo' is named twice" in err and not (tmp_path / "d").exists()


def test_backtest_two_targets_and_future_features(cli, tmp_path, two_csv):
    run = tmp_path / "bt"
    code, out, _ = cli("backtest", two_csv, "--target", "a,b", "--window", "6", "--horizon",
                       "2", "--folds", "2", "--no-classical", "--out", run,
                       "--epochs", "1", "--hidden", "4", "--quiet")
    assert code == 0 and "target b:" in out
    m = json.loads((run / "metrics.json").read_text())
    a, b = m["per_target"]["a"]["overall"], m["per_target"]["b"]["overall"]
    assert m["overall"]["naive"]["mase"] == pytest.approx((a["naive"]["mase"]
                                                           + b["naive"]["mase"]) / 2)
    _, _, col_b, _ = _series()
    errs = [abs(col_b[o + h] - col_b[o - 1]) for o in (56, 58) for h in (0, 1)]
    assert b["naive"]["mae"] == pytest.approx(np.mean(errs), rel=1e-6)  # b's own naive
    data = _with_future(two_csv, tmp_path, [1, 2])
    code, out, _ = cli("backtest", data, "--target", "a", "--future-features", "promo",
                       "--calendar", "--window", "6", "--horizon", "2", "--folds", "2",
                       "--no-classical", "--out", tmp_path / "bf", "--epochs", "1", "--hidden",
                       "4", "--quiet")
    assert code == 0 and "LSTM(4)" in out
    folds = json.loads((tmp_path / "bf" / "metrics.json").read_text())["folds"]
    assert [f["test"] for f in folds] == [[56, 58], [58, 60]]  # the future rows are not folds


def test_overall_table_says_its_unit(cli, tmp_path, two_csv):
    run = tmp_path / "u"
    code, _, _ = cli("train", two_csv, "--target", "a,b", "--window", "6", "--out", run, *TINY)
    m = json.loads((run / "metrics.json").read_text())
    assert code == 0 and m["unit"] == "MAE, RMSE in training standard deviations"
    assert "model (MAE, RMSE in training standard deviations)" in (run / "report.html"
                                                                    ).read_text()
