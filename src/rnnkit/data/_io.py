"""Reading files for the data layer: strict UTF-8 and the stdlib ``csv`` module.

Every error is a ``DataError`` naming the file, and the line, column or byte where it went
wrong, so that a user can open the file at that spot.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from rnnkit.errors import DataError
from rnnkit.fileio import open_regular, read_regular

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


READ_BYTES = 1 << 20  # a file streamed line by line is read this much at a time


def utf8_lines(path: str | os.PathLike[str]) -> Iterator[str]:
    """The lines of a UTF-8 file, as ``read_utf8(path).splitlines(keepends=True)`` gives
    them, read a block at a time (memory: a block, not the file); ``read_utf8``'s errors."""
    source = display_name(path)
    f, _ = open_regular(path)
    with f:
        done, first, rest = 0, True, b""  # bytes decoded before ``rest``
        while True:
            try:
                block = f.read(READ_BYTES)
            except OSError as e:
                raise DataError(f"{os.fspath(path)}: cannot read: {e.strerror or e}") from e
            data = rest + block
            cut = data.rfind(b"\n") + 1 if block else len(data)  # whole lines: no UTF-8
            data, rest = data[:cut], data[cut:]  # sequence holds the byte 0x0a
            if data:
                try:
                    text = data.decode("utf-8-sig" if first else "utf-8")
                except UnicodeDecodeError as e:
                    at = done + e.start
                    line = done_lines(path, done) + data[: e.start].count(b"\n") + 1
                    raise DataError(
                        f"{source}: expected UTF-8 text, got byte 0x{data[e.start]:02x} at byte "
                        f"offset {at} (line {line}); re-save the file as UTF-8") from None
                first, done = False, done + len(data)
                yield from text.splitlines(keepends=True)
            if not block:
                return


def done_lines(path: str | os.PathLike[str], size: int) -> int:
    """The line breaks in the first ``size`` bytes of ``path`` (for an error message)."""
    with open(path, "rb") as f:
        return sum(f.read(min(READ_BYTES, size - i)).count(b"\n")
                   for i in range(0, size, READ_BYTES))


def check_header(header: list[str], source: str) -> None:
    """A header line of distinct, non-empty column names that are not all numbers."""
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


def csv_stream(lines: Iterable[str], source: str) -> tuple[list[str], Iterator[Row]]:
    """``(header, rows)`` of CSV ``lines`` as ``csv_table`` gives them and with its checks, the
    rows (``(row, line, cells)``) read one at a time as they are iterated."""
    reader = csv.reader(lines)

    def invalid(e: csv.Error) -> DataError:
        return DataError(f"{source}: line {reader.line_num}: not valid CSV ({e})")

    try:
        first: list[str] | None = []
        while first == []:
            first = next(reader, None)
        # text that is all white space: as csv_table, an empty file
        if first is None or (len(first) == 1 and not first[0].strip() and not any(
                len(r) > 1 or (r and r[0].strip()) for r in reader)):
            raise DataError(f"{source}: the file is empty, expected a header line and data rows")
    except csv.Error as e:
        raise invalid(e) from None
    header = [h.strip() for h in first]
    check_header(header, source)

    def rows() -> Iterator[Row]:
        row = 0
        try:
            for cells in reader:
                if cells:
                    row += 1
                    if len(cells) != len(header):
                        raise DataError(
                            f"{source}: row {row} (line {reader.line_num}): expected "
                            f"{len(header)} cells as in the header, got {len(cells)}")
                    yield row, reader.line_num, cells
        except csv.Error as e:
            raise invalid(e) from None

    return header, rows()


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
    header, rows = csv_stream(text.splitlines(keepends=True), source)
    return header, list(rows)


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
