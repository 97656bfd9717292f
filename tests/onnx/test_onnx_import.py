"""``rk.from_onnx``: real ``torch.onnx.export`` files of torch modules, rnnkit's own exports, and
clear refusals for what rnnkit cannot represent."""


import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

import rnnkit as rk  # noqa: E402
from rnnkit.errors import ModelFileError  # noqa: E402

torch = pytest.importorskip("torch")
nn = torch.nn


class Head(nn.Module):
    """A recurrent module with a Linear head, read at every step or at the last one."""

    def __init__(self, rnn, out, last=False, act=None):
        super().__init__()
        self.rnn, self.last, self.act = rnn, last, act
        self.head = nn.Linear(rnn.hidden_size * (1 + rnn.bidirectional), out)

    def forward(self, x):
        y, h = self.rnn(x)
        if self.last:
            h = h[0] if isinstance(h, tuple) else h
            y = h[-1]
        y = self.head(y)
        return y if self.act is None else self.act(y)


def export(module, x, path, dynamo=False):
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            dims = ({0: torch.export.Dim("b"), 1: torch.export.Dim("t")},)
            torch.onnx.export(module, (x,), path, input_names=["x"], dynamo=True,
                              dynamic_shapes=dims, verbose=False)
        else:
            torch.onnx.export(module, (x,), path, input_names=["x"], dynamo=False,
                              dynamic_axes={"x": {0: "b", 1: "t"}})


TORCH_CASES = {
    "lstm-bi-stacked-softmax": lambda: Head(nn.LSTM(3, 4, 2, batch_first=True,
                                                    bidirectional=True), 3,
                                            act=nn.Softmax(dim=-1)),
    "gru-last-step": lambda: Head(nn.GRU(3, 5, batch_first=True), 2, last=True),
    "rnn-relu-sigmoid": lambda: Head(nn.RNN(3, 4, batch_first=True, nonlinearity="relu"), 1,
                                     act=nn.Sigmoid()),
    "gru-no-bias-bi": lambda: Head(nn.GRU(3, 4, 2, batch_first=True, bias=False,
                                          bidirectional=True), 2, act=nn.Tanh()),
}


