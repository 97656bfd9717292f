"""``rnnkit train ucr:PATH``: a UCR problem from its own .tsv files, held out by its own
test split."""

import json
from pathlib import Path

import numpy as np
import pytest

import rnnkit as rk

UCR_TOY = Path(__file__).parents[1] / "data" / "ucr" / "Toy"


def test_train_on_ucr_files_tests_on_the_archive_test_split(cli, tmp_path):
    run = tmp_path / "ucr"
    code, _, _ = cli("train", f"ucr:{UCR_TOY}", "--epochs", "1", "--hidden", "3", "--out", run,
                     "--quiet")
    assert code == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "classify" and metrics["n"] == 2  # Toy_TEST.tsv's two cases
    assert metrics["dataset"] == f"ucr:{UCR_TOY.resolve()}"


def test_classify_scaler_and_majority_come_from_the_training_part(cli, tmp_path):
    """Training cases: labels 1, 1, 2 (majority 1); test cases: 2, 2, 2. The majority-class
    baseline must predict 1 (accuracy 0 on the test part), and the scaler must have learned
    the training cases' values only."""
    folder = tmp_path / "Maj"
    folder.mkdir()
    train = [("1", [0.0, 1.0, 2.0]), ("1", [1.0, 2.0, 3.0]), ("2", [4.0, 5.0, 6.0])]
    test = [("2", [10.0, 20.0, 30.0])] * 3
    for part, cases in (("TRAIN", train), ("TEST", test)):
        lines = ["\t".join([label, *map(str, values)]) for label, values in cases]
        (folder / f"Maj_{part}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = tmp_path / "maj"
    code, _, _ = cli("train", f"ucr:{folder}", "--epochs", "1", "--hidden", "3", "--out", run,
                     "--val", "0", "--quiet")
    assert code == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n"] == 3 and metrics["scores"]["majority class"]["accuracy"] == 0.0
    steps = np.array([v for _, values in train for v in values])
    info = rk.load(run / "model.safetensors").metadata
    assert info["majority"] == 1
    assert info["scaler"]["mean"] == [pytest.approx(steps.mean(), rel=1e-12)]
    assert info["scaler"]["scale"] == [pytest.approx(steps.std(), rel=1e-12)]
