"""Tests for rnnkit.fileio: round trips, atomic writes, and a table of hostile files."""

from __future__ import annotations

import errno
import json
import os
import pickle
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rnnkit import fileio
from rnnkit.errors import ModelFileError
from rnnkit.fileio import json_depth, load_tensors, read_metadata, save_tensors, write_atomic


def raw_file(header: object, data: bytes = b"", *, length: int | None = None) -> bytes:
    """Safetensors bytes from a header (a JSON-able object, or raw bytes) and a data buffer."""
    body = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(body) if length is None else length) + body + data


def entry(dtype: str, shape: list, begin: int, end: int) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def small_file() -> bytes:
    """A valid file with two tensors and metadata, built by the real writer."""
    import safetensors.numpy

    tensors = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array([7], np.int64)}
    return safetensors.numpy.save(tensors, metadata={"rnnkit": "{}"})


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    "arr",
    [
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.linspace(-1, 1, 7),  # float64
        np.arange(-5, 5, dtype=np.int64),
        np.array(2.5, np.float32),  # 0-d
        np.zeros((0, 3), np.float64),  # empty
        np.zeros((2, 0, 4), np.int64),
        np.arange(5, dtype=">f8"),  # big-endian in memory
        np.asfortranarray(np.arange(6.0).reshape(2, 3)),  # not C-contiguous
        np.arange(10, dtype=np.float32)[::3],  # strided view
    ],
    ids=lambda a: f"{a.dtype.str}{a.shape}",
)
def test_round_trip(tmp_path: Path, arr: np.ndarray) -> None:
    path = tmp_path / "m.safetensors"
    save_tensors(path, {"x": arr, "b": np.ones(2, np.float32)}, metadata={"rnnkit": '{"a": 1}'})
    tensors, metadata = load_tensors(path)
    assert metadata == {"rnnkit": '{"a": 1}'}
    out = tensors["x"]
    assert out.shape == arr.shape and out.dtype == arr.dtype.newbyteorder("=")
    np.testing.assert_array_equal(out, arr)
    assert out.flags.c_contiguous and out.flags.writeable and out.flags.owndata
    assert read_metadata(path) == metadata


def test_round_trip_no_metadata_and_no_tensors(tmp_path: Path) -> None:
    save_tensors(tmp_path / "a", {})
    assert load_tensors(tmp_path / "a") == ({}, {})
    save_tensors(tmp_path / "b", {"x": np.ones(3)})
    assert load_tensors(tmp_path / "b")[1] == {}


def test_allowed_dtypes_and_nonfinite(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_tensors(path, {"w": np.array([1.0, np.nan, np.inf], np.float32)})
    with pytest.raises(ModelFileError, match=r"tensor 'w' has 2 NaN/Inf"):
        load_tensors(path)
    assert np.isnan(load_tensors(path, allow_nonfinite=True)[0]["w"][1])
    with pytest.raises(ModelFileError, match=r"dtype F32, allowed here: \['F64'\]"):
        load_tensors(path, allowed_dtypes=("F64",))
    with pytest.raises(ValueError, match="allowed_dtypes: unsupported"):
        load_tensors(path, allowed_dtypes=("BF16",))


@pytest.mark.parametrize(
    ("tensors", "metadata", "error", "match"),
    [
        ({"x": np.array([1, 2], object)}, None, ValueError, "has dtype object"),
        ({"x": np.array([True])}, None, ValueError, "has dtype bool"),
        ({"x": [1.0]}, None, TypeError, "must be a numpy array"),
        ({1: np.ones(1)}, None, TypeError, "names must be str"),
        ({"\ud800": np.ones(1)}, None, ValueError, "lone surrogate"),
        ({}, {"k": 1}, TypeError, "metadata must map str to str"),
    ],
)
def test_save_rejects_bad_input(tmp_path: Path, tensors, metadata, error, match) -> None:
    with pytest.raises(error, match=match):
        save_tensors(tmp_path / "m", tensors, metadata)
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- atomic writes


def test_write_atomic_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    write_atomic(path, b"old")
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


@pytest.mark.parametrize("target", ["replace", "fsync", "write"])
def test_write_atomic_disk_full_keeps_old_file(tmp_path: Path, monkeypatch, target) -> None:
    path = tmp_path / "m.safetensors"
    save_tensors(path, {"w": np.ones(3)})
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if target == "write":  # the temp file's write fails half-way
        real_fdopen = os.fdopen

        def fdopen_full(fd: int, mode: str):
            f = real_fdopen(fd, mode)
            f.write(b"partial")
            f.write = disk_full  # an instance attribute shadows the method
            return f

        monkeypatch.setattr(fileio.os, "fdopen", fdopen_full)
    else:
        monkeypatch.setattr(fileio.os, target, disk_full)
    with pytest.raises(OSError, match=r"cannot write .*m\.safetensors: No space left") as info:
        save_tensors(path, {"w": np.zeros(5)})
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_write_atomic_interrupted_removes_temp(tmp_path: Path, monkeypatch) -> None:
    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio.os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "f", b"x")
    assert not list(tmp_path.iterdir())


