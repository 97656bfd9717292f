"""Classification runs report per-class scores, ROC AUC for two classes, stronger baselines."""

from __future__ import annotations

import json

TINY = ["--epochs", "2", "--hidden", "4", "--quiet"]


def test_two_class_run_reports_per_class_scores_auc_and_baselines(cli, tmp_path, long_csv):
    run = tmp_path / "moves"
    code, out, _ = cli("train", long_csv, "--out", run, "--val", "0.2", *TINY)
    assert code == 0 and "per class (model):" in out and "macro avg" in out
    m = json.loads((run / "metrics.json").read_text())
    model = next(iter(m["scores"]))
    assert 0 <= m["scores"][model]["roc_auc"] <= 1
    # sequences of several lengths: no 1-NN, the summary-feature regression instead
    assert set(m["scores"]) == {model, "majority class", "logistic regression (summary features)"}
    assert m["per_class"]["classes"] == ["down", "up"] and len(m["per_class"]["f1"]) == 2
    code, out, _ = cli("evaluate", run / "model.safetensors", long_csv, "--json")
    assert code == 0 and "roc_auc" in json.loads(out)["scores"][model]
