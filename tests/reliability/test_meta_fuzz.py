"""Fuzz at the level of meaning: valid safetensors model files whose JSON (the model config and
the ``user`` metadata of ``rnnkit train``) is mutated: types swapped, values out of range, keys
dropped or added, sizes made inconsistent. Every case must load and pass the checks (and then
predict finite values, and ``rnnkit info`` must work) or be refused with a ModelFileError; any
other exception is an internal error. RNNKIT_META_FUZZ_CASES and RNNKIT_META_FUZZ_SEED set
the number of cases and the seed."""

import copy
import json
import os
import random

import numpy as np

import rnnkit as rk
from helpers_rnnkit import MAKERS
from rnnkit.cli import main
from rnnkit.cli.metadata import check_metadata
from rnnkit.errors import ModelFileError
from rnnkit.fileio import load_tensors, save_tensors

CASES = int(os.environ.get("RNNKIT_META_FUZZ_CASES", "2000"))
ODD = [None, True, False, 0, 1, -1, 2, 3, 2**31, 2**63, -(2**63), 10**400, 0.0, -0.5, 1.5, 1e308,
       -1e308, 5e-324, "", "x", "yes", "tanh", "learned", "zeros", "RNN", "Dense", "<unk>", "y",
       "/dev/zero", "sunspots", [], [1], [1, 2, 3], ["a", "b"], {}, {"a": 1}, [[1.0]]]


def paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(obj, list) and len(obj) <= 12:  # a long list adds nothing but cases
        for i, v in enumerate(obj):
            yield from paths(v, (*prefix, i))


def mutate(doc, rng):
    """One mutation at a random place of ``doc`` (in place)."""
    where = rng.choice(list(paths(doc))[1:])
    parent = doc
    for key in where[:-1]:
        parent = parent[key]
    key, old = where[-1], parent[where[-1]]
    kind = rng.randrange(6)
    if kind == 0 and isinstance(parent, dict):
        del parent[key]  # dropped
    elif kind == 1 and isinstance(parent, dict):
        name = rng.choice(["extra", "__class__", "hidden", "classes", "Hidden"])
        parent[name] = copy.deepcopy(rng.choice(ODD))
    elif kind == 2 and type(old) is int:  # out of range, or one off (inconsistent sizes)
        parent[key] = rng.choice([0, -1, old - 1, old + 1, 2 * old, old * 10**6, -old])
    elif kind == 3 and isinstance(old, list):
        parent[key] = rng.choice([old[:-1], [*old, *old[:1]], old[::-1], []])
    elif kind == 4 and isinstance(old, float):
        parent[key] = rng.choice([-old, 0.0, 1e308, -1e-300, old * 1e300])
    else:
        parent[key] = copy.deepcopy(rng.choice(ODD))  # a value of another type
    return doc


def originals(folder):
    out = []
    for task, make in MAKERS.items():
        model, meta = make()
        path = folder / f"{task}.safetensors"
        model.save(path, metadata=meta)
        tensors, raw = load_tensors(path)
        out.append((tensors, json.loads(raw["rnnkit"]), meta))
    return out


def test_mutated_metadata_loads_or_is_refused_cleanly(tmp_path, capsys):
    rng = random.Random(int(os.environ.get("RNNKIT_META_FUZZ_SEED", "0")))
    bases = originals(tmp_path)
    path = tmp_path / "m.safetensors"
    refused = loaded = 0
    for case in range(CASES):
        tensors, config, user = rng.choice(bases)
        config, user = copy.deepcopy(config), copy.deepcopy(user)
        mutate(rng.choice([config, user]), rng)
        if rng.random() < 0.2:  # a second mutation: some errors only show in combination
            mutate(rng.choice([config, user]), rng)
        save_tensors(path, tensors, {"rnnkit": json.dumps(config), "user": json.dumps(user)})
        try:
            model = rk.load(path)
            check_metadata(model.metadata, model)
        except ModelFileError:
            refused += 1
            continue
        except Exception as e:
            raise AssertionError(f"case {case}: {type(e).__name__}: {e}\n{config}\n{user}") from e
        loaded += 1
        size = model.layers[0].input_size
        x = np.zeros((2, 3), np.int64) if model.takes_ids else np.zeros((2, 3, size))
        out = model.predict(x)
        assert np.all(np.isfinite(out[0] if isinstance(out, tuple) else out)), case
        if case % 20 == 0:
            assert main(["info", str(path), "--json"]) == 0, case
            capsys.readouterr()
    assert refused > CASES // 2 and loaded > CASES // 50, (refused, loaded)
