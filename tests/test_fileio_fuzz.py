"""Property-based fuzzing of the safetensors reader: mutated files either load correctly or raise
ModelFileError, never anything else.

"Correctly" is checked differentially: whenever rnnkit accepts a file, the reference
``safetensors`` loader must accept it too and produce the same names, dtypes, shapes and bytes
(rnnkit's reader is meant to be the stricter of the two).

The default run is short for CI (about 300 examples in all). For a long run set the total:
``RNNKIT_FUZZ_EXAMPLES=20000 python -m pytest tests/test_fileio_fuzz.py``.
"""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rnnkit.errors import ModelFileError
from rnnkit.fileio import json_depth, load_tensors, read_metadata

N_TESTS = 6  # the @fuzz tests below share the example budget
EXAMPLES = max(1, int(os.environ.get("RNNKIT_FUZZ_EXAMPLES", "300")) // N_TESTS)
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=1000,  # ms per example: a hostile file must fail fast
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ALL_DTYPES = ("F16", "F32", "F64", "I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64")


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "model.safetensors"


def reference_load(data: bytes) -> dict[str, np.ndarray] | None:
    """The safetensors library's own reading of ``data``, or None if it refuses."""
    import safetensors.numpy

    try:
        return safetensors.numpy.load(data)
    except BaseException as e:  # a Rust panic is a BaseException
        if isinstance(e, KeyboardInterrupt):
            raise
        return None


def check_load(path: Path, data: bytes) -> None:
    """The property: only ModelFileError escapes, and success agrees with the reference."""
    path.write_bytes(data)
    try:
        tensors, metadata = load_tensors(path, allowed_dtypes=ALL_DTYPES, allow_nonfinite=True)
    except ModelFileError as e:
        event("rejected: " + re.sub(r"[0-9]+|'.*?'", "#", str(e).split(": ", 1)[1])[:40])
        with pytest.raises(ModelFileError):  # header-only reading must not be laxer
            read_metadata(path, allowed_dtypes=ALL_DTYPES)
        return
    event("accepted")
    assert read_metadata(path, allowed_dtypes=ALL_DTYPES) == metadata
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ref = reference_load(data)
    assert ref is not None, "rnnkit accepted a file that safetensors rejects"
    assert tensors.keys() == ref.keys()
    for name, arr in tensors.items():
        assert arr.shape == ref[name].shape and arr.dtype == ref[name].dtype, name
        assert arr.tobytes() == np.ascontiguousarray(ref[name]).tobytes(), name


# ----------------------------------------------------------------------------- strategies

names = st.text(min_size=0, max_size=8)
arrays = st.sampled_from(["<f4", "<f8", "<i8", "<i4", "u1"]).flatmap(
    lambda dt: st.lists(st.integers(0, 3), max_size=3).map(
        lambda shape: np.arange(int(np.prod(shape)), dtype=dt).reshape(shape)
    )
)


@st.composite
def valid_files(draw: st.DrawFn) -> bytes:
    """A valid file written by the reference writer."""
    import safetensors.numpy

    tensors = draw(st.dictionaries(names, arrays, max_size=4))
    metadata = draw(st.none() | st.dictionaries(names, st.text(max_size=8), max_size=3))
    if not tensors and metadata == {}:  # safetensors 0.8 writes invalid JSON for this case
        metadata = None
    return safetensors.numpy.save(tensors, metadata=metadata)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
small_ints = st.integers(-2, 40) | st.sampled_from([2**31, 2**32, 2**63, 2**64, 10**30])


@st.composite
def plausible_headers(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    """Headers that are nearly right, so that some of them are valid and load."""
    header: dict[str, Any] = {}
    if draw(st.booleans()):
        header["__metadata__"] = draw(st.dictionaries(names, st.text(max_size=4) | json_values))
    for name in draw(st.lists(names, max_size=4, unique=True)):
        entry: dict[str, Any] = {
            "dtype": draw(st.sampled_from([*ALL_DTYPES, "BOOL", "BF16", "f32"]) | json_values),
            "shape": draw(st.lists(small_ints, max_size=3) | json_values),
            "data_offsets": draw(st.lists(small_ints, min_size=2, max_size=2) | json_values),
        }
        if draw(st.integers(0, 9)) == 0:
            del entry[draw(st.sampled_from(sorted(entry)))]
        header[name] = entry
    return header, draw(st.integers(0, 48))


# ----------------------------------------------------------------------------------- tests


@fuzz
@given(data=valid_files())
def test_valid_files_round_trip(path: Path, data: bytes) -> None:
    check_load(path, data)
    path.write_bytes(data)
    assert load_tensors(path, allowed_dtypes=ALL_DTYPES)[0].keys() == reference_load(data).keys()


@fuzz
@given(
    data=valid_files(),
    flips=st.lists(st.tuples(st.integers(0), st.integers(1, 255)), min_size=1, max_size=4),
)
def test_byte_flips(path: Path, data: bytes, flips: list[tuple[int, int]]) -> None:
    buf = bytearray(data)
    for pos, xor in flips:
        buf[pos % len(buf)] ^= xor
    check_load(path, bytes(buf))


@fuzz
@given(
    data=valid_files(),
    cut=st.integers(0),
    insert=st.binary(max_size=16),
    delete=st.integers(0, 16),
)
def test_truncate_insert_delete(path: Path, data: bytes, cut: int, insert: bytes, delete: int):
    pos = cut % (len(data) + 1)
    check_load(path, data[:pos])
    check_load(path, data[:pos] + insert + data[pos + delete :])


@fuzz
@given(header=json_values, data_len=st.integers(0, 64), length_delta=st.integers(-3, 3))
def test_random_json_headers(path: Path, header: Any, data_len: int, length_delta: int) -> None:
    body = json.dumps(header).encode()
    data = struct.pack("<Q", max(0, len(body) + length_delta)) + body + bytes(data_len)
    check_load(path, data)


@fuzz
@given(header=plausible_headers(), seed=st.integers(0, 2**32 - 1))
def test_plausible_headers(path: Path, header: tuple[dict[str, Any], int], seed: int) -> None:
    obj, data_len = header
    body = json.dumps(obj).encode()
    rng = np.random.default_rng(seed)
    check_load(path, struct.pack("<Q", len(body)) + body + rng.bytes(data_len))


def nesting(v: Any) -> int:
    if isinstance(v, list):
        return 1 + max(map(nesting, v), default=0)
    if isinstance(v, dict):
        return 1 + max(map(nesting, v.values()), default=0)
    return 0


@fuzz
@given(value=json_values, chunk=st.integers(1, 64), noise=st.binary(max_size=32))
def test_json_depth_matches_parser(value: Any, chunk: int, noise: bytes) -> None:
    text = json.dumps(value).encode()
    assert json_depth(text, chunk=chunk) == nesting(value)
    json_depth(noise, chunk=chunk)  # arbitrary bytes: no exception
