"""``rnnkit train`` killed with SIGKILL in the middle of a run, then ``--resume RUN_FOLDER``:
the final weights are bit for bit those of an uninterrupted run, and so are the history, the
scores and the stop decision, in each task's default configuration (only sizes made small)."""

import csv
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import rnnkit as rk
from rnnkit.checkpoint import load_checkpoint
from rnnkit.cli.runfolder import CHECKPOINT


def start(*argv):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-m", "rnnkit", "train", *map(str, argv)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill_after_epoch(run, epoch, argv, timeout=120.0):
    """Start the run, SIGKILL it once its checkpoint holds ``epoch`` epochs or more; return
    the epoch the checkpoint holds after the kill."""
    child = start(*argv, "--out", run, "--quiet")
    ckpt, seen, deadline = run / CHECKPOINT, None, time.monotonic() + timeout
    while child.poll() is None and time.monotonic() < deadline:
        if ckpt.exists() and ckpt.stat().st_mtime_ns != seen:
            seen = ckpt.stat().st_mtime_ns
            try:
                if load_checkpoint(ckpt, rk.Sequential)[2]["epoch"] >= epoch:
                    break
            except ValueError:
                pass  # the file was replaced under us: read the next one
        time.sleep(0.002)
    child.kill()
    assert child.wait() == -9, f"the run ended before the kill: {child.stderr.read()[-500:]}"
    return load_checkpoint(ckpt, rk.Sequential)[2]["epoch"]


def outcome(run):
    weights = rk.load(run / "model.safetensors").parameters()
    metrics = json.loads((run / "metrics.json").read_text())
    with open(run / "history.csv", newline="") as f:
        history = [{k: v for k, v in row.items() if k != "time"} for row in csv.DictReader(f)]
    manifest = json.loads((run / "manifest.json").read_text())
    return weights, metrics, history, manifest


def check_resume(cli, tmp_path, argv, kill_at):
    whole = tmp_path / "whole"
    assert cli("train", *argv, "--out", whole, "--quiet")[0] == 0
    run = tmp_path / "killed"
    killed_at = kill_after_epoch(run, kill_at, argv)
    ref_w, ref_m, ref_h, _ = outcome(whole)
    assert killed_at < ref_m["epochs"], "the kill must land before the run's end"
    assert json.loads((run / "manifest.json").read_text())["state"] == "running"
    resumed = start("--resume", run, "--quiet")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()[-800:]
    w, m, h, manifest = outcome(run)
    for k, v in ref_w.items():
        np.testing.assert_array_equal(w[k], v, err_msg=k)
    assert h == ref_h
    assert (m["scores"], m["epochs"], m["stop_reason"]) == (
        ref_m["scores"], ref_m["epochs"], ref_m["stop_reason"])
    assert manifest["state"] == "finished" and "model.safetensors" in manifest["files"]
    return killed_at, ref_m


def test_forecast_killed_and_resumed_equals_an_uninterrupted_run(cli, tmp_path):
    killed_at, ref = check_resume(cli, tmp_path, ["nile", "--window", "4", "--hidden", "4"], 12)
    assert ref["stop_reason"].startswith("early stopping")  # the state that has to come back
    print(f"\nforecast: killed after epoch {killed_at} of {ref['epochs']}")


def test_classify_killed_and_resumed_equals_an_uninterrupted_run(cli, tmp_path, long_csv):
    argv = [long_csv, "--target", "label", "--hidden", "6", "--lr", "0.05"]
    killed_at, ref = check_resume(cli, tmp_path, argv, 4)
    print(f"\nclassify: killed after epoch {killed_at} of {ref['epochs']}")


def test_charlm_killed_and_resumed_equals_an_uninterrupted_run(cli, tmp_path, text_file):
    argv = [text_file, "--task", "charlm", "--hidden", "8", "--seq-len", "16",
            "--embedding-dim", "4", "--epochs", "8"]
    killed_at, ref = check_resume(cli, tmp_path, argv, 3)
    print(f"\ncharlm: killed after epoch {killed_at} of {ref['epochs']}")


def test_a_second_run_into_a_locked_folder_is_refused_naming_the_holder(cli, tmp_path):
    from rnnkit.cli.runfolder import lock

    run = tmp_path / "busy"
    run.mkdir()
    held = lock(run)
    try:
        code, _, err = cli("train", "nile", "--window", "4", "--out", run, "--quiet")
        assert code == 2 and f"pid {os.getpid()}" in err and "in use" in err
    finally:
        held.release()
    stale = run / ".rnnkit-lock"  # a killed holder leaves its lock file, not its flock
    stale.write_text(json.dumps({"pid": 999999, "host": "elsewhere", "command": "rnnkit train",
                                 "started": "2020-01-01T00:00:00"}))
    orphan = run / ".model.safetensors.rnnkit-tmp-0123456789ab.tmp"
    orphan.write_bytes(b"half a file")
    code, _, err = cli("train", "nile", "--window", "4", "--hidden", "2", "--epochs", "1",
                       "--out", run)
    assert code == 0 and "took over the lock left by pid 999999 on elsewhere" in err
    assert "removed 1 temporary file" in err and not orphan.exists()
    assert stale.read_text() == ""  # released cleanly


@pytest.mark.parametrize("interrupts", [1, 2])
def test_ctrl_c_once_or_twice_keeps_history_and_resume_goes_on(cli, tmp_path, monkeypatch,
                                                                interrupts):
    import signal

    from rnnkit.cli import common, runfolder

    original = common.ProgressDisplay.__call__
    sent = []

    def ctrl_c_in_epoch_3(self, event, info):
        if event == "batch" and info["epoch"] == 2 and not sent:
            sent.append(1)
            os.kill(os.getpid(), signal.SIGINT)
        original(self, event, info)

    real_save = rk.Sequential.save

    def save_then_ctrl_c(self, *a, **k):  # the second Ctrl-C lands in the final writes
        real_save(self, *a, **k)
        if interrupts == 2:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(common.ProgressDisplay, "__call__", ctrl_c_in_epoch_3)
    monkeypatch.setattr(rk.Sequential, "save", save_then_ctrl_c)
    run = tmp_path / "int"
    argv = ["nile", "--window", "4", "--hidden", "3", "--epochs", "5"]
    code, _, err = cli("train", *argv, "--out", run)
    monkeypatch.undo()
    assert code == 130 and "rnnkit train --resume" in err
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 2  # two whole epochs
    manifest = json.loads((run / runfolder.MANIFEST).read_text())
    assert manifest["state"] == "interrupted" and "history.csv" in manifest["files"]
    assert cli("train", "--resume", run, "--quiet")[0] == 0
    whole = tmp_path / "whole"
    assert cli("train", *argv, "--out", whole, "--quiet")[0] == 0
    assert (run / "history.csv").read_text().count("\n") == 6
    for k, v in rk.load(whole / "model.safetensors").parameters().items():
        np.testing.assert_array_equal(rk.load(run / "model.safetensors").parameters()[k], v)
