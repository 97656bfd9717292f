"""Every bundled dataset loads with the shape documented in rnnkit.data.datasets."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data import DatasetInfo, Sequences, Series, Text, list_datasets, load_dataset
from rnnkit.errors import DataError

SERIES = {  # name: (N, missing, period, first index, last index, first value, last value)
    "sunspots": (309, 0, 11, "1700", "2008", 5.0, 2.9),
    "co2": (2284, 59, 52, "1958-03-29", "2001-12-29", 316.1, None),
    "nile": (100, 0, None, "1871", "1970", 1120.0, 740.0),
    "airline": (144, 0, 12, "1949-01", "1960-12", 112.0, 432.0),
}


def test_list_datasets_names_and_fields():
    infos = list_datasets()
    assert [d.name for d in infos] == ["sunspots", "co2", "nile", "airline", "digits", "pydoc"]
    assert all(isinstance(d, DatasetInfo) and d.licence and d.source for d in infos)
    assert {d.task for d in infos} == {"forecast", "classify", "charlm"}
    shapes = {d.name: d.shape for d in infos}
    for name, (n, *_) in SERIES.items():
        assert shapes[name] == f"({n},)"
    assert shapes["digits"] == "X (1797, 8, 8), y (1797,)"


@pytest.mark.parametrize("name", sorted(SERIES))
def test_series_shapes(name):
    n, missing, period, first, last, v0, v_last = SERIES[name]
    s = load_dataset(name)
    assert isinstance(s, Series)
    assert s.values.shape == (n,) and s.values.dtype == np.float64
    assert np.isfinite(s.values).all()
    assert len(s.index) == n and s.index[0] == first and s.index[-1] == last
    assert s.missing == missing and s.period == period and s.name == name
    assert s.values[0] == v0
    if v_last is not None:
        assert s.values[-1] == v_last


def test_co2_missing_rules():
    raw = load_dataset("co2", missing="drop")
    assert raw.values.shape == (2284 - 59,) and len(raw.index) == 2284 - 59
    assert raw.missing == 59 and raw.missing_rule == "drop"
    # 1958-05-10 is the first empty week, between 316.9 (05-03) and 317.5 (05-17)
    interp = load_dataset("co2")
    k = interp.index.index("1958-05-10")
    assert interp.values[k - 1 : k + 2].tolist() == pytest.approx([316.9, 317.2, 317.5])
    assert load_dataset("co2", missing="ffill").values[k] == interp.values[k - 1]
    with pytest.raises(DataError, match=r"co2.csv: column 'value' row 7 \(line 8\)"):
        load_dataset("co2", missing="error")


def test_digits():
    d = load_dataset("digits")
    assert isinstance(d, Sequences)
    assert d.X.shape == (1797, 8, 8) and d.X.dtype == np.float64
    assert d.y.shape == (1797,) and d.y.dtype == np.int64
    assert d.X.min() == 0.0 and d.X.max() == 1.0
    assert d.classes.tolist() == list(range(10))
    assert np.bincount(d.y).min() > 170  # roughly balanced: 174..183 per digit
    # first image of sklearn's digits, first row: 0 0 5 13 9 1 0 0
    assert (d.X[0, 0] * 16).tolist() == [0, 0, 5, 13, 9, 1, 0, 0] and d.y[0] == 0


def test_pydoc():
    from pydoc_data.topics import topics

    t = load_dataset("pydoc")
    assert isinstance(t, Text)
    assert t.text.startswith(topics[min(topics)])
    assert len(t.text) == sum(map(len, topics.values())) + len(topics) - 1


def test_unknown_name_lists_known():
    with pytest.raises(DataError, match=r"unknown dataset 'sunspot'.*'sunspots'"):
        load_dataset("sunspot")


def test_ucr_without_packages(monkeypatch):
    monkeypatch.setitem(sys.modules, "aeon", None)  # makes `import aeon` raise ImportError
    monkeypatch.setitem(sys.modules, "tslearn", None)
    with pytest.raises(DataError, match="ucr:GunPoint: needs the optional package 'aeon'"):
        load_dataset("ucr:GunPoint")


def test_ucr_conversion_through_a_stand_in_aeon(monkeypatch):
    def load_classification(name, split, return_metadata):
        n = 3 if split == "train" else 2
        X = np.arange(n * 2 * 5, dtype=float).reshape(n, 2, 5)  # aeon: (N, C, T)
        return X, np.array(["1", "2", "1"][:n])

    datasets = types.ModuleType("aeon.datasets")
    datasets.load_classification = load_classification
    monkeypatch.setitem(sys.modules, "aeon", types.ModuleType("aeon"))
    monkeypatch.setitem(sys.modules, "aeon.datasets", datasets)
    d = load_dataset("ucr:Toy")
    assert d.X.shape == (5, 5, 2) and d.n_train == 3 and d.name == "ucr:Toy"
    assert d.X[0, :, 1].tolist() == [5, 6, 7, 8, 9]  # channel 1 of case 0, over time
    assert d.classes.tolist() == [1, 2] and d.y.tolist() == [0, 1, 0, 0, 1]


UCR_TOY = Path(__file__).parent / "ucr" / "Toy"  # the archive's .tsv format, 3 + 2 cases


@pytest.mark.parametrize("where", [UCR_TOY, UCR_TOY / "Toy_TRAIN.tsv"])
def test_ucr_tsv_files_read_without_packages(monkeypatch, where):
    monkeypatch.setitem(sys.modules, "aeon", None)
    monkeypatch.setitem(sys.modules, "tslearn", None)
    d = load_dataset(f"ucr:{where}")
    assert d.name == "ucr:Toy" and d.n_train == 3 and len(d) == 5
    # NaN padding at the end is dropped: lengths 4, 3, 4 (train), then 2, 4 (test)
    assert [x.shape for x in d.X] == [(4, 1), (3, 1), (4, 1), (2, 1), (4, 1)]
    assert d.X[1][:, 0].tolist() == [-1.0, -2.0, -3.0] and d.X[3][:, 0].tolist() == [-0.5, -1.5]
    # "1.0000000e+00" and "1" are the same class
    assert d.classes.tolist() == [1, 2] and d.y.tolist() == [0, 1, 0, 1, 0]


def test_ucr_tsv_bad_files_are_named_with_the_line(tmp_path):
    folder = tmp_path / "Bad"
    folder.mkdir()
    train, test = folder / "Bad_TRAIN.tsv", folder / "Bad_TEST.tsv"
    test.write_text("1\t1.0\t2.0\n", encoding="utf-8")
    cases = {
        "1\t1.0\tNaN\t2.0\n": r"Bad_TRAIN.tsv: line 1: a missing value \(NaN\) at position 2",
        "1\t1.0\n2\t1.0\tabc\n": r"Bad_TRAIN.tsv: line 2: expected numbers after the label, "
                                   r"got 'abc'",
        "1\tNaN\tNaN\n": r"line 1: no value, only NaN",
        "1\n": r"line 1: expected a label and values separated by tabs",
        "1\t1.0\tinf\n": r"line 1: an infinite value",
        "\n\n": r"Bad_TRAIN.tsv: no case in the file",
    }
    for text, message in cases.items():
        train.write_text(text, encoding="utf-8")
        with pytest.raises(DataError, match=message):
            load_dataset(f"ucr:{folder}")
    train.write_text("1\t1.0\n", encoding="utf-8")
    test.unlink()
    with pytest.raises(DataError, match=r"Bad_TEST.tsv: file not found"):
        load_dataset(f"ucr:{folder}")
    with pytest.raises(DataError, match=r"expected a UCR problem's folder or its NAME_TRAIN"):
        load_dataset(f"ucr:{train.with_name('Bad.tsv')}")
