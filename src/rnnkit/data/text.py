"""Text for language models: reading, vocabularies, next-token windows, a positional split.

Tokens are characters (``level="char"``) or words (``level="word"``: runs of letters/digits
and single punctuation marks, by the regex ``\\w+|[^\\w\\s]``; spaces are not tokens, so a
word-level ``decode`` joins tokens with single spaces and only the tokens round-trip). At the
character level ``decode(encode(text)) == text`` for every text whose characters are all in
the vocabulary.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from typing import Any

import numpy as np

from rnnkit.data._io import display_name, read_utf8
from rnnkit.errors import DataError

UNK = "<unk>"
LEVELS = ("char", "word")
_WORD = re.compile(r"\w+|[^\w\s]")


def read_text(path: str | os.PathLike[str]) -> str:
    """Read a UTF-8 text file whole.

    Raises:
        DataError: the file is missing, not UTF-8 (the message names the byte offset and
            line), or empty.
    """
    text = read_utf8(path)
    if not text:
        raise DataError(f"{display_name(path)}: the file is empty, expected some text")
    return text


def tokenize(text: str, level: str = "char") -> list[str]:
    """Split ``text`` into tokens at ``level`` ("char" or "word")."""
    _check_level(level)
    return list(text) if level == "char" else _WORD.findall(text)


class Vocab:
    """A token <-> id mapping with ``<unk>`` at id 0.

    Build one with ``Vocab.build``; ids follow descending frequency (ties in token order), so
    the same text always gives the same vocabulary.

    Attributes:
        tokens: id -> token; ``tokens[0]`` is ``"<unk>"``.
        level: "char" or "word".
        index: token -> id.
    """

    def __init__(self, tokens: list[str], level: str = "char") -> None:
        _check_level(level)
        if not tokens or tokens[0] != UNK:
            raise DataError(f"Vocab: expected tokens[0] == {UNK!r}, got {tokens[:1]!r}")
        if len(set(tokens)) != len(tokens):
            dupes = sorted({t for t in tokens if tokens.count(t) > 1})
            raise DataError(f"Vocab: tokens must be distinct, got {dupes} more than once")
        self.tokens = list(tokens)
        self.level = level
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def build(
        cls, text: str, level: str = "char", min_count: int = 1, max_size: int | None = None
    ) -> Vocab:
        """Learn a vocabulary from ``text``.

        Args:
            text: the training text.
            level: "char" or "word".
            min_count: tokens seen fewer times become ``<unk>``.
            max_size: the most ids, ``<unk>`` included (the rarest tokens are left out).

        Raises:
            DataError: empty text, ``min_count < 1`` or ``max_size < 2``.
        """
        if not text:
            raise DataError("Vocab.build: expected some text, got an empty string")
        if min_count < 1:
            raise DataError(f"Vocab.build: expected min_count >= 1, got {min_count}")
        if max_size is not None and max_size < 2:
            raise DataError(
                f"Vocab.build: expected max_size >= 2 (<unk> and one token), got {max_size}"
            )
        counts = Counter(tokenize(text, level))
        counts.pop(UNK, None)
        kept = sorted(
            (t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t)
        )
        if max_size is not None:
            kept = kept[: max_size - 1]
        return cls([UNK, *kept], level)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def size(self) -> int:
        """V, the number of ids."""
        return len(self.tokens)

    def encode(self, text: str) -> np.ndarray:
        """Token ids ``(T,)`` int64 of ``text``; unknown tokens get id 0 (``<unk>``)."""
        return np.array([self.index.get(t, 0) for t in tokenize(text, self.level)], dtype=np.int64)

    def decode(self, ids: np.ndarray | list[int]) -> str:
        """The text of ``ids`` ``(T,)``; id 0 decodes to ``"<unk>"``.

        Raises:
            DataError: an id outside ``[0, V)``.
        """
        a = np.asarray(ids).reshape(-1)
        if a.size and (
            not np.issubdtype(a.dtype, np.integer) or a.min() < 0 or a.max() >= len(self.tokens)
        ):
            raise DataError(
                f"Vocab.decode: expected integer ids in [0, {len(self.tokens)}), "
                f"got {a.dtype} values {a.min()}..{a.max()}"
            )
        sep = "" if self.level == "char" else " "
        return sep.join(self.tokens[i] for i in a.tolist())

    def to_dict(self) -> dict[str, Any]:
        """JSON-able state: ``{"level": ..., "tokens": [...]}``."""
        return {"level": self.level, "tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Vocab:
        """Rebuild a vocabulary from ``to_dict()`` output."""
        tokens, level = d.get("tokens"), d.get("level")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise DataError(
                f"Vocab.from_dict: expected 'tokens' to be a list of str, got "
                f"{type(tokens).__name__}"
            )
        return cls(tokens, str(level))


def char_lm_windows(ids: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut a token stream into non-overlapping next-token training pairs.

    Args:
        ids: ``(L,)`` integer token ids.
        seq_len: S, steps per sequence.

    Returns:
        ``(X, Y)`` both ``(N, S)`` int64 with ``N = (L - 1) // S``, ``X[i] = ids[i*S:(i+1)*S]``
        and ``Y[i] = ids[i*S+1:(i+1)*S+1]`` (Y is X shifted by one). The tail that does not
        fill a whole sequence is left out.

    Raises:
        DataError: ``seq_len < 1`` or fewer than ``seq_len + 1`` ids.
    """
    a = np.asarray(ids)
    if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
        raise DataError(f"char_lm_windows: expected 1-D integer ids, got {a.dtype} {a.shape}")
    if seq_len < 1:
        raise DataError(f"char_lm_windows: expected seq_len >= 1, got {seq_len}")
    if len(a) < seq_len + 1:
        raise DataError(
            f"char_lm_windows: seq_len {seq_len} needs at least {seq_len + 1} ids, got {len(a)}"
        )
    n = (len(a) - 1) // seq_len
    X = a[: n * seq_len].astype(np.int64).reshape(n, seq_len)  # (N, S)
    Y = a[1 : n * seq_len + 1].astype(np.int64).reshape(n, seq_len)  # (N, S)
    return X, Y


def split_text(data: Any, *, val: float = 0.1) -> tuple[Any, Any]:
    """Split a text (str) or id array by position: the first part trains, the end validates.

    Args:
        data: a str or a ``(L,)`` array of ids.
        val: the fraction, in ``(0, 1)``, kept for validation at the end.

    Returns:
        ``(train, val)`` of the same type as ``data``; ``train`` is the first
        ``L - round(L * val)`` items.

    Raises:
        DataError: ``val`` out of range, or either part empty.
    """
    if not 0.0 < val < 1.0:
        raise DataError(f"split_text: expected 0 < val < 1, got {val!r}")
    n_val = round(len(data) * val)
    if n_val < 1 or n_val >= len(data):
        raise DataError(f"split_text: val={val} of {len(data)} items leaves an empty part")
    cut = len(data) - n_val
    return data[:cut], data[cut:]


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise DataError(f"level: expected one of {LEVELS}, got {level!r}")
