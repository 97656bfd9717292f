"""Long-format CSV sequences, .npz files and pad_sequences."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.data import encode_labels, load_npz, pad_sequences, read_sequences_csv
from rnnkit.errors import DataError

LONG = (
    "sequence_id,time,ax,ay,label\n"
    "b,2,5,50,run\n"
    "a,1,1,10,walk\n"
    "b,1,4,40,run\n"
    "a,0,0,0,walk\n"
    "a,2,2,20,walk\n"
)


def write(tmp_path, text, name="seq.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_read_sequences_sorted_by_time(tmp_path):
    d = read_sequences_csv(write(tmp_path, LONG))
    assert d.ids == ["b", "a"] and d.features == ("ax", "ay")
    assert [x.tolist() for x in d.X] == [[[4, 40], [5, 50]], [[0, 0], [1, 10], [2, 20]]]
    assert d.classes.tolist() == ["run", "walk"] and d.y.tolist() == [0, 1]
    assert d.y.dtype == np.int64 and len(d) == 2


def test_integer_labels_sort_as_numbers(tmp_path):
    text = "id,t,x,label\n1,0,1,10\n2,0,2,9\n"
    d = read_sequences_csv(write(tmp_path, text), id_col="id", time_col="t", features=["x"])
    assert d.classes.tolist() == [9, 10] and d.classes.dtype == np.int64
    assert d.y.tolist() == [1, 0]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "sequence_id,time,x,label\na,0,1,up\na,1,2,down\nb,0,1,up\n",
            r"seq.csv: column 'label' row 2 \(line 3\): sequence 'a' has label 'down' here but "
            r"'up' at row 1 \(line 2\)",
        ),
        (
            "sequence_id,time,x,label\na,0,1,up\nb,0,1,up\n",
            r"seq.csv: column 'label': expected at least 2 classes, got only \['up'\]",
        ),
        (
            "sequence_id,time,x,label\na,0,1,up\na,0,2,up\nb,0,1,down\n",
            r"sequence 'a' has time 0.0 more than once in column 'time'",
        ),
        (
            "sequence_id,time,x,label\na,0,oops,up\nb,0,1,down\n",
            r"column 'x' row 1 \(line 2\): expected a number, got 'oops'",
        ),
        (
            "sequence_id,time,x,label\na,0,,up\nb,0,1,down\n",
            r"column 'x' row 1 \(line 2\): missing value",
        ),
        (
            "sequence_id,time,x,label\na,0,1,\nb,0,1,down\n",
            r"column 'label' row 1 \(line 2\): expected a label, got ''",
        ),
        ("sequence_id,time,label\na,0,up\n", r"no feature columns besides"),
        (
            "id,time,x,label\na,0,1,up\n",
            r"id column 'sequence_id' not found; available columns: \['id', 'time', 'x', 'label'\]",
        ),
    ],
)
def test_bad_sequence_csv(tmp_path, text, match):
    with pytest.raises(DataError, match=match):
        read_sequences_csv(write(tmp_path, text))


def test_npz_dense_and_ragged(tmp_path):
    X = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    np.savez(tmp_path / "d.npz", X=X, y=np.array([3, 1]))
    d = load_npz(tmp_path / "d.npz")
    assert d.X.shape == (2, 4, 3) and d.X.dtype == np.float64
    assert d.classes.tolist() == [1, 3] and d.y.tolist() == [1, 0]
    np.savez(tmp_path / "r.npz", X=X, y=np.array(["a", "b"]), lengths=np.array([2, 4]))
    r = load_npz(tmp_path / "r.npz")
    assert [x.shape for x in r.X] == [(2, 3), (4, 3)] and r.classes.tolist() == ["a", "b"]
    assert np.array_equal(r.X[0], X[0, :2])
    np.savez(tmp_path / "f.npz", X=X, y=np.array([0.5, 1.5]))
    f = load_npz(tmp_path / "f.npz")
    assert f.classes is None and f.y.tolist() == [0.5, 1.5]


def test_npz_errors(tmp_path):
    X = np.zeros((2, 3, 1))
    cases = {
        "obj.npz": ({"X": X, "y": np.array([1, "a", None], dtype=object)}, "holds Python objects"),
        "noy.npz": ({"X": X}, r"expected arrays 'X' and 'y', got \['X'\]"),
        "x2d.npz": ({"X": np.zeros((2, 3)), "y": np.array([0, 1])}, r"shape \(N, T, F\)"),
        "ylen.npz": ({"X": X, "y": np.array([0, 1, 1])}, r"expected y of shape \(2,\)"),
        "len.npz": (
            {"X": X, "y": np.array([0, 1]), "lengths": np.array([0, 3])},
            r"lengths of shape \(2,\) in \[1, 3\]",
        ),
        "nan.npz": ({"X": np.full((2, 3, 1), np.nan), "y": np.array([0, 1])}, r"X\[0\] has NaN"),
        "one.npz": ({"X": X, "y": np.array([1, 1])}, r"one.npz: y: expected at least 2 classes"),
    }
    for name, (arrays, match) in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(DataError, match=match):
            load_npz(tmp_path / name)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"bad.npz: expected an .npz file"):
        load_npz(tmp_path / "bad.npz")
    np.save(tmp_path / "single.npy", X)
    with pytest.raises(DataError, match=r"single.npy: expected an .npz archive"):
        load_npz(tmp_path / "single.npy")
    with pytest.raises(DataError, match=r"missing.npz: file not found"):
        load_npz(tmp_path / "missing.npz")


def test_pad_sequences():
    a, b = np.ones((2, 3)), 2 * np.ones((4, 3))
    padded, lengths = pad_sequences([a, b])
    assert padded.shape == (2, 4, 3) and lengths.tolist() == [2, 4] and lengths.dtype == np.int64
    assert padded[0, :2].tolist() == a.tolist() and not padded[0, 2:].any()
    assert np.array_equal(padded[1], b)
    ids, n = pad_sequences([np.array([5, 6]), np.array([7])], value=-1)
    assert ids.tolist() == [[5, 6], [7, -1]] and ids.dtype == np.int64 and n.tolist() == [2, 1]
    with pytest.raises(DataError, match=r"sequence 1 has shape \(2, 2\), expected \(T, 3\)"):
        pad_sequences([a, np.ones((2, 2))])
    with pytest.raises(DataError, match=r"sequence 0 is empty"):
        pad_sequences([np.ones((0, 3))])
    with pytest.raises(DataError, match=r"expected at least one sequence"):
        pad_sequences([])


def test_encode_labels():
    codes, classes = encode_labels(["b", "a", "b"])
    assert codes.tolist() == [1, 0, 1] and classes.tolist() == ["a", "b"]
    with pytest.raises(DataError, match="expected labels, got none"):
        encode_labels([])
