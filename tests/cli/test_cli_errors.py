"""Every bad input gives one clear line on stderr, its documented exit code, no traceback."""

from __future__ import annotations

import re

import pytest

from rnnkit.cli import main

FAST = ["--epochs", "1", "--hidden", "2", "--quiet"]


@pytest.mark.parametrize(
    ("content", "argv", "code", "message"),
    [
        (
            b"year,value\n1,2\n2,\xff3\n",
            ["--target", "value"],
            3,
            r"bad.csv: expected UTF-8 text, got byte 0xff at byte offset 17 \(line 3\)",
        ),
        (b"", ["--target", "value"], 3, "bad.csv: the file is empty"),
        (
            b"year,value\n1,2\n2,3\n",
            ["--target", "sales"],
            3,
            r"bad.csv: target column 'sales' not found; available columns: \['year', 'value'\]",
        ),
        (
            b"year,value\n1,2\n2,abc\n3,4\n",
            ["--target", "value"],
            3,
            r"bad.csv: column 'value' row 2 \(line 3\): expected a number, got 'abc'",
        ),
        (
            b"year,value\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(20)),
            ["--target", "value", "--window", "30"],
            3,
            "bad.csv: --window 30 plus --horizon 1 needs at least 31 training rows",
        ),
        (b"year,value\n1,2\n", [], 3, "bad.csv: a time-series CSV needs --target COL"),
        (
            b"sequence_id,time,x,label\na,0,1,yes\na,1,2,yes\nb,0,1,yes\n",
            [],
            3,
            r"bad.csv: column 'label': expected at least 2 classes, got only \['yes'\]",
        ),
    ],
    ids=[
        "encoding",
        "empty",
        "missing-column",
        "non-numeric",
        "window-too-long",
        "no-target",
        "single-class",
    ],
)
def test_bad_data_files(cli, tmp_path, content, argv, code, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    got, _, err = cli("train", path, "--out", tmp_path / "run", *FAST, *argv)
    assert got == code
    assert err.count("\n") == 1  # one line
    assert re.search(message, err), err


def test_unknown_dataset(cli, tmp_path):
    code, _, err = cli("train", "sunspot", "--out", tmp_path / "r", *FAST)
    assert code == 3 and "unknown dataset 'sunspot'" in err and "sunspots" in err


def test_missing_file(cli, tmp_path):
    code, _, err = cli("train", tmp_path / "nope.csv", *FAST)
    assert code == 3 and "nope.csv: file not found" in err


def test_task_that_does_not_fit_the_data(cli, tmp_path):
    code, _, err = cli("train", "digits", "--task", "forecast", *FAST)
    assert code == 3 and "--task forecast needs a time series" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--hidden", "0"],
        ["--lr", "-1"],
        ["--val", "1.5"],
        ["--cell", "transformer"],
        ["--epochs", "two"],
    ],
)
def test_bad_flag_values_are_usage_errors(cli, argv):
    code, _, err = cli("train", "nile", *argv)
    assert code == 2 and argv[0] in err


def test_both_clip_flags_and_charlm_bidirectional_are_usage_errors(cli, tmp_path):
    code, _, err = cli("train", "nile", "--clip-norm", "1", "--clip-value", "1", *FAST)
    assert code == 2 and "--clip-norm or --clip-value" in err
    text = tmp_path / "t.txt"
    text.write_text("abc def " * 100)
    code, _, err = cli("train", text, "--bidirectional", "--seq-len", "10", *FAST)
    assert code == 2 and "--bidirectional cannot be used with charlm" in err


def test_config_file_errors(cli, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("hiden = 3\n")
    code, _, err = cli("train", "--config", cfg)
    assert code == 2 and "c.toml: unknown key 'hiden'" in err
    cfg.write_text("hidden = 0\n")
    code, _, err = cli("train", "--config", cfg)
    assert code == 2 and "c.toml: hidden: expected an integer >= 1, got 0" in err
    cfg.write_text("hidden = [\n")
    code, _, err = cli("train", "--config", cfg)
    assert code == 2 and "c.toml: not valid TOML" in err


def test_bad_model_files(cli, tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    for command in (["info"], ["evaluate"], ["predict"], ["generate"]):
        code, _, err = cli(*command, junk)
        assert code == 4 and "junk.safetensors" in err, command
    code, _, err = cli("info", tmp_path / "missing.safetensors")
    assert code == 4 and "missing.safetensors: no such file" in err


def test_model_for_another_task(cli, tmp_path):
    run = tmp_path / "r"
    assert cli("train", "nile", "--window", "4", "--out", run, *FAST)[0] == 0
    code, _, err = cli("generate", run / "model.safetensors")
    assert code == 3 and "is a forecast model; generate needs a character model" in err


def test_unwritable_out_is_an_io_error(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = cli("train", "nile", "--window", "4", "--out", blocker / "run", *FAST)
    assert code == 5 and "I/O error" in err


def test_internal_error_hint_and_debug_traceback(capsys, monkeypatch):
    from rnnkit.cli import datasets

    def boom(args):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(datasets, "run", boom)
    assert main(["datasets"]) == 1
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: kaboom" in err and "report" in err
    assert "Traceback" not in err
    monkeypatch.setenv("RNNKIT_DEBUG", "1")
    assert main(["datasets"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_no_command_prints_help_and_is_a_usage_error(cli):
    code, _, err = cli()
    assert code == 2 and "exit codes" in err


@pytest.mark.parametrize(("data", "argv", "message"), [
    (None, ["--hidden", "100000000"], r"--hidden 100000000: the model \(LSTM\(100000000\) on 1 "
                                      r"input feature\(s\)\) would have 4e\+16 parameters, which "
                                      r"need about 960 PB .* make --hidden smaller"),
    ("t.txt", ["--task", "charlm", "--hidden", "4", "--embedding-dim", "10000000000"],
     r"--embedding-dim 10000000000: .* make --embedding-dim smaller"),
])
def test_a_model_too_large_for_memory_is_refused_before_the_run_folder(cli, tmp_path, data, argv,
                                                                       message):
    if data:
        (tmp_path / data).write_text("the quick brown fox jumps over the lazy dog\n" * 100)
    out = tmp_path / "run"
    code, _, err = cli("train", *([tmp_path / data] if data else []), *argv, "--out", out)
    assert code == 2
    assert re.search(message, err), err
    assert not out.exists()  # no config, lock or manifest of a run that cannot start
