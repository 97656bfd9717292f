"""ONNX export, verified: for every configuration, ONNX Runtime (CPU) and onnx.reference equal
``model.predict`` (max relative error 1e-5 in float32, 1e-10 in float64), and the exporter's
``check_model(full_check=True)`` passes. The reference evaluator implements RNN/LSTM/GRU only
partly (tanh/affine RNN, default LSTM/GRU activations, no ``sequence_lens``), so each model is
also exported with ``rnn_ops="scan"`` and both runtimes run that graph too."""

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
reference = pytest.importorskip("onnx.reference")

import rnnkit as rk  # noqa: E402
from rnnkit.interop.onnx_export import initial_stream_state  # noqa: E402

D, T, B = 3, 5, 4
LENGTHS = np.array([5, 2, 4, 1])
TOL = {"float32": 1e-5, "float64": 1e-10}
ACTS = ["tanh", "sigmoid", "relu", "identity", "leaky_relu", "elu", "softsign", "hard_tanh"]


def built(layers, dtype="float32", d=D, seed=0):
    """A built model whose every parameter (learned h0 included) is random."""
    model = rk.Sequential(layers, seed=seed, dtype=dtype)
    model.build(d)
    rng = np.random.default_rng(seed + 1)
    for v in model.parameters().values():
        v[...] = 0.5 * rng.standard_normal(v.shape)
    return model


def reference_supports(model, lengths):
    """Whether onnx.reference implements the native operators this model exports to."""
    if lengths:
        return False
    for layer in model.layers:
        if layer.kind == "RNN" and layer.activation not in ("tanh", "identity"):
            return False
        if layer.kind in ("LSTM", "GRU") and (layer.activation, layer.gate_activation) != (
                "tanh", "sigmoid"):
            return False
    return True


def runners(proto):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return {"onnxruntime": lambda feeds: session.run(None, feeds),
            "reference": lambda feeds: reference.ReferenceEvaluator(proto).run(None, feeds)}


def assert_close(got, want, dtype, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, what
    err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-30)
    assert err <= TOL[dtype], f"{what}: relative error {err:.3g}"


def expected(model, X, lengths):
    out = model.predict(X, lengths=lengths)
    out, states = out if isinstance(out, tuple) else (out, {})
    want = [out, model.predict_proba(X, lengths=lengths)]
    for i in sorted(states):
        layer, s = model.layers[i], states[i]
        per_dir = [s] if not layer.bidirectional else list(s)
        for d in per_dir:
            want += list(d) if isinstance(d, tuple) else [d]
    return want


def verify(model, ids=False, lengths=False):
    dtype = model.dtype.name
    rng = np.random.default_rng(7)
    X = rng.integers(0, 6, (B, T)) if ids else rng.standard_normal((B, T, D)).astype(dtype)
    feeds = {"X": X}
    if lengths:
        feeds["sequence_lens"] = LENGTHS.astype(np.int64)
    want = expected(model, X, LENGTHS if lengths else None)
    for ops in ("auto", "scan"):
        proto = model.to_onnx(lengths=lengths, probabilities=True, rnn_ops=ops)
        for name, run in runners(proto).items():
            if name == "onnxruntime" and ops == "auto" and dtype == "float64":
                continue  # auto is scan in float64: ORT has no float64 RNN kernels
            if name == "reference" and ops == "auto" and dtype == "float32" \
                    and not reference_supports(model, lengths):
                continue
            got = run(feeds)
            assert len(got) == len(want)
            for k, (a, b) in enumerate(zip(got, want)):
                assert_close(a, b, dtype, f"{name}/{ops} output {k}")


@pytest.mark.parametrize("act", ACTS)
def test_elman_each_activation(act):
    verify(built([rk.RNN(4, activation=act, return_sequences=True)]))


@pytest.mark.parametrize("cell,act,gate", [
    ("LSTM", "tanh", "sigmoid"), ("GRU", "tanh", "sigmoid"), ("LSTM", "softsign", "sigmoid"),
    ("GRU", "relu", "softsign"), ("LSTM", "elu", "hard_tanh"), ("GRU", "leaky_relu", "tanh"),
    ("LSTM", "identity", "sigmoid")])