def test_write_errors_keep_their_subclass(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"cannot write .*no_such_dir"):
        write_atomic(tmp_path / "no_such_dir" / "f", b"x")
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError, match="cannot write"):
        write_atomic(tmp_path / "d", b"x")
    assert not [p for p in tmp_path.iterdir() if p.name != "d"]


# ---------------------------------------------------------------------------- hostile files

F32_2x2 = entry("F32", [2, 2], 0, 16)
DATA16 = np.arange(4, dtype="<f4").tobytes()
HOSTILE: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "0 bytes, too short"),
    "length only": (struct.pack("<Q", 2), "10|too short"),
    "length too large": (raw_file({}, length=10**12), "header declares 1000000000000 bytes"),
    "length 2**63": (raw_file({}, length=2**63), f"header declares {2**63} bytes"),
    "length 2**64-1": (b"\xff" * 8 + b"{}", f"header declares {2**64 - 1}"),
    "header is list": (raw_file(b"[]"), "does not start with '{'"),
    "header leading space": (raw_file(b" {}"), "does not start with '{'"),
    "header empty": (raw_file(b"", b"{}"), "not valid JSON"),
    "bad JSON": (raw_file(b'{"a": }'), "not valid JSON"),
    "trailing garbage": (raw_file(b"{} x"), "not valid JSON"),
    "NaN constant": (raw_file(b'{"__metadata__": {"a": NaN}}'), "non-standard constant"),
    "duplicate key": (raw_file(b'{"a": 1, "a": 2}'), "duplicate key 'a'"),
    "huge int": (raw_file(b'{"a": ' + b"9" * 5000 + b"}"), "not valid JSON"),
    "non-UTF-8": (raw_file(b'{"\xff": 1}'), "not valid UTF-8"),
    "lone surrogate": (raw_file(b'{"__metadata__": {"\\ud800": "x"}}'), "lone surrogate"),
    "deep nesting": (raw_file(b"{" + b"[" * 10**5), "nests 100001 deep, limit is 32"),
    "deep objects": (raw_file(b'{"a":' * 40 + b"1" + b"}" * 40), "nests 40 deep"),
    "metadata not dict": (raw_file({"__metadata__": ["a"]}), "__metadata__ must be an object"),
    "metadata int value": (raw_file({"__metadata__": {"a": 1}}), r"\['a'\] must be a string"),
    "metadata nested": (raw_file({"__metadata__": {"a": {}}}), "must be a string"),
    "entry not dict": (raw_file({"w": [1]}), "must have exactly"),
    "entry extra key": (raw_file({"w": {**F32_2x2, "x": 1}}, DATA16), "must have exactly"),
    "entry missing key": (raw_file({"w": {"dtype": "F32", "shape": [1]}}), "must have exactly"),
    "unknown dtype": (raw_file({"w": entry("Q7", [4], 0, 16)}, DATA16), "unsupported dtype 'Q7'"),
    "dtype not str": (raw_file({"w": entry(4, [4], 0, 16)}, DATA16), "unsupported dtype 4"),
    "BF16": (raw_file({"w": entry("BF16", [8], 0, 16)}, DATA16), "unsupported dtype 'BF16'"),
    "dtype not allowed": (raw_file({"w": entry("I32", [4], 0, 16)}, DATA16), "dtype I32, allowed"),
    "shape bool": (raw_file({"w": entry("F32", [True, 4], 0, 16)}, DATA16), "shape must be"),
    "shape float": (raw_file({"w": entry("F32", [4.0], 0, 16)}, DATA16), "shape must be"),
    "shape negative": (raw_file({"w": entry("F32", [-4], 0, 16)}, DATA16), "shape must be"),
    "shape not list": (raw_file({"w": entry("F32", 4, 0, 16)}, DATA16), "shape must be"),
    "too many dims": (raw_file({"w": entry("F32", [1] * 33, 0, 4)}, DATA16[:4]), "33 dimensions"),
    "offsets bool": (raw_file({"w": entry("F32", [4], False, 16)}, DATA16), "data_offsets must"),
    "offsets 3 long": (raw_file({"w": {**F32_2x2, "data_offsets": [0, 8, 16]}}), "data_offsets"),
    "offsets reversed": (raw_file({"w": entry("F32", [0], 16, 0)}, DATA16), "outside the 16-byte"),
    "offsets beyond data": (raw_file({"w": entry("F32", [4], 0, 32)}, DATA16), "outside the"),
    "shape vs bytes": (raw_file({"w": entry("F32", [3], 0, 16)}, DATA16), "needs 12 bytes but"),
    "dtype vs bytes": (
        raw_file({"w": entry("F64", [4], 0, 16)}, DATA16),
        "needs more than the 16 available",
    ),
    "huge shape": (
        raw_file({"w": entry("F64", [2**40, 2**40], 0, 16)}, DATA16),
        "needs more than the 16 available bytes",
    ),
    "huge shape x33 digits": (
        raw_file({"w": entry("F64", [10**4000] * 32, 0, 16)}, DATA16),
        "needs more than",
    ),
    "overlap": (
        raw_file({"a": entry("F32", [2], 0, 8), "b": entry("F32", [3], 4, 16)}, DATA16),
        "'b' at bytes 4..16 overlaps",
    ),
    "same range twice": (
        raw_file({"a": entry("F32", [4], 0, 16), "b": entry("F32", [4], 0, 16)}, DATA16),
        "overlaps",
    ),
    "gap": (
        raw_file({"a": entry("F32", [1], 0, 4), "b": entry("F32", [2], 8, 16)}, DATA16),
        "'b' at bytes 8..16 leaves a gap",
    ),
    "gap at start": (raw_file({"a": entry("F32", [2], 8, 16)}, DATA16), "leaves a gap"),
    "trailing data": (raw_file({"a": entry("F32", [2], 0, 8)}, DATA16), "cover 8 of 16 data"),
    "data without tensors": (raw_file({}, b"xx"), "cover 0 of 2"),
    "NaN weights": (
        raw_file({"w": entry("F32", [4], 0, 16)}, np.array([0, np.nan, 0, 0], "<f4").tobytes()),
        "tensor 'w' has 1 NaN/Inf",
    ),
    "Inf float64": (
        raw_file({"w": entry("F64", [2], 0, 16)}, np.array([-np.inf, 0], "<f8").tobytes()),
        "has 1 NaN/Inf",
    ),
    "pickle": (pickle.dumps({"w": [1.0, 2.0]}), "is a Python pickle"),
    "pickle protocol 2": (pickle.dumps(list(range(40)), protocol=2), "is a Python pickle"),
    "gzip": (b"\x1f\x8b\x08\x00" + b"\x00" * 20, "is a gzip file"),
    "hdf5": (b"\x89HDF\r\n\x1a\n" + b"\x00" * 20, "is an HDF5 file"),
}


