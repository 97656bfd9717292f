"""Panel data (``--series-id``): one global model over many series in a long CSV."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

import rnnkit as rk
from rnnkit.cli.task_panel import _with_code
from rnnkit.data.panel import read_panel_csv
from rnnkit.errors import DataError

TINY = ["--epochs", "2", "--hidden", "4", "--quiet"]
LEVELS = {"A": (10, 3, 40), "B": (500, 80, 40), "C": (50, 10, 36)}  # level, swing, rows


@pytest.fixture
def panel_csv(tmp_path):
    rng = np.random.default_rng(1)
    rows = ["store,date,sales,promo"]
    for sid, (level, amp, n) in LEVELS.items():
        for i in range(n):
            v = level + amp * np.sin(2 * np.pi * i / 12) + rng.normal(0, amp * 0.05)
            rows.append(f"{sid},{2000 + i // 12}-{1 + i % 12:02d},{v:.3f},{i % 2}")
    path = tmp_path / "panel.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_reader_keeps_series_apart(tmp_path):
    p = tmp_path / "p.csv"
    p.write_text("id,v\na,1\nb,10\na,2\nb,\na,3\nb,30\n")  # interleaved rows
    panel = read_panel_csv(p, series_id="id", target="v")
    assert panel.ids == ["a", "b"]
    np.testing.assert_array_equal(panel.series[0].values, [1, 2, 3])
    np.testing.assert_array_equal(panel.series[1].values, [10, 20, 30])  # filled within b
    with pytest.raises(DataError, match="at least 2 series"):
        p.write_text("id,v\na,1\na,2\n")
        read_panel_csv(p, series_id="id", target="v")


def test_one_global_model_scaled_per_series(cli, tmp_path, panel_csv):
    run = tmp_path / "pan"
    code, out, _ = cli("train", panel_csv, "--series-id", "store", "--target", "sales",
                       "--window", "12", "--horizon", "2", "--out", run, *TINY)
    assert code == 0 and "series B:" in out
    m = json.loads((run / "metrics.json").read_text())
    assert list(m["per_series"]) == ["A", "B", "C"]
    model = rk.load(run / "model.safetensors")
    meta = model.metadata
    assert model.layers[0].input_size == 1 + 3  # the target and the series' one-hot code
    # each series' scaler learns from its own training rows only
    text = panel_csv.read_text().splitlines()[1:]
    for j, (sid, (_, _, n)) in enumerate(LEVELS.items()):
        v = np.array([float(r.split(",")[2]) for r in text if r.startswith(sid + ",")])
        n_train = n - round(n * 0.1) - round(n * 0.2)
        assert meta["series_scalers"][j]["mean"][0] == pytest.approx(v[:n_train].mean())
    # B's persistence scores are B's own, in B's units: no window crosses two series
    b = np.array([float(r.split(",")[2]) for r in text if r.startswith("B,")])
    first = 40 - round(40 * 0.2)
    errs = [abs(b[o + h] - b[o - 1]) for o in range(first, 39) for h in (0, 1)]
    assert m["per_series"]["B"]["scores"]["persistence"]["mae"] == pytest.approx(
        np.mean(errs), rel=1e-4)
    code, out, _ = cli("predict", run / "model.safetensors", panel_csv, "--steps", "2")
    rows = list(csv.reader(io.StringIO(out)))
    assert code == 0 and rows[0] == ["store", "step", "time", "forecast_sales"]
    assert [r[0] for r in rows[1:]] == ["A", "A", "B", "B", "C", "C"]
    assert rows[5][2] == "2003-01" and 300 < float(rows[3][3]) < 700  # B in B's units
    code, out, _ = cli("evaluate", run / "model.safetensors", panel_csv)
    assert code == 0 and "series C:" in out


def test_the_series_code_reaches_the_model():
    X = np.zeros((2, 3, 1))
    out = _with_code(X, np.eye(3)[1])
    assert out.shape == (2, 3, 4) and (out[:, :, 2] == 1).all() and out[:, :, 3].sum() == 0


def test_panel_bad_input(cli, tmp_path, panel_csv):
    short = tmp_path / "short.csv"
    lines = panel_csv.read_text().splitlines()
    keep = [line for line in lines[1:] if not line.startswith("C,")]
    keep += [line for line in lines[1:] if line.startswith("C,")][:6]
    short.write_text("\n".join([lines[0], *keep]) + "\n")
    code, _, err = cli("train", short, "--series-id", "store", "--target", "sales", "--window",
                       "12", "--out", tmp_path / "s", *TINY)
    assert code == 3 and "series 'C' has 6 rows, too few for --window 12" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "s").exists()
    code, _, err = cli("train", "nile", "--series-id", "store", "--out", tmp_path / "n", *TINY)
    assert code == 2 and "long CSV" in err and not (tmp_path / "n").exists()
    code, _, err = cli("train", panel_csv, "--series-id", "sales", "--target", "sales",
                       "--out", tmp_path / "t", *TINY)
    assert code == 3 and "also a target" in err and not (tmp_path / "t").exists()


def test_training_windows_carry_their_own_series_code(panel_csv):
    from rnnkit.cli.settings import Settings
    from rnnkit.cli.task_forecasts import prepare

    panel = read_panel_csv(panel_csv, series_id="store", target="sales", date="date")
    s = Settings(target="sales", series_id="store", window=12, horizon=2, date="date")
    p = prepare(panel, s, "panel.csv")
    codes = p.X[:, 0, 1:]  # (M, 3): one-hot rows
    assert (codes.sum(axis=1) == 1).all()
    counts = codes.sum(axis=0).tolist()
    # train windows per series: rows - val - test parts, less window + horizon - 1
    assert counts == [n - round(n * 0.1) - round(n * 0.2) - 13 for _, _, n in LEVELS.values()]


def test_every_series_dates_are_checked(cli, tmp_path, panel_csv):
    text = panel_csv.read_text().replace("C,2000-05,", "C,2000-01,")  # back in time
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    code, _, err = cli("train", bad, "--series-id", "store", "--target", "sales", "--date",
                       "date", "--window", "6", "--out", tmp_path / "b", *TINY)
    assert code == 3 and "series 'C'" in err and "dates must increase" in err
    assert not (tmp_path / "b").exists()