@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_torch_export_imports_equal(case, tmp_path):
    torch.manual_seed(0)
    module = TORCH_CASES[case]()
    x = torch.randn(2, 5, 3)
    export(module, x, tmp_path / "m.onnx")
    model = rk.from_onnx(tmp_path / "m.onnx")
    X = np.random.default_rng(0).standard_normal((3, 7, 3)).astype("float32")
    with torch.no_grad():
        want = module(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(model.predict(X), want, rtol=1e-5, atol=1e-6)


def test_torch_dynamo_export_of_a_gru(tmp_path):
    pytest.importorskip("onnxscript")
    torch.manual_seed(1)
    module = Head(nn.GRU(3, 4, batch_first=True, bidirectional=True), 2)
    export(module, torch.randn(2, 5, 3), tmp_path / "m.onnx", dynamo=True)
    X = np.random.default_rng(1).standard_normal((2, 5, 3)).astype("float32")
    with torch.no_grad():
        want = module(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(rk.from_onnx(tmp_path / "m.onnx").predict(X), want, rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rnnkit_export_round_trip(dtype, tmp_path):
    model = rk.Sequential([rk.Embedding(6, 3), rk.LSTM(4, return_sequences=True,
                                                       bidirectional=True, activation="relu"),
                           rk.GRU(3, bidirectional=True, gate_activation="softsign"),
                           rk.Dense(2, activation="elu")], dtype=dtype)
    model.build(1)
    rng = np.random.default_rng(2)
    for v in model.parameters().values():
        v[...] = 0.5 * rng.standard_normal(v.shape)
    model.to_onnx(tmp_path / "m.onnx", rnn_ops="native")
    back = rk.from_onnx(tmp_path / "m.onnx")
    assert back.dtype == model.dtype
    ids = rng.integers(0, 6, (3, 5))
    np.testing.assert_array_equal(back.predict(ids), model.predict(ids))


def graph_file(tmp_path, nodes, inits=(), name="m.onnx"):
    h = onnx.helper
    graph = h.make_graph(nodes, "g", [h.make_tensor_value_info("X", 1, ["b", "t", 3])],
                         [h.make_tensor_value_info("Y", 1, None)], list(inits))
    path = tmp_path / name
    path.write_bytes(h.make_model(graph).SerializeToString())
    return path


def gru_node(out="Y", **inputs):
    names = ["X", "W", "R", inputs.get("B", ""), inputs.get("lens", ""), inputs.get("h0", "")]
    return onnx.helper.make_node("GRU", names, [out], name="the_gru", hidden_size=2,
                                 linear_before_reset=1)


def gru_weights():
    rng = np.random.default_rng(0)
    return [onnx.numpy_helper.from_array(rng.standard_normal(s).astype("float32"), n)
            for n, s in (("W", (1, 6, 3)), ("R", (1, 6, 2)))]


def test_unsupported_operator_names_node_and_type(tmp_path):
    nodes = [gru_node("Y0"), onnx.helper.make_node("Sin", ["Y0"], ["Y"], name="wave")]
    with pytest.raises(ModelFileError, match=r"node 'wave' \(Sin\)"):
        rk.from_onnx(graph_file(tmp_path, nodes, gru_weights()))


def test_nonzero_initial_state_and_reset_before_are_refused(tmp_path):
    h0 = onnx.numpy_helper.from_array(np.ones((1, 1, 2), "float32"), "h0")
    with pytest.raises(ModelFileError, match="initial_h is not zeros"):
        rk.from_onnx(graph_file(tmp_path, [gru_node(h0="h0")], [*gru_weights(), h0]))
    node = gru_node()
    node.attribute[1].i = 0
    with pytest.raises(ModelFileError, match="linear_before_reset=0"):
        rk.from_onnx(graph_file(tmp_path, [node], gru_weights()))


def test_external_data_outside_the_folder_is_refused(tmp_path):
    (tmp_path / "secret.bin").write_bytes(b"\0" * 72)
    inner = tmp_path / "inner"
    inner.mkdir()
    W, R = gru_weights()
    W.ClearField("raw_data")
    W.data_location = onnx.TensorProto.EXTERNAL
    for k, v in (("location", "../secret.bin"), ("offset", "0"), ("length", "72")):
        W.external_data.add(key=k, value=v)
    with pytest.raises(ModelFileError, match="outside the model's folder"):
        rk.from_onnx(graph_file(inner, [gru_node()], [W, R]))
    (inner / "link.bin").symlink_to(tmp_path / "secret.bin")  # a link inside, to outside
    for location in ("link.bin", str(tmp_path / "secret.bin"), "w\0.bin", "", "../inner/../.."):
        W.external_data[0].value = location
        with pytest.raises(ModelFileError, match="outside the model's folder"):
            rk.from_onnx(graph_file(inner, [gru_node()], [W, R]))
    W.external_data[0].value = "."
    with pytest.raises(ModelFileError, match="expected an external data file, got a folder"):
        rk.from_onnx(graph_file(inner, [gru_node()], [W, R]))
    (inner / "w.bin").write_bytes(np.zeros(18, "float32").tobytes())
    W.external_data[0].value = "w.bin"
    assert rk.from_onnx(graph_file(inner, [gru_node()], [W, R])).layers[0].hidden == 2


def test_lying_sizes_and_memory_bound(tmp_path):
    W, R = gru_weights()
    W.dims[1] = 600
    with pytest.raises(ModelFileError, match="needs 7200 bytes"):
        rk.from_onnx(graph_file(tmp_path, [gru_node()], [W, R]))
    W.dims[1] = 10**9
    with pytest.raises(ModelFileError, match="memory limit"):
        rk.from_onnx(graph_file(tmp_path, [gru_node()], [W, R]))
    with pytest.raises(ModelFileError, match="exceed the limit"):
        rk.from_onnx(graph_file(tmp_path, [gru_node()], gru_weights()), max_bytes=100)


def test_not_an_onnx_file(tmp_path):
    path = tmp_path / "x.onnx"
    path.write_bytes(b"\x80\x04 not protobuf at all" * 3)
    with pytest.raises(ModelFileError, match="not an ONNX model"):
        rk.from_onnx(path)
    with pytest.raises(ModelFileError, match="file not found"):
        rk.from_onnx(tmp_path / "none.onnx")




def test_peepholes_round_trip(tmp_path):
    model = rk.Sequential([rk.LSTM(4, peepholes=True, bidirectional=True)])
    model.build(3)
    rng = np.random.default_rng(3)
    for v in model.parameters().values():
        v[...] = 0.5 * rng.standard_normal(v.shape)
    model.to_onnx(tmp_path / "m.onnx")
    back = rk.from_onnx(tmp_path / "m.onnx")
    assert back.layers[0].peepholes
    X = rng.standard_normal((2, 5, 3)).astype("float32")
    np.testing.assert_array_equal(back.predict(X), model.predict(X))


def test_only_regular_files_are_read(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.onnx")  # would block a plain open forever
    with pytest.raises(ModelFileError, match="expected an ONNX model file, got a FIFO"):
        rk.from_onnx(tmp_path / "pipe.onnx")
    with pytest.raises(ModelFileError, match="got a folder"):
        rk.from_onnx(tmp_path)


def test_round_trip_with_dropouts_and_refusal_of_scan_layers(tmp_path):
    model = rk.Sequential([rk.LSTM(4, dropout=0.3, recurrent_dropout=0.2, return_sequences=True),
                           rk.Dropout(0.5), rk.GRU(3), rk.Dense(2)], seed=1)
    model.build(3)
    model.to_onnx(tmp_path / "m.onnx")  # the dropouts are identities at inference
    X = np.random.default_rng(0).standard_normal((2, 5, 3)).astype("float32")
    np.testing.assert_allclose(rk.from_onnx(tmp_path / "m.onnx").predict(X), model.predict(X),
                               rtol=1e-6, atol=1e-7)
    for layer, op in ((rk.LSTM(4, layer_norm=True), "LayerNormalization"),
                      (rk.LSTM(4, proj_size=2), "Scan"), (rk.GRU(4, zoneout=0.1), "Scan")):
        model = rk.Sequential([layer, rk.Dense(2)])
        model.build(3)
        model.to_onnx(tmp_path / "v.onnx")
        with pytest.raises(ModelFileError, match=rf"node '{op}_\d+' \({op}\).*load such a model"):
            rk.from_onnx(tmp_path / "v.onnx")
