"""Reading files for the data layer: strict UTF-8 and the stdlib ``csv`` module.

Every error is a ``DataError`` naming the file, and the line, column or byte where it went
wrong, so that a user can open the file at that spot.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from rnnkit.errors import DataError
from rnnkit.fileio import read_regular

#: Cells that mean "no value", compared after stripping spaces and lower-casing.
MISSING_TOKENS = frozenset({"", "na", "nan", "n/a", "null"})


def display_name(path: str | os.PathLike[str]) -> str:
    """The name used in messages: the file name alone, which is what a user recognises."""
    return Path(path).name


def read_utf8(path: str | os.PathLike[str]) -> str:
    """Read a whole file as strict UTF-8 (a leading byte-order mark is dropped).

    Raises:
        DataError: the file does not exist, is a folder, a FIFO or a device, or is not valid
            UTF-8 (the message gives the byte offset and line of the first bad byte).
    """
    raw = read_regular(path)  # a FIFO or a device is refused, not read
    return decode_utf8(raw, display_name(path))


def decode_utf8(raw: bytes, source: str) -> str:
    """Decode ``raw`` as strict UTF-8, naming ``source`` and the bad byte on failure."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(
            f"{source}: expected UTF-8 text, got byte 0x{raw[e.start]:02x} at byte offset "
            f"{e.start} (line {line}); re-save the file as UTF-8"
        ) from None


Row = tuple[int, int, list[str]]


def csv_table(text: str, source: str) -> tuple[list[str], list[Row]]:
    """Split CSV text into a header and data rows; blank lines are skipped.

    Returns:
        ``(header, rows)`` where each row is ``(row, line, cells)``: ``row`` counts data rows
        from 1 (the header not counted), ``line`` is the file's line as an editor shows it.

    Raises:
        DataError: the text is empty, the first line is not a header of distinct names, or a
            row has a different number of cells than the header.
    """
    if not text.strip():
        raise DataError(f"{source}: the file is empty, expected a header line and data rows")
    reader = csv.reader(text.splitlines(keepends=True))
    try:
        header: list[str] = []
        while not header:
            header = [h.strip() for h in next(reader)]
        lined = [(reader.line_num, r) for r in reader if r]
    except csv.Error as e:
        raise DataError(f"{source}: line {reader.line_num}: not valid CSV ({e})") from None
    if all(_is_number(h) for h in header):
        raise DataError(
            f"{source}: expected a header line of column names, got {','.join(header)!r}; "
            "add a first line such as 'date,value'"
        )
    if any(not h for h in header):
        raise DataError(f"{source}: header has an empty column name: {header}")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DataError(f"{source}: header names column(s) {dupes} more than once")
    rows = [(i + 1, line, cells) for i, (line, cells) in enumerate(lined)]
    for row, line, cells in rows:
        if len(cells) != len(header):
            raise DataError(
                f"{source}: row {row} (line {line}): expected {len(header)} cells as in the "
                f"header, got {len(cells)}"
            )
    return header, rows


def column_index(header: list[str], name: str, source: str, role: str) -> int:
    """Position of column ``name``; the error lists the available columns."""
    if name not in header:
        raise DataError(f"{source}: {role} column {name!r} not found; available columns: {header}")
    return header.index(name)


def where(source: str, column: str, row: int, line: int) -> str:
    """The message prefix that points at one cell."""
    return f"{source}: column {column!r} row {row} (line {line})"


def parse_number(cell: str, source: str, column: str, row: int, line: int) -> float:
    """A finite float, or NaN for a missing cell (see ``MISSING_TOKENS``).

    Raises:
        DataError: the cell is neither a finite number nor a missing-value token.
    """
    s = cell.strip()
    if s.lower() in MISSING_TOKENS:
        return math.nan
    try:
        v = float(s)
    except ValueError:
        v = None
    if v is None or not math.isfinite(v):
        raise DataError(f"{where(source, column, row, line)}: expected a number, got {cell!r}")
    return v


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True
