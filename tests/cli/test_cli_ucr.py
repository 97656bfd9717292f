"""``rnnkit train ucr:PATH``: a UCR problem from its own .tsv files, held out by its own
test split."""

import json
from pathlib import Path

UCR_TOY = Path(__file__).parents[1] / "data" / "ucr" / "Toy"


def test_train_on_ucr_files_tests_on_the_archive_test_split(cli, tmp_path):
    run = tmp_path / "ucr"
    code, _, _ = cli("train", f"ucr:{UCR_TOY}", "--epochs", "1", "--hidden", "3", "--out", run,
                     "--quiet")
    assert code == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "classify" and metrics["n"] == 2  # Toy_TEST.tsv's two cases
    assert metrics["dataset"] == f"ucr:{UCR_TOY.resolve()}"
