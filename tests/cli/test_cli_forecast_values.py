"""``rnnkit train`` on a series, checked by value: the chronological split, the scaler
learned from the training rows only, which windows train (none whose targets reach into the
validation rows), and the scores of the model and of persistence recomputed here from the
raw numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rnnkit as rk

N, W, H = 50, 4, 2  # val 0.1, test 0.2: rows 0-34 train, 35-39 validation, 40-49 test


@pytest.fixture
def series(tmp_path):
    v = 10 + 3 * np.sin(0.7 * np.arange(N)) + 0.2 * np.arange(N)
    path = tmp_path / "s.csv"
    path.write_text("value\n" + "\n".join(f"{x:.4f}" for x in v) + "\n", encoding="utf-8")
    return path, np.round(v, 4)


def windows(scaled, rows):
    """Relative windows (the CLI's default) whose first target row is each of ``rows``."""
    X = np.stack([scaled[r - W : r] for r in rows])[:, :, None]
    y = np.stack([scaled[r : r + H] for r in rows])
    return X - X[:, -1:, :], y - X[:, -1:, 0], X


def test_forecast_split_scaler_windows_and_scores(cli, tmp_path, series, monkeypatch):
    path, v = series
    seen = {}
    fit = rk.Sequential.fit

    def spy(self, X, y, **options):
        seen.update(X=X, y=y, val=options["validation_data"])
        return fit(self, X, y, **options)

    monkeypatch.setattr(rk.Sequential, "fit", spy)
    run = tmp_path / "run"
    code, _, _ = cli("train", path, "--target", "value", "--window", W, "--horizon", H,
                     "--epochs", "1", "--hidden", "3", "--out", run, "--quiet")
    assert code == 0
    model = rk.load(run / "model.safetensors")
    mean, std = v[:35].mean(), v[:35].std()  # the training rows only
    assert model.metadata["scaler"] == {"mean": [pytest.approx(mean, rel=1e-12)],
                                        "scale": [pytest.approx(std, rel=1e-12)]}
    scaled = (v - mean) / std
    # training windows: every target row < 35, so first targets at rows 4..33 (30 windows)
    Xtr, ytr, _ = windows(scaled, range(W, 34))
    np.testing.assert_allclose(seen["X"], Xtr, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(seen["y"], ytr, rtol=1e-6, atol=1e-6)
    Xva, yva, _ = windows(scaled, range(35, 39))  # targets within rows 35..39
    np.testing.assert_allclose(seen["val"][0], Xva, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(seen["val"][1], yva, rtol=1e-6, atol=1e-6)
    # the test part: first targets at rows 40..48, the scores in original units
    rows = range(40, N - H + 1)
    Xte, _, raw = windows(scaled, rows)
    actual = np.stack([v[r : r + H] for r in rows])
    persistence = np.repeat(v[[r - 1 for r in rows]][:, None], H, axis=1)
    pred = (model.predict(Xte) + raw[:, -1:, 0]) * std + mean
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n"] == len(rows) == 9
    expect = {"persistence": persistence, "LSTM(3)": pred}
    for name, forecast in expect.items():
        assert metrics["scores"][name]["rmse"] == pytest.approx(
            np.sqrt(np.mean((forecast - actual) ** 2)), rel=1e-6)
        assert metrics["scores"][name]["mae"] == pytest.approx(
            np.mean(np.abs(forecast - actual)), rel=1e-6)