def test_gated_cells_and_activations(cell, act, gate):
    cls = getattr(rk, cell)
    verify(built([cls(4, activation=act, gate_activation=gate, return_sequences=True)]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("lengths", [False, True])
def test_stacked_bidirectional_heads(dtype, lengths):
    verify(built([rk.LSTM(4, return_sequences=True, bidirectional=True, h0="learned",
                          c0=np.linspace(-1, 1, 4)),
                  rk.GRU(3, bidirectional=True, h0=np.full(3, 0.3), return_state=True),
                  rk.Dense(5, activation="relu"), rk.Dense(3)], dtype), lengths=lengths)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("lengths", [False, True])
def test_readout_sequences_and_learned_h0(dtype, lengths):
    verify(built([rk.RNN(4, activation="hard_tanh", readout=rk.Dense(2, activation="tanh"),
                         output="y", return_sequences=True, h0="learned", bidirectional=True),
                  rk.RNN(3, readout=rk.Dense(1), output="y", return_state=True)], dtype),
           lengths=lengths)


@pytest.mark.parametrize("lengths", [False, True])
def test_embedding_gru_softmax(lengths):
    verify(built([rk.Embedding(6, 3), rk.GRU(4, return_sequences=True, bias=False),
                  rk.Dense(6, activation="softmax")]), ids=True, lengths=lengths)


def test_dynamic_batch_and_time():
    model = built([rk.GRU(4, return_sequences=True), rk.Dense(2)])
    session = ort.InferenceSession(model.to_onnx().SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    for shape in [(1, 1, D), (7, 11, D)]:
        X = np.random.default_rng(0).standard_normal(shape).astype("float32")
        assert_close(session.run(None, {"X": X})[0], model.predict(X), "float32", str(shape))


def test_file_written_and_loadable(tmp_path):
    import onnx

    model = built([rk.LSTM(4), rk.Dense(2)])
    model.to_onnx(tmp_path / "m.onnx")
    onnx.checker.check_model(str(tmp_path / "m.onnx"), full_check=True)


def test_refusals_name_the_problem():
    with pytest.raises(ValueError, match="bidirectional"):
        built([rk.GRU(4, bidirectional=True)]).to_onnx(stream=True)
    with pytest.raises(ValueError, match="rnn_ops"):
        built([rk.GRU(4)]).to_onnx(rnn_ops="fast")
    layer = rk.GRU(4)
    layer.get_config = lambda: {**rk.GRU.get_config(layer), "skip": 0.1}
    with pytest.raises(ValueError, match=r"layer 0 \(GRU\) option skip=0.1"):
        built([layer]).to_onnx()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("lengths", [False, True])
def test_peepholes_native_and_dropouts_as_identity(dtype, lengths):
    verify(built([rk.LSTM(4, peepholes=True, return_sequences=True, bidirectional=True,
                          dropout=0.2, recurrent_dropout=0.1), rk.Dropout(0.3),
                  rk.LSTM(3, peepholes=True, activation="hard_tanh"), rk.Dense(2)], dtype),
           lengths=lengths)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("lengths", [False, True])
def test_zoneout_layer_norm_projection(dtype, lengths):
    verify(built([rk.LSTM(4, layer_norm=True, peepholes=True, proj_size=2, zoneout=(0.1, 0.3),
                          h0="learned", return_sequences=True, bidirectional=True),
                  rk.GRU(3, layer_norm=True, zoneout=0.2, return_sequences=True,
                         return_state=True),
                  rk.LSTM(3, proj_size=1, return_state=True, c0="learned"),
                  rk.Dense(2)], dtype), lengths=lengths)


@pytest.mark.parametrize("layer", [
    lambda: rk.GRU(3, layer_norm=True, bias=False, return_sequences=True),
    lambda: rk.LSTM(3, layer_norm=True, bias=False, zoneout=0.4, activation="hard_tanh"),
    lambda: rk.RNN(3, zoneout=0.25, activation="relu", bidirectional=True)])
def test_each_variant_alone(layer):
    verify(built([layer()]), lengths=True)


def stream_matches(model, dtype, steps=3):
    """The stream graph, fed its own state outputs, equals ``model.stream().step``."""
    protos = {"reference": model.to_onnx(stream=True),
              "onnxruntime": model.to_onnx(stream=True, rnn_ops="scan" if dtype == "float64"
                                           else "auto")}
    rng = np.random.default_rng(3)
    stream = model.stream()
    for name, proto in protos.items():
        run = runners(proto)[name]
        out_names = [o.name for o in proto.graph.output]
        stream.reset()
        feeds = initial_stream_state(model, B)
        for _ in range(steps):
            x = rng.standard_normal((B, D)).astype(dtype)
            want = stream.step(x)
            out = dict(zip(out_names, run({"x": x, **feeds})))
            assert_close(out["output"], want, dtype, f"{name} stream output")
            feeds = {k.replace("state_out", "state_in"): v for k, v in out.items()
                     if k.startswith("state_out")}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stream_graph_equals_stream_steps(dtype):
    stream_matches(built([rk.LSTM(4, return_sequences=True, h0="learned"),
                          rk.RNN(3, h0="learned", activation="hard_tanh"),
                          rk.Dense(2, activation="sigmoid")], dtype), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stream_graph_of_the_variants(dtype):
    stream_matches(built([rk.LSTM(4, layer_norm=True, proj_size=2, zoneout=0.2, h0="learned",
                                  peepholes=True, return_sequences=True, recurrent_dropout=0.3),
                          rk.GRU(3, layer_norm=True, zoneout=0.1, dropout=0.2),
                          rk.Dense(2)], dtype), dtype)


def test_proj_size_graph_equals_torch_module():
    """torch.onnx.export cannot write this one (torch 2.13: the TorchScript exporter refuses
    LSTMs with projections, dynamo drops weight_hr and writes an LSTM that ONNX Runtime
    rejects), so the exported graph is checked against the torch module itself."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    mod = torch.nn.LSTM(D, 5, num_layers=2, proj_size=2, batch_first=True, bidirectional=True,
                        dtype=torch.float64).eval()
    model = rk.from_torch(mod)
    X = np.random.default_rng(0).standard_normal((B, T, D))
    want = mod(torch.tensor(X))[0].detach().numpy()
    for name, run in runners(model.to_onnx()).items():
        assert_close(run({"X": X})[0], want, "float64", name)
