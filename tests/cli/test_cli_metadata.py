"""What a valid model file says in its ``user`` metadata is checked before any command uses
it: each wrong field is a ModelFileError (exit 4) naming it, and a model file never chooses a
path for rnnkit to read."""

import copy
import os

import pytest

import rnnkit as rk
from helpers_rnnkit import MAKERS
from rnnkit.cli.metadata import check_metadata
from rnnkit.errors import ModelFileError


@pytest.mark.parametrize("task", MAKERS)
def test_what_train_writes_is_accepted(task):
    model, meta = MAKERS[task]()
    assert check_metadata(copy.deepcopy(meta), model) == meta


BAD = [  # (task, field, value, start of the message); value None drops the field
    ("forecast", "trained", "x", 'user.trained: expected an object, got "x"'),
    ("forecast", "window", 0, "user.window: expected an integer >= 1, got 0"),
    ("forecast", "window", -5, "user.window: expected an integer >= 1, got -5"),
    ("forecast", "window", 2.5, "user.window: expected an integer >= 1, got 2.5"),
    ("forecast", "horizon", 0, "user.horizon: expected an integer >= 1, got 0"),
    ("forecast", "horizon", 2, "user.horizon: expected 1 (the model's output size), got 2"),
    ("forecast", "features", ["t"], "user.features: expected 0 names (the model reads 1"),
    ("forecast", "scaler", {"mean": [1.0, 2.0], "scale": [1.0]},
     "user.scaler.mean: expected 1 values (one per column), got 2"),
    ("forecast", "scaler", {"mean": [1.0], "scale": [0.0]}, "user.scaler.scale: expected positive"),
    ("forecast", "missing", "guess", 'user.missing: expected one of "interpolate"'),
    ("forecast", "relative", "yes", 'user.relative: expected true or false, got "yes"'),
    ("forecast", "target", None, "user.target: missing (required)"),
    ("forecast", "task", "regress", 'user.task: expected one of "forecast"'),
    ("forecast", "extra", 1, 'user: unknown key "extra"'),
    ("forecast", "loss", "median", 'user.loss: expected one of "mse"'),
    ("forecast", "strategy", "both", 'user.strategy: expected one of "direct"'),
    ("forecast", "quantiles", [0.9, 0.1], "user.quantiles: expected increasing levels"),
    ("forecast", "loss", "gaussian", "user.horizon: expected a head of 1 step(s) x 2 output(s)"),
    ("forecast", "mase_scale", -1.0, "user.mase_scale: expected"),
    ("classify", "classes", "abc", 'user.classes: expected a list of at least 2 items, got "abc"'),
    ("classify", "classes", [], "user.classes: expected a list of at least 2 items, got a list"),
    ("classify", "classes", ["a", "b"], "user.classes: expected 3 classes (the model's output "
                                        "size), got 2"),
    ("classify", "classes", ["a", "a", "b"], "user.classes: expected distinct labels"),
    ("classify", "classes", ["a", 1, "b"], "user.classes: expected distinct labels of one type"),
    ("classify", "classes", [[1], "a", "b"], "user.classes[0]: expected an integer or a string"),
    ("classify", "majority", "z", 'user.majority: expected one of the classes, got "z"'),
    ("classify", "n_features", 3, "user.n_features: expected 2 (the model's input size), got 3"),
    ("classify", "scaler", {"mean": [0.0], "scale": [1.0]}, "user.scaler.mean: expected 2 values"),
    ("charlm", "vocab", {"level": "char", "tokens": "abc"}, "user.vocab.tokens: expected a list"),
    ("charlm", "vocab", {"level": "char", "tokens": ["a", "<unk>", "b", " "]},
     'user.vocab.tokens: expected distinct tokens, the first "<unk>"'),
    ("charlm", "vocab", {"level": "char", "tokens": ["<unk>", "a", "b"]},
     "user.vocab.tokens: expected as many tokens as the model's vocabulary (4 in, 4 out), got 3"),
    ("charlm", "vocab", {"level": "char", "tokens": ["<unk>", "a", "bb", " "]},
     "user.vocab.tokens: expected single characters"),
    ("charlm", "unigram_counts", [1, 2], "user.unigram_counts: expected 4 counts (one per token)"),
    ("charlm", "unigram_counts", [1, 2, -3, 4], "user.unigram_counts[2]: expected an integer >= 0"),
    ("charlm", "seq_len", True, "user.seq_len: expected an integer >= 1, got true"),
]


@pytest.mark.parametrize("task,field,value,message", BAD)
def test_a_wrong_field_is_named(task, field, value, message):
    model, meta = MAKERS[task]()
    if value is None:
        del meta[field]
    else:
        meta[field] = value
    with pytest.raises(ModelFileError) as e:
        check_metadata(meta, model)
    assert str(e.value).startswith(message)


def test_horizon_is_the_model_output_size():
    model = rk.Sequential([rk.LSTM(3), rk.Dense(2)])  # two steps at once
    model.build(1)
    _, meta = MAKERS["forecast"]()
    assert check_metadata(dict(meta, horizon=2), model)["horizon"] == 2
    with pytest.raises(ModelFileError, match=r"^user\.horizon: expected 2 \(the model's output "
                                             r"size\), got 1$"):
        check_metadata(meta, model)


def saved(tmp_path, task, **changes):
    model, meta = MAKERS[task]()
    meta.update(changes)
    path = tmp_path / f"{task}.safetensors"
    model.save(path, metadata=meta)
    return path


@pytest.mark.parametrize("command", ["info", "predict", "evaluate", "generate"])
def test_every_command_checks_the_metadata(cli, tmp_path, command):
    task, field, bad = (("charlm", "vocab", {"level": "char", "tokens": 5})
                        if command == "generate" else ("classify", "classes", "abc"))
    code, _, err = cli(command, saved(tmp_path, task, **{field: bad}))
    assert code == 4 and f"user.{field}" in err, err


def test_info_ignores_metadata_that_rnnkit_train_did_not_write(cli, tmp_path):
    model, _ = MAKERS["forecast"]()
    model.save(tmp_path / "m.safetensors", metadata={"classes": "abc", "vocab": 5})
    code, out, _ = cli("info", tmp_path / "m.safetensors")
    assert code == 0 and "classes" not in out


@pytest.mark.parametrize("source", ["/dev/zero", "fifo", "/etc/passwd", "../sunspots.csv",
                                    "ucr:../../etc"])
def test_without_data_a_model_file_never_chooses_a_path(cli, tmp_path, source):
    if source == "fifo":
        source = str(tmp_path / "fifo")
        os.mkfifo(source)
    path = saved(tmp_path, "forecast", source=source, dataset=source)
    for command in ("evaluate", "predict"):
        code, _, err = cli(command, path)
        assert code != 0 and "opens only paths you give" in err, err


def test_without_data_a_bundled_source_is_read(cli, tmp_path):
    code, out, err = cli("evaluate", saved(tmp_path, "forecast"))
    assert code == 0 and "sunspots" in out, err


def test_info_on_a_csv_says_it_is_not_a_model_file(cli, tmp_path):
    (tmp_path / "data.csv").write_text("date,value\n2000,1\n2001,2\n")
    code, _, err = cli("info", tmp_path / "data.csv")
    assert code == 4 and "data.csv: not an rnnkit model file" in err and "declares" not in err
