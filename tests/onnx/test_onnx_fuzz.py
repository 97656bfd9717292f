"""Fuzz rk.from_onnx like the safetensors reader: flipped bytes, truncation, lying sizes and
deep nesting give a ModelFileError (a ValueError) or a working model, never another
exception, a hang or a huge allocation. RNNKIT_FUZZ_EXAMPLES sets the example count."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx")

import rnnkit as rk  # noqa: E402
from rnnkit.errors import ModelFileError  # noqa: E402

EXAMPLES = int(os.environ.get("RNNKIT_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=2000, suppress_health_check=list(HealthCheck))


def valid_bytes():
    model = rk.Sequential([rk.LSTM(3, return_sequences=True), rk.GRU(2), rk.Dense(2)], seed=0)
    model.build(2)
    return model.to_onnx(rnn_ops="native").SerializeToString()


VALID = valid_bytes()


def outcome(tmp_path_factory, data: bytes):
    path = tmp_path_factory.mktemp("fuzz") / "m.onnx"
    path.write_bytes(data)
    try:
        model = rk.from_onnx(path, max_bytes=1 << 20)
    except ModelFileError:
        return None
    assert isinstance(model, rk.Sequential)
    with np.errstate(all="ignore"):
        model.predict(np.zeros((1, 2, model.layers[0].input_size)))
    return model


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(1, 255)),
                      min_size=1, max_size=8), cut=st.none() | st.integers(0, len(VALID)))
def test_flipped_and_truncated_bytes(tmp_path_factory, flips, cut):
    data = bytearray(VALID)
    for pos, x in flips:
        data[pos] ^= x
    outcome(tmp_path_factory, bytes(data[:cut]))


@FUZZ
@given(which=st.integers(0, 50), dim=st.integers(0, 5), size=st.integers(0, 2**62),
       drop=st.booleans())
def test_lying_tensor_sizes(tmp_path_factory, which, dim, size, drop):
    proto = onnx.ModelProto()
    proto.ParseFromString(VALID)
    t = proto.graph.initializer[which % len(proto.graph.initializer)]
    if t.dims:
        t.dims[dim % len(t.dims)] = size
    if drop:
        t.raw_data = t.raw_data[: len(t.raw_data) // 2]
    outcome(tmp_path_factory, proto.SerializeToString())


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    n, size = number << 3 | 2, len(payload)
    varint = bytearray()
    while True:
        varint.append((size & 0x7F) | (0x80 if size > 0x7F else 0))
        size >>= 7
        if not size:
            break
    return bytes([n]) + bytes(varint) + payload


@pytest.mark.parametrize("depth", [10, 200, 5000])
def test_deep_nesting(tmp_path_factory, depth):
    graph = b""
    for _ in range(depth):  # GraphProto.node -> NodeProto.attribute -> AttributeProto.g
        graph = _field(1, _field(5, _field(6, graph)))
    assert outcome(tmp_path_factory, _field(7, graph)) is None
