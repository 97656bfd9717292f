"""Fuzz rk.load at the config level: any JSON in any config field gives a ModelFileError
(a ValueError) or a working model — never another exception, never a hang or a huge
allocation. RNNKIT_FUZZ_EXAMPLES sets the example count (CI: 200)."""

import copy
import json
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnnkit as rk
from rnnkit.errors import ModelFileError
from rnnkit.fileio import load_tensors, save_tensors

EXAMPLES = int(os.environ.get("RNNKIT_FUZZ_EXAMPLES", "200"))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=12) | st.sampled_from(["RNN", "LSTM", "Dense", "learned", "zeros",
                                              "tanh", "softmax", "float64"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


def valid_file(tmp_path_factory):
    model = rk.Sequential([rk.LSTM(3, return_sequences=True, h0="learned"),
                           rk.GRU(2, readout=rk.Dense(2), output="y")])
    model.build(2)
    path = tmp_path_factory.mktemp("fuzz") / "m.safetensors"
    model.save(path)
    tensors, meta = load_tensors(path)
    return path, tensors, json.loads(meta["rnnkit"])


def paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from paths(v, (*prefix, i))


@settings(max_examples=EXAMPLES, deadline=2000, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_config_mutation_is_a_clean_error_or_a_model(tmp_path_factory, data):
    path, tensors, config = valid_file(tmp_path_factory)
    bad = copy.deepcopy(config)
    where = data.draw(st.sampled_from(list(paths(bad))[1:]))
    value = data.draw(JSON)
    node = bad
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    save_tensors(path, tensors, {"rnnkit": json.dumps(bad)})
    try:
        model = rk.load(path)
    except ModelFileError:
        return
    out = model.predict(np.zeros((1, 3, model.layers[0].input_size)))
    out = out[0] if isinstance(out, tuple) else out  # return_state may have been switched on
    assert np.all(np.isfinite(out))