@pytest.mark.parametrize(("data", "match"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_file(tmp_path: Path, data: bytes, match: str) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(data)
    with pytest.raises(ModelFileError, match=match) as info:
        load_tensors(path)
    assert str(info.value).startswith(str(path))


def test_huge_shape_fails_without_allocating(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(raw_file({"w": entry("F32", [2**40, 2**40], 0, 16)}, DATA16))
    tracemalloc.start()
    with pytest.raises(ModelFileError, match="needs more than"):
        load_tensors(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20


def test_every_truncation_of_a_valid_file(tmp_path: Path) -> None:
    good = small_file()
    path = tmp_path / "m.safetensors"
    for n in range(len(good)):
        path.write_bytes(good[:n])
        with pytest.raises(ModelFileError, match=r"too short|header declares|outside the|cover"):
            load_tensors(path)
    path.write_bytes(good)
    assert load_tensors(path)[0]["w"].shape == (2, 3)


def test_npy_with_object_array_renamed(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    with open(path, "wb") as f:
        np.save(f, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(ModelFileError, match=r"is a NumPy \.npy file"):
        load_tensors(path)


def test_zip_renamed(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    with zipfile.ZipFile(path, "w") as z:  # the layout of a torch.save .pt file
        z.writestr("archive/data.pkl", pickle.dumps({"w": 1}))
    with pytest.raises(ModelFileError, match="is a zip archive"):
        load_tensors(path)


def test_not_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="is a directory"):
        load_tensors(tmp_path)
    with pytest.raises(ModelFileError, match="no such file"):
        load_tensors(tmp_path / "missing.safetensors")
    with pytest.raises(ModelFileError, match="no such file"):
        read_metadata(tmp_path / "missing.safetensors")
    with pytest.raises(ModelFileError, match="cannot open"):
        load_tensors("a\0b")
    if hasattr(os, "mkfifo"):  # a FIFO would block a plain open() forever
        os.mkfifo(tmp_path / "fifo")
        with pytest.raises(ModelFileError, match="not a regular file"):
            load_tensors(tmp_path / "fifo")


def test_symlink_is_followed(tmp_path: Path) -> None:
    save_tensors(tmp_path / "real", {"w": np.ones(2)})
    (tmp_path / "link").symlink_to(tmp_path / "real")
    np.testing.assert_array_equal(load_tensors(tmp_path / "link")[0]["w"], np.ones(2))


def test_header_limit_and_padding(tmp_path: Path) -> None:
    path = tmp_path / "m"
    path.write_bytes(raw_file(b'{"__metadata__": {"a": "b"}}' + b" " * 1000))  # padding is legal
    assert read_metadata(path) == {"a": "b"}
    with pytest.raises(ModelFileError, match="exceeds the limit of 100"):
        read_metadata(path, max_header_bytes=100)
    with pytest.raises(ModelFileError, match="nests 2 deep, limit is 1"):
        read_metadata(path, max_nesting=1)


def test_read_metadata_validates_entries_but_not_data(tmp_path: Path) -> None:
    path = tmp_path / "m"
    path.write_bytes(raw_file({"__metadata__": {"k": "v"}, "w": entry("F32", [4], 0, 16)}, DATA16))
    assert read_metadata(path) == {"k": "v"}
    path.write_bytes(raw_file({"w": entry("F32", [4], 0, 16)}, DATA16[:8]))
    with pytest.raises(ModelFileError, match="outside the 8-byte data buffer"):
        read_metadata(path)


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("", 0),
        ("{}", 1),
        ('{"a": [[1], {"b": []}]}', 4),
        ('{"a[[[": "}}]]"}', 1),
        ('["\\"[[", [[]]]', 3),  # escaped quote inside a string
        ('["\\\\", [[]]]', 3),  # escaped backslash ends the string
        ('["\\\\\\"[", []]', 2),
    ],
)
def test_json_depth(text: str, depth: int) -> None:
    assert json_depth(text.encode()) == depth
    assert json_depth(text.encode(), chunk=1) == depth  # state carried across chunks
    assert json_depth(text.encode(), chunk=3) == depth


def test_empty_metadata_with_no_tensors(tmp_path: Path) -> None:
    # safetensors 0.8 serializes this case to invalid JSON; save_tensors must still work
    save_tensors(tmp_path / "m", {}, metadata={})
    assert load_tensors(tmp_path / "m") == ({}, {})


def test_save_refuses_unreadable_output(tmp_path: Path, monkeypatch) -> None:
    import safetensors.numpy

    monkeypatch.setattr(safetensors.numpy, "save", lambda *a, **k: raw_file(b"{},{}"))
    with pytest.raises(ValueError, match="cannot be read back: save_tensors: header is not valid"):
        save_tensors(tmp_path / "m", {"w": np.ones(2)})
    assert not list(tmp_path.iterdir())
