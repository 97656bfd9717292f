"""report.html: written by every run, self-contained, and several runs side by side."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

TINY = ["--epochs", "2", "--hidden", "4", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from rnnkit.cli import main

    base = tmp_path_factory.mktemp("runs")
    assert main(["train", "nile", "--window", "5", "--horizon", "2", "--loss", "quantile",
                 "--out", str(base / "nile"), *TINY]) == 0
    assert main(["backtest", "nile", "--window", "5", "--folds", "2", "--no-classical",
                 "--out", str(base / "bt"), *TINY]) == 0
    return base


def test_every_run_writes_a_self_contained_report(runs):
    for name in ("nile", "bt"):
        page = (runs / name / "report.html").read_text(encoding="utf-8")
        assert page.startswith("<!DOCTYPE html>") and "data:image/png;base64," in page
        assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)  # nothing from a network
        assert "MASE" in page and "class='best'" in page
    assert "Intervals" in (runs / "nile" / "report.html").read_text(encoding="utf-8")
    assert "Backtest folds" in (runs / "bt" / "report.html").read_text(encoding="utf-8")


def test_report_puts_runs_side_by_side(cli, runs, tmp_path):
    out = tmp_path / "both.html"
    code, _, _ = cli("report", runs / "nile", runs / "bt", "--output", out, "--quiet")
    page = out.read_text(encoding="utf-8")
    assert code == 0 and "2 runs side by side" in page and "Overview" in page


def test_report_bad_input(cli, runs, tmp_path):
    code, _, err = cli("report", runs / "nile", runs / "bt")
    assert code == 3 and "give --output" in err
    code, _, err = cli("report", tmp_path, "--output", tmp_path / "x.html")
    assert code == 3 and "no metrics.json" in err and not (tmp_path / "x.html").exists()
    (tmp_path / "metrics.json").write_text("[1, 2]")
    code, _, err = cli("report", tmp_path)
    assert code == 3 and "expected an object with a 'task'" in err


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_report_renders_in_headless_chromium(runs, tmp_path):
    shot = tmp_path / "shot.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                    f"--screenshot={shot}", "--window-size=1200,1600",
                    (runs / "nile" / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=False)
    assert shot.is_file() and shot.stat().st_size > 20_000  # a blank page is about 9 kB


def test_report_escapes_what_the_files_say(tmp_path):
    from rnnkit.cli.report import render

    doc = {"task": "forecast", "dataset": "<script>x</script>", "verdict": "a & b",
           "scores": {"<i>m</i>": {"mae": 1.0}}}
    page = render([(tmp_path, doc)])
    assert "<script>" not in page and "&lt;script&gt;" in page and "a &amp; b" in page
    assert "&lt;i&gt;m&lt;/i&gt;" in page


def test_report_warns_when_the_run_folder_is_not_one_finished_run(cli, runs, tmp_path):
    """A late failure (a full disk) leaves new files beside an earlier run's; the manifest
    says so, and `rnnkit report` tells, as it does for a file changed after the run."""
    import json

    run = tmp_path / "run"
    shutil.copytree(runs / "nile", run)
    for _ in range(2):  # the report rewrites report.html: that is no change to warn about
        code, _, err = cli("report", run)
        assert code == 0 and "warning" not in err
    assert cli("report", runs / "bt", "-o", tmp_path / "bt.html")[2].count("warning") == 0
    (run / "metrics.json").write_text((run / "metrics.json").read_text() + " ")
    code, _, err = cli("report", run)
    assert code == 0 and re.search(r"warning: .*run: metrics.json changed since the run "
                                   r"finished \(its sha256", err), err
    manifest = json.loads((run / "manifest.json").read_text())
    for change, message in [
        ({"state": "running", "updated": "T"}, r"manifest.json says 'running' \(updated T\): "
                                               r"the run did not finish"),
        ({"files": {"../nile/metrics.json": {}}}, r"lists '../nile/metrics.json', which is not"),
        ({"files": {"gone.png": {"sha256": "0"}}}, r"gone.png is missing, though manifest.json"),
    ]:
        (run / "manifest.json").write_text(json.dumps({**manifest, **change}))
        code, _, err = cli("report", run)
        assert code == 0 and re.search(message, err), err
    (run / "manifest.json").write_text("[1")
    assert "manifest.json cannot be read" in cli("report", run)[2]
