"""``rnnkit export MODEL --format onnx [--stream]`` driven in-process."""

import json

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")

import rnnkit as rk  # noqa: E402
from rnnkit.cli import main  # noqa: E402
from rnnkit.cli.common import EXIT_MODEL, EXIT_USAGE  # noqa: E402


def saved(tmp_path):
    model = rk.Sequential([rk.GRU(4, return_sequences=True), rk.LSTM(3), rk.Dense(2)], seed=0)
    model.build(2)
    path = tmp_path / "m.safetensors"
    model.save(path)
    return model, path


def test_export_whole_sequence_and_stream(tmp_path, capsys):
    model, path = saved(tmp_path)
    assert main(["export", str(path), "--format", "onnx", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["file"] == str(tmp_path / "m.onnx") and doc["outputs"] == ["output"]
    X = np.random.default_rng(0).standard_normal((3, 4, 2)).astype("float32")
    got = ort.InferenceSession(doc["file"], providers=["CPUExecutionProvider"]).run(
        None, {"X": X})[0]
    np.testing.assert_allclose(got, model.predict(X), rtol=1e-5, atol=1e-6)
    assert main(["export", str(path), "--stream", "-o", str(tmp_path / "s.onnx")]) == 0
    assert "state_in.0.h" in capsys.readouterr().out


def test_export_errors(tmp_path, capsys):
    _, path = saved(tmp_path)
    assert main(["export", str(tmp_path / "none.safetensors")]) == EXIT_MODEL
    assert main(["export", str(path), "--stream", "--lengths"]) == EXIT_USAGE
    assert "--lengths" in capsys.readouterr().err


def test_export_of_a_saved_model_with_the_variants(tmp_path, capsys):
    model = rk.Sequential([rk.LSTM(4, layer_norm=True, proj_size=2, zoneout=0.1,
                                   return_sequences=True), rk.GRU(3, layer_norm=True),
                           rk.Dense(2)], seed=0)
    model.build(2)
    model.save(tmp_path / "v.safetensors")
    assert main(["export", str(tmp_path / "v.safetensors"), "-o", str(tmp_path / "v.onnx")]) == 0
    X = np.random.default_rng(0).standard_normal((3, 4, 2)).astype("float32")
    got = ort.InferenceSession(str(tmp_path / "v.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"X": X})[0]
    np.testing.assert_allclose(got, model.predict(X), rtol=1e-5, atol=1e-6)
    capsys.readouterr()
    assert main(["export", str(tmp_path / "v.safetensors"), "--stream", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["inputs"] == ["x", "state_in.0.h", "state_in.0.c", "state_in.1.h"]
