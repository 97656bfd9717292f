"""read_series_csv and the missing-value rules, on tiny files with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.data import fill_missing, read_series_csv
from rnnkit.errors import DataError

GAPPY = "date,value,temp\nd1,,5\nd2,2,NA\nd3,nan,7\nd4,6,\nd5,,9\n"


def write(tmp_path, text, name="s.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_reads_target_features_and_dates(tmp_path):
    p = write(tmp_path, "date,a,b,c\n2020,1,10,100\n2021,2,20,200\n2022,3,30,300\n")
    s = read_series_csv(p, target="b", features=["c", "a"], date="date")
    assert s.values.tolist() == [[10, 100, 1], [20, 200, 2], [30, 300, 3]]
    assert s.columns == ("b", "c", "a") and s.target_col == 0
    assert s.target.tolist() == [10, 20, 30]
    assert s.index == ["2020", "2021", "2022"] and s.missing == 0 and s.name == "s.csv"
    uni = read_series_csv(p, target="a")
    assert uni.values.shape == (3,) and uni.index is None


@pytest.mark.parametrize(
    ("rule", "value", "temp", "index"),
    [
        ("interpolate", [2, 2, 4, 6, 6], [5, 6, 7, 8, 9], ["d1", "d2", "d3", "d4", "d5"]),
        ("ffill", [2, 2, 2, 6, 6], [5, 5, 7, 7, 9], ["d1", "d2", "d3", "d4", "d5"]),
    ],
)
def test_fill_rules(tmp_path, rule, value, temp, index):
    s = read_series_csv(
        write(tmp_path, GAPPY), target="value", features=["temp"], date="date", missing=rule
    )
    assert s.values[:, 0].tolist() == value and s.values[:, 1].tolist() == temp
    assert s.index == index and s.missing == 5 and s.missing_rule == rule


def test_drop_rule_keeps_complete_rows(tmp_path):
    text = "date,value\nd1,1\nd2,\nd3,3\nd4,NA\nd5,5\n"
    s = read_series_csv(write(tmp_path, text), target="value", date="date", missing="drop")
    assert s.values.tolist() == [1, 3, 5] and s.index == ["d1", "d3", "d5"] and s.missing == 2


def test_error_rule_names_cell(tmp_path):
    with pytest.raises(DataError, match=r"s.csv: column 'value' row 1 \(line 2\): missing"):
        read_series_csv(write(tmp_path, GAPPY), target="value", missing="error")


def test_fill_missing_on_arrays():
    out, keep = fill_missing(np.array([np.nan, 1.0, np.nan, np.nan, 4.0, np.nan]))
    assert out.tolist() == [1, 1, 2, 3, 4, 4] and keep is None
    out, keep = fill_missing(np.array([1.0, np.nan, 3.0]), "drop")
    assert out.tolist() == [1, 3] and keep.tolist() == [True, False, True]
    with pytest.raises(DataError, match="column 'x' has no values"):
        fill_missing(np.array([[1.0, np.nan], [2.0, np.nan]]), columns=["v", "x"])
    with pytest.raises(DataError, match="missing: expected one of"):
        fill_missing(np.zeros(3), "mean")


@pytest.mark.parametrize(
    ("content", "kwargs", "match"),
    [
        (b"", {}, r"s.csv: the file is empty"),
        (b"\n \n", {}, r"s.csv: the file is empty"),
        (b"1,2\n3,4\n", {}, r"s.csv: expected a header line of column names, got '1,2'"),
        (
            b"a,b\n1,2\n3,4\n",
            {"target": "value"},
            r"s.csv: target column 'value' not found; available columns: \['a', 'b'\]",
        ),
        (
            b"a,b\n1,2\n3,4\n",
            {"target": "a", "features": ["c"]},
            r"feature column 'c' not found; available columns: \['a', 'b'\]",
        ),
        (b"a,b\n1,2\n3,4\n", {"target": "a", "date": "when"}, r"date column 'when' not found"),
        (
            b"t,value\n1,2\n2,abc\n",
            {"target": "value"},
            r"s.csv: column 'value' row 2 \(line 3\): expected a number, got 'abc'",
        ),
        (b"t,value\n1,2\n2,inf\n", {"target": "value"}, r"row 2 \(line 3\).*got 'inf'"),
        (b"t,value\n1,2\n", {"target": "value"}, r"expected at least 2 data rows, got 1"),
        (
            b"t,value\n1,2\n2,3,4\n",
            {"target": "value"},
            r"row 2 \(line 3\): expected 2 cells as in the header, got 3",
        ),
        (b"t,t\n1,2\n2,3\n", {"target": "t"}, r"header names column\(s\) \['t'\] more than once"),
        (
            b"t,value\n1,1\n2,\n3,\n",
            {"target": "value", "missing": "drop"},
            r"expected at least 2 rows after missing='drop', got 1",
        ),
        (
            b"t,value\n1,caf\xe9\n",
            {"target": "value"},
            r"s.csv: expected UTF-8 text, got byte 0xe9 at byte offset 13 \(line 2\)",
        ),
        (
            b"t,value\n1,2\n2,3\n",
            {"target": "value", "missing": "zero"},
            r"missing: expected one of \('interpolate', 'ffill', 'drop', 'error'\), got 'zero'",
        ),
    ],
)
def test_bad_files(tmp_path, content, kwargs, match):
    p = tmp_path / "s.csv"
    p.write_bytes(content)
    with pytest.raises(DataError, match=match):
        read_series_csv(p, **{"target": "value", **kwargs})


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope.csv: file not found"):
        read_series_csv(tmp_path / "nope.csv", target="value")


def test_bom_and_crlf_are_accepted(tmp_path):
    p = tmp_path / "w.csv"
    p.write_bytes(b"\xef\xbb\xbfyear,value\r\n2000,1.5\r\n2001,2.5\r\n")
    s = read_series_csv(p, target="value", date="year")
    assert s.values.tolist() == [1.5, 2.5] and s.index == ["2000", "2001"]
