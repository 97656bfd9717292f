"""``rnnkit bench``'s ONNX Runtime column: present for infer and stream, absent for train and
with ``--no-onnx``; the ONNX side computes what rnnkit computes."""

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from rnnkit import bench
from rnnkit.interop import onnx_bench


def rows(capsys, *extra):
    argv = ["--cells", "lstm", "--sizes", "tiny", "--reps", "1", "--no-torch", "--no-memory",
            "--json", *extra]
    assert bench.main(argv) == 0
    return json.loads(capsys.readouterr().out)["rows"]


def test_column_for_infer_and_stream_only(capsys):
    got = {r["mode"]: r for r in rows(capsys, "--modes", "train,infer,stream")}
    assert got["train"]["onnxruntime_ms"] is None
    for mode in ("infer", "stream"):
        assert got[mode]["onnxruntime_ms"] > 0 and got[mode]["onnxruntime_ratio"] > 0
    assert all(r["onnxruntime_ms"] is None for r in rows(capsys, "--modes", "infer",
                                                        "--no-onnx"))


def test_the_onnx_side_runs_the_same_model():
    import rnnkit as rk

    model = rk.Sequential([rk.GRU(4, return_sequences=True)], seed=0)
    model.build(3)
    X = np.random.default_rng(0).standard_normal((2, 5, 3)).astype("float32")
    session = onnx_bench.session(model.to_onnx(), threads=1)
    np.testing.assert_allclose(session.run(None, {"X": X})[0], model.predict(X), rtol=1e-5,
                               atol=1e-6)
    assert onnx_bench.case("train", model, X, 1, 3) is None
    onnx_bench.case("stream", model, X, 1, 3)()
