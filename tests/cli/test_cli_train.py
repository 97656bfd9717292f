"""``rnnkit train`` on each task, then the commands that use the model it writes."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from rnnkit.data import load_dataset

TINY = ["--epochs", "2", "--hidden", "4", "--quiet"]  # about a second per run


def _files_ok(out, *names):
    for name in names:
        assert (out / name).is_file(), name
        assert (out / name).stat().st_size > 0, name


def test_default_task_is_sunspots_forecast_with_a_result_table(cli, tmp_path):
    code, out, _ = cli("train", "--epochs", "2", "--out", tmp_path / "run", "--quiet")
    assert code == 0
    assert "sunspots" in out and "persistence" in out and "seasonal naive (11)" in out
    assert "RMSE" in out and "run folder:" in out
    _files_ok(
        tmp_path / "run",
        "model.safetensors",
        "config.toml",
        "metrics.json",
        "history.csv",
        "loss.png",
        "forecast.png",
    )
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["task"] == "forecast" and metrics["epochs"] == 2
    assert set(metrics["scores"]) == {"LSTM(32)", "persistence", "seasonal naive (11)", "drift"}


def test_forecast_bundled_then_evaluate_predict_info(cli, tmp_path):
    run = tmp_path / "nile"
    code, out, _ = cli("train", "nile", "--window", "5", "--out", run, "--json", *TINY)
    assert code == 0
    doc = json.loads(out)  # --json: one JSON document on stdout, nothing else
    assert doc["task"] == "forecast" and doc["run_folder"] == str(run)
    model = run / "model.safetensors"
    code, out, _ = cli("evaluate", model, "nile")
    assert code == 0 and "persistence" in out
    code, out, _ = cli("predict", model, "--steps", "3")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["step", "time", "forecast_value"]
    assert [r[1] for r in rows[1:]] == ["1971", "1972", "1973"]  # years continue past 1970
    code, out, _ = cli("info", model, "--json")
    info = json.loads(out)
    assert info["metadata"]["window"] == 5 and info["parameters"] > 0


def test_forecast_user_csv_with_features_and_predict_to_file(cli, tmp_path, series_csv):
    run = tmp_path / "sales"
    code, out, _ = cli(
        "train",
        series_csv,
        "--target",
        "sales",
        "--features",
        "temp",
        "--window",
        "6",
        "--out",
        run,
        *TINY,
    )
    assert code == 0 and "persistence" in out
    model = run / "model.safetensors"
    code, _, _ = cli("predict", model, series_csv, "--output", tmp_path / "f.csv", "--quiet")
    assert code == 0
    assert (tmp_path / "f.csv").read_text().startswith("step,time,forecast_sales")
    # features have no known future: more steps than the horizon is refused, clearly
    code, _, err = cli("predict", model, series_csv, "--steps", "4")
    assert code == 3 and "temp" in err and "--horizon" in err


def test_forecast_univariate_csv_recursive_steps(cli, tmp_path, series_csv):
    run = tmp_path / "uni"
    assert (
        cli("train", series_csv, "--target", "sales", "--window", "6", "--out", run, *TINY)[0] == 0
    )
    code, out, _ = cli("predict", run / "model.safetensors", series_csv, "--steps", "5", "--json")
    doc = json.loads(out)
    assert code == 0 and len(doc["rows"]) == 5
    assert all(np.isfinite(r[2]) for r in doc["rows"])


def test_classify_digits(cli, tmp_path):
    run = tmp_path / "digits"
    code, out, _ = cli(
        "train",
        "digits",
        "--epochs",
        "1",
        "--hidden",
        "8",
        "--batch-size",
        "64",
        "--out",
        run,
        "--quiet",
    )
    assert code == 0 and "majority class" in out and "ACCURACY" in out
    _files_ok(run, "confusion.png", "loss.png")
    code, out, _ = cli("evaluate", run / "model.safetensors", "--json")
    assert code == 0 and json.loads(out)["n"] == len(load_dataset("digits").y)


def test_classify_long_format_csv_and_predict(cli, tmp_path, long_csv):
    run = tmp_path / "moves"
    code, out, _ = cli("train", long_csv, "--out", run, "--val", "0.2", *TINY)
    assert code == 0 and "majority class" in out
    code, out, _ = cli("predict", run / "model.safetensors", long_csv)
    rows = list(csv.reader(io.StringIO(out)))
    assert code == 0 and rows[0] == ["sequence_id", "predicted", "probability"]
    assert len(rows) == 25 and {r[1] for r in rows[1:]} <= {"up", "down"}


def test_classify_npz_with_lengths(cli, tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 6, 2))
    path = tmp_path / "seqs.npz"
    np.savez(path, X=X, y=np.arange(30) % 3, lengths=4 + np.arange(30) % 3)
    code, out, _ = cli("train", path, "--out", tmp_path / "npz", *TINY)
    assert code == 0 and "3 classes" in out


def test_charlm_then_generate_evaluate_info(cli, tmp_path, text_file):
    run = tmp_path / "lm"
    code, out, _ = cli("train", text_file, "--seq-len", "20", "--out", run, *TINY)
    assert code == 0 and "bits/char" in out and "unigram" in out
    _files_ok(run, "sample.txt", "loss.png")
    model = run / "model.safetensors"
    code, out, _ = cli("generate", model, "--prime", "the ", "--length", "30", "--seed", "1")
    assert code == 0 and out.startswith("the ") and len(out.rstrip("\n")) == 34
    code, out, _ = cli("generate", model, "--length", "10", "--temperature", "0", "--json")
    assert code == 0 and len(json.loads(out)["text"]) == 10
    code, out, _ = cli("evaluate", model, text_file)
    assert code == 0 and "unigram" in out
    code, out, _ = cli("info", model)
    assert code == 0 and "Embedding" in out and "vocabulary" in out


def test_config_file_flags_override_and_resume(cli, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('dataset = "nile"\nwindow = 4\nhidden = 3\nepochs = 5\ncell = "gru"\n')
    run = tmp_path / "cfg"
    code, _, _ = cli("train", "--config", cfg, "--epochs", "1", "--out", run, "--quiet")
    assert code == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and metrics["settings"]["cell"] == "gru"
    assert "window = 4" in (run / "config.toml").read_text()
    # continue the same run from its checkpoint up to 3 epochs in all
    code, _, _ = cli(
        "train",
        "--config",
        run / "config.toml",
        "--epochs",
        "3",
        "--resume",
        run / "checkpoint.safetensors",
        "--out",
        tmp_path / "more",
        "--quiet",
    )
    assert code == 0
    assert json.loads((tmp_path / "more" / "metrics.json").read_text())["epochs"] == 3


def test_diagnose_writes_gradient_flow(cli, tmp_path):
    run = tmp_path / "diag"
    code, _, _ = cli("train", "nile", "--window", "8", "--diagnose", "--out", run, *TINY)
    assert code == 0
    _files_ok(run, "gradient_flow.png", "gradient_flow_training.png", "gradient_flow.json")
    flow = json.loads((run / "metrics.json").read_text())["gradient_flow"]
    report = json.loads((run / "gradient_flow.json").read_text())
    assert report["verdict"] == flow["verdict"]
    # the verdict and horizon follow from the report's own r_k by the documented rule
    (f,) = report["flows"]
    r = np.array([np.nan if v is None else v for v in f["log10_grad_from_end"]])
    out = np.abs(r) > 3
    expect = ("healthy", len(r)) if not out.any() else (
        "exploding" if r[np.argmax(out)] > 0 else "vanishing", int(np.argmax(out)))
    assert (f["verdict"], f["horizon"]) == expect
    assert flow["verdict"] == expect[0] and f"verdict: {expect[0]}" in flow["summary"]


def test_ctrl_c_saves_the_model_and_exits_130(cli, tmp_path, monkeypatch):
    import os
    import signal

    from rnnkit.cli import common

    original = common.ProgressDisplay.__call__

    def interrupt_on_first_batch(self, event, info):
        if event == "batch":
            os.kill(os.getpid(), signal.SIGINT)  # fit's handler turns it into a clean stop
        original(self, event, info)

    monkeypatch.setattr(common.ProgressDisplay, "__call__", interrupt_on_first_batch)
    run = tmp_path / "int"
    code, _, err = cli(
        "train", "nile", "--window", "4", "--out", run, "--epochs", "3", "--hidden", "3"
    )
    assert code == 130
    assert "interrupted" in err and "model saved" in err
    assert (run / "model.safetensors").is_file()


def test_progress_leaves_the_first_epoch_out_of_the_later_etas(monkeypatch):
    import io

    from rnnkit.cli import common

    clock = iter([0.0, 0.0, 100.0, 102.0])  # made, begin; epoch 1 compiles 100 s; epoch 2 2 s
    monkeypatch.setattr(common.time, "perf_counter", lambda: next(clock))
    for compiling, loading, first, later in ((True, False, "compiling kernels (once)", "ETA 16s"),
                                             (False, True, "100.0s", "ETA 16s"),
                                             (False, False, "ETA 15m00s", "ETA 16s")):
        out = io.StringIO()
        show = common.ProgressDisplay(False, "rmse", stream=out, compiling=compiling,
                                      loading=loading)
        show("begin", {"epochs": 10, "batches": 3, "start_epoch": 0})
        show("epoch", {"epoch": 1, "loss": 0.5, "time": 100.0})
        show("epoch", {"epoch": 2, "loss": 0.4, "time": 2.0})
        lines = out.getvalue().splitlines()
        assert lines[0].endswith(first) and lines[1].endswith(later), lines
        clock = iter([0.0, 0.0, 100.0, 102.0])


@pytest.mark.parametrize("on_disk", [True, False, None])
def test_the_first_epoch_shows_no_eta_when_it_compiles_or_loads_the_kernels(cli, tmp_path,
                                                                            monkeypatch, on_disk):
    from rnnkit import kernels

    monkeypatch.setattr(kernels, "compiled_on_disk", lambda kind: on_disk)  # None: no kernel
    code, _, err = cli("train", "nile", "--window", "5", "--epochs", "2", "--hidden", "2",
                       "--out", tmp_path / "run")
    first, second = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert code == 0 and "ETA" in second
    assert ("ETA" in first) is (on_disk is None), first


def test_weight_decay_reaches_the_optimizer_and_is_saved(cli, tmp_path, monkeypatch):
    import rnnkit as rk

    made = []
    real = rk.optim.get_optimizer

    def spy(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(rk.optim, "get_optimizer", spy)
    run = tmp_path / "wd"
    code, _, _ = cli("train", "nile", "--window", "4", "--optimizer", "sgd", "--weight-decay",
                     "0.25", "--out", run, *TINY)
    assert code == 0
    assert isinstance(made[0], rk.SGD) and made[0].weight_decay == 0.25
    assert "weight_decay = 0.25" in (run / "config.toml").read_text()
    meta = rk.load(run / "model.safetensors").metadata
    assert meta["trained"]["settings"]["weight_decay"] == 0.25
    code, _, err = cli("train", "nile", "--weight-decay", "-1", *TINY)
    assert code != 0 and "weight-decay" in err and "-1" in err


def test_regularisation_flags_build_the_model_and_are_saved(cli, tmp_path):
    import rnnkit as rk

    run = tmp_path / "reg"
    code, _, _ = cli("train", "nile", "--window", "4", "--layers", "2", "--dropout", "0.2",
                     "--recurrent-dropout", "0.1", "--zoneout", "0.05", "--layer-norm",
                     "--peepholes", "--proj-size", "2", "--out", run, *TINY)
    assert code == 0
    model = rk.load(run / "model.safetensors")
    lstm = model.layers[0]
    assert (lstm.recurrent_dropout, lstm.zoneout, lstm.layer_norm, lstm.peepholes,
            lstm.proj_size) == (0.1, (0.05, 0.05), True, True, 2)
    assert [type(layer).__name__ for layer in model.layers] == [
        "LSTM", "Dropout", "LSTM", "Dropout", "Dense"]
    text = (run / "config.toml").read_text()
    for line in ("dropout = 0.2", "recurrent_dropout = 0.1", "layer_norm = true",
                 "proj_size = 2"):
        assert line in text
    code, _, err = cli("train", "nile", "--cell", "gru", "--peepholes", *TINY)
    assert code != 0 and "peepholes is not an option of GRU" in err
    code, _, err = cli("train", "nile", "--dropout", "1", *TINY)
    assert code != 0 and "dropout" in err and "[0, 1)" in err
