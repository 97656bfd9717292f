"""A CSV read a block at a time gives what reading it whole gave: lines, values, messages."""

import numpy as np
import pytest

from rnnkit.data import _io, tabular
from rnnkit.data.tabular import read_series_csv, series_from_text
from rnnkit.errors import DataError


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(_io, "READ_BYTES", 7)  # lines cross blocks; a block holds no line
    monkeypatch.setattr(tabular, "BLOCK_ROWS", 3)


def test_lines_read_in_blocks_are_the_whole_texts_lines(tmp_path, small_blocks):
    text = "\ufeffdate,value\r\n2001,1.5\n\n2002,NA\r\n2003,\u00e9-long-line-past-a-block,7\n2004,3"
    path = tmp_path / "a.csv"
    path.write_bytes(text.encode("utf-8"))
    assert list(_io.utf8_lines(path)) == _io.read_utf8(path).splitlines(keepends=True)


def test_a_series_read_in_blocks_equals_the_whole_text_read(tmp_path, small_blocks):
    r = np.random.default_rng(0)
    rows = [f"{2000 + i},{'' if i in (3, 9) else round(r.normal(), 4)},{r.normal():.4f}"
            for i in range(11)]
    path = tmp_path / "s.csv"
    path.write_text("year,y,x\n" + "\n".join(rows) + "\n2011,,1.0\n")
    for kw in ({"missing": "interpolate"}, {"missing": "drop"}, {"future_rows": True}):
        got = read_series_csv(path, target="y", features=["x"], date="year", **kw)
        want = series_from_text(path.read_text(), "s.csv", target="y", features=["x"],
                                date="year", **kw)
        np.testing.assert_array_equal(got.values, want.values, strict=True)
        assert (got.index, got.missing) == (want.index, want.missing)
    with pytest.raises(DataError, match=r"column 'y' row 4 \(line 5\): missing value"):
        read_series_csv(path, target="y", missing="error")


def test_a_bad_byte_in_a_later_block_is_named_as_in_the_whole_file(tmp_path, small_blocks):
    path = tmp_path / "b.csv"
    path.write_bytes(b"t,value\n1,2\n2,3\n3,\xff4\n")
    with pytest.raises(DataError) as whole:
        _io.read_utf8(path)
    with pytest.raises(DataError) as streamed:
        read_series_csv(path, target="value")
    assert str(streamed.value) == str(whole.value)
    assert "byte offset 18 (line 4)" in str(whole.value)
