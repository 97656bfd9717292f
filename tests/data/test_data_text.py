"""Vocab, read_text, char_lm_windows and split_text."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnkit.data import Vocab, char_lm_windows, read_text, split_text, tokenize
from rnnkit.errors import DataError


def test_char_vocab_order_and_round_trip():
    v = Vocab.build("abracadabra")
    assert v.tokens == ["<unk>", "a", "b", "r", "c", "d"] and len(v) == v.size == 6
    ids = v.encode("abracadabra")
    assert ids.dtype == np.int64 and ids.tolist() == [1, 2, 3, 1, 4, 1, 5, 1, 2, 3, 1]
    assert v.decode(ids) == "abracadabra"
    assert v.encode("abz").tolist() == [1, 2, 0] and v.decode([1, 0]) == "a<unk>"


def test_min_count_and_max_size():
    assert Vocab.build("aaabbc", min_count=2).tokens == ["<unk>", "a", "b"]
    assert Vocab.build("aaabbc", max_size=2).tokens == ["<unk>", "a"]


def test_word_level():
    v = Vocab.build("the cat, the dog.", level="word")
    assert tokenize("the cat, the dog.", "word") == ["the", "cat", ",", "the", "dog", "."]
    assert v.tokens[:2] == ["<unk>", "the"]
    assert v.decode(v.encode("the dog, the bird")) == "the dog , the <unk>"


def test_vocab_json_round_trip_keeps_ids():
    v = Vocab.build("héllo wörld\n\t✓")
    w = Vocab.from_dict(json.loads(json.dumps(v.to_dict())))
    assert w.tokens == v.tokens and w.level == "char"
    assert w.decode(w.encode("wörld ✓")) == "wörld ✓"


def test_vocab_errors():
    with pytest.raises(DataError, match=r"ids in \[0, 3\), got int64 values 0..7"):
        Vocab.build("ab").decode(np.array([0, 7]))
    with pytest.raises(DataError, match="level: expected one of"):
        Vocab.build("ab", level="byte")
    with pytest.raises(DataError, match="expected some text"):
        Vocab.build("")
    with pytest.raises(DataError, match=r"tokens\[0\] == '<unk>'"):
        Vocab.from_dict({"level": "char", "tokens": ["a"]})
    with pytest.raises(DataError, match=r"\['a'\] more than once"):
        Vocab(["<unk>", "a", "a"])
    with pytest.raises(DataError, match="'tokens' to be a list of str"):
        Vocab.from_dict({"level": "char"})


def test_read_text(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("hello\nworld\n", encoding="utf-8")
    assert read_text(p) == "hello\nworld\n"
    p.write_bytes(b"")
    with pytest.raises(DataError, match=r"t.txt: the file is empty"):
        read_text(p)
    p.write_bytes(b"ok\nok\n\xff\xfe")
    with pytest.raises(
        DataError,
        match=r"t.txt: expected UTF-8 text, got byte 0xff at byte "
        r"offset 6 \(line 3\)",
    ):
        read_text(p)
    with pytest.raises(DataError, match=r"none.txt: file not found"):
        read_text(tmp_path / "none.txt")


def test_char_lm_windows_exact():
    X, Y = char_lm_windows(np.arange(8), 3)
    assert X.tolist() == [[0, 1, 2], [3, 4, 5]] and Y.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert X.dtype == Y.dtype == np.int64
    X, Y = char_lm_windows(np.arange(7), 3)  # 7 ids: exactly two pairs
    assert Y[-1].tolist() == [4, 5, 6]
    with pytest.raises(DataError, match=r"seq_len 5 needs at least 6 ids, got 5"):
        char_lm_windows(np.arange(5), 5)
    with pytest.raises(DataError, match=r"expected 1-D integer ids"):
        char_lm_windows(np.zeros(5), 2)


def test_split_text():
    assert split_text("abcdefghij", val=0.2) == ("abcdefgh", "ij")
    tr, va = split_text(np.arange(10), val=0.3)
    assert tr.tolist() == list(range(7)) and va.tolist() == [7, 8, 9]
    with pytest.raises(DataError, match=r"val=0.1 of 3 items leaves an empty part"):
        split_text("abc", val=0.1)
