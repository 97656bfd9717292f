"""The model config's schema: every option of every layer type is in the table, with the
constructor's default, and a file that says something the schema refuses names the field."""

import json

import numpy as np
import pytest

import rnnkit as rk
from rnnkit.config import LAYER_OPTIONS, REQUIRED, constructor_arguments
from rnnkit.errors import ModelFileError
from rnnkit.fileio import load_tensors, save_tensors
from rnnkit.model import LAYER_TYPES


def test_every_constructor_argument_has_a_line_in_the_table():
    assert set(LAYER_OPTIONS) == set(LAYER_TYPES), "a layer type without a line in LAYER_OPTIONS"
    for kind, cls in LAYER_TYPES.items():
        arguments = constructor_arguments(cls)
        table = {k: default for k, (_, default) in LAYER_OPTIONS[kind].items()}
        assert set(arguments) == set(table), f"{kind}: register {set(arguments) ^ set(table)}"
        for name, default in arguments.items():
            assert table[name] is REQUIRED if default is REQUIRED else table[name] == default, \
                f"{kind}.{name}: the table's default differs from the constructor's"


@pytest.mark.parametrize("layer", [
    rk.RNN(3, activation="relu", h0=np.arange(3.0), return_sequences=True),
    rk.LSTM(2, bidirectional=True, readout=rk.Dense(2, "softmax"), output="y", c0="learned",
            forget_bias=0.5),
    rk.GRU(2, return_state=True, bias=False, bias_init="torch", kernel_init="xavier"),
])
def test_every_option_a_layer_writes_is_read_back(tmp_path, layer):
    model = rk.Sequential([layer, rk.Dense(1)])
    model.build(2)
    model.save(tmp_path / "m.safetensors")
    assert rk.load(tmp_path / "m.safetensors").get_config() == model.get_config()


def saved(tmp_path):
    model = rk.Sequential([rk.LSTM(3, return_sequences=True, bidirectional=True),
                           rk.GRU(2, readout=rk.Dense(2), output="y"), rk.Dense(1)])
    model.build(2)
    path = tmp_path / "m.safetensors"
    model.save(path)
    tensors, meta = load_tensors(path)
    return path, tensors, json.loads(meta["rnnkit"])


@pytest.mark.parametrize("where,value,message", [
    ((0, "return_sequences"), "yes",
     'config.layers[0].config.return_sequences: expected true or false, got "yes"'),
    ((1, "hidden"), "x", 'config.layers[1].config.hidden: expected an integer >= 1'),
    ((0, "h0"), [1.0, 2.0],
     "config.layers[0].config.h0: expected a list of hidden=3 numbers, got a list of 2"),
    ((1, "output"), "z", 'config.layers[1].config.output: expected one of "h", "y", got "z"'),
    ((1, "readout"), None,
     'config.layers[1].config.output: expected "h" for a layer without a readout, got "y"'),
    ((0, "forget_bias"), 1e5, "config.layers[0].config.forget_bias: expected a finite"),
    ((1, "activation"), "os.system", "config.layers[1].config.activation: expected one of"),
    ((1, "input_size"), 3, "config.layers[1].config.input_size: expected 6 (what layers[0] "
                           "emits), got 3"),
    ((2, "input_size"), 5, "config.layers[2].config.input_size: expected 2 (what layers[1] "
                           "emits), got 5"),
])
def test_a_wrong_field_is_named(tmp_path, where, value, message):
    path, tensors, config = saved(tmp_path)
    config["layers"][where[0]]["config"][where[1]] = value
    save_tensors(path, tensors, {"rnnkit": json.dumps(config)})
    with pytest.raises(ModelFileError) as e:
        rk.load(path)
    assert str(e.value).startswith(f"{path}: {message}")


def test_readout_reads_hidden_times_directions(tmp_path):
    path, tensors, config = saved(tmp_path)
    config["layers"][1]["config"]["bidirectional"] = True  # the readout still reads 2
    save_tensors(path, tensors, {"rnnkit": json.dumps(config)})
    with pytest.raises(ModelFileError, match=r"layers\[1\]\.config\.readout\.input_size: "
                                             r"expected 4 \(hidden × directions\), got 2"):
        rk.load(path)


@pytest.mark.parametrize("key", ["rnnkit", "user"])
def test_duplicate_keys_and_nan_in_metadata_json_are_refused(tmp_path, key):
    path, tensors, config = saved(tmp_path)
    texts = {"rnnkit": json.dumps(config), "user": '{"task": "forecast"}'}
    texts[key] = texts[key][:-1] + ', "seed": 1, "seed": 2}'
    save_tensors(path, tensors, texts)
    with pytest.raises(ModelFileError, match=f"metadata\\['{key}'\\] is not valid JSON: "
                                             "duplicate key 'seed'"):
        rk.load(path)
    texts[key] = texts[key].replace('"seed": 1, "seed": 2', '"x": NaN')
    save_tensors(path, tensors, texts)
    with pytest.raises(ModelFileError, match="non-standard constant NaN"):
        rk.load(path)
