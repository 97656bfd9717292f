"""Byte-level reading and writing of safetensors model and checkpoint files.

The reader is a strict, self-contained parser for hostile input: it opens only the named path,
honours no external references, validates the whole header against the file size before it
allocates any array, and lets no exception other than :class:`~rnnkit.errors.ModelFileError`
escape. The writer builds bytes with ``safetensors`` and replaces the target atomically.

File layout (https://github.com/huggingface/safetensors): an 8-byte little-endian ``u64`` header
length ``N``, ``N`` bytes of UTF-8 JSON mapping each tensor name to
``{"dtype", "shape", "data_offsets": [begin, end]}`` (plus an optional ``"__metadata__"`` of
``str -> str``), then the data buffer, which the tensors cover exactly and without overlap.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import secrets
import stat
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np

from rnnkit.errors import DataError, ModelFileError

__all__ = ["clean_temp_files", "load_tensors", "open_regular", "read_metadata", "read_regular",
           "save_tensors", "write_atomic"]

MiB = 1 << 20
TEMP_MARK = ".rnnkit-tmp-"  # in every temporary name, so that orphans are recognised
_TEMP_NAME = re.compile(r"\..+\.rnnkit-tmp-[0-9a-f]{12}\.tmp", re.DOTALL)
DEFAULT_ALLOWED = ("F32", "F64", "I64")
# safetensors dtype name -> little-endian NumPy dtype. BF16/F8 have no NumPy type and BOOL has
# invalid byte patterns (anything but 0/1), so they are "unsupported" rather than "not allowed".
_DTYPES: dict[str, np.dtype] = {
    name: np.dtype(code)
    for name, code in [
        ("F16", "<f2"), ("F32", "<f4"), ("F64", "<f8"),
        ("I8", "i1"), ("I16", "<i2"), ("I32", "<i4"), ("I64", "<i8"),
        ("U8", "u1"), ("U16", "<u2"), ("U32", "<u4"), ("U64", "<u8"),
    ]
}  # fmt: skip
_MAX_NDIM = 32  # NumPy 1.x's limit; no rnnkit tensor comes close
_ENTRY_KEYS = frozenset({"dtype", "shape", "data_offsets"})
# First bytes of formats that people rename to .safetensors by mistake (checked only when byte 8
# is not the "{" that starts every header: a valid header length can begin with these bytes).
_FOREIGN_MAGIC = [
    (b"\x93NUMPY", "a NumPy .npy file"),
    (b"PK\x03\x04", "a zip archive (a PyTorch .pt/.pth checkpoint or an .npz?)"),
    (b"\x80", "a Python pickle (a PyTorch or joblib file?)"),
    (b"\x89HDF", "an HDF5 file (a Keras .h5?)"),
    (b"\x1f\x8b", "a gzip file"),
]


# ---------------------------------------------------------------------------------- writing


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the new one.

    The bytes go to a temporary file in the same folder (a rename is atomic only within one
    file system), which is flushed and fsynced, then ``os.replace``-d onto ``path``; the folder
    is fsynced last so that the rename itself survives a crash (best effort: some platforms
    and file systems cannot fsync a folder). On any failure the temporary file is removed and
    the previous file at ``path``, if any, is left intact.

    Raises:
        OSError: the folder is missing or unwritable, the disk is full, ... The error keeps its
            ``errno`` (hence its subclass, e.g. ``PermissionError``) and its message reads
            ``"cannot write <path>: <reason>"``. Write failures are ``OSError`` rather than
            ``ValueError`` because nothing is wrong with the content.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = _create_temp(folder, os.path.basename(path))
    except OSError as e:
        raise _write_error(path, e) from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:  # also KeyboardInterrupt: never leave the temp file behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise _write_error(path, e) from e
        raise
    _fsync_folder(folder)


def _create_temp(folder: str, base: str) -> tuple[int, str]:
    """Create an exclusive temp file; mode 0o666 so the umask applies as for a plain ``open``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".{base}{TEMP_MARK}{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {folder}")


def clean_temp_files(folder: str | os.PathLike[str]) -> list[str]:
    """Remove the temporary files that killed ``write_atomic`` calls left in ``folder``; return
    their names. Only for a folder no other writer uses now (a locked run folder): a live
    write's temporary file would go too, and its rename then fail."""
    removed = []
    with os.scandir(folder) as entries:
        for e in entries:
            if _TEMP_NAME.fullmatch(e.name) and e.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(e.path)
                    removed.append(e.name)
    return sorted(removed)


def _fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # e.g. Windows, where folders cannot be opened
    try:
        os.fsync(fd)
    except OSError:
        pass  # the replace already happened; some file systems refuse fsync on folders
    finally:
        os.close(fd)


def _write_error(path: str, e: OSError) -> OSError:
    reason = e.strerror or str(e) or type(e).__name__
    if e.errno is None:
        return OSError(f"cannot write {path}: {reason}")
    return OSError(e.errno, f"cannot write {path}: {reason}")  # errno picks the subclass


def save_tensors(
    path: str | os.PathLike[str],
    tensors: Mapping[str, np.ndarray],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Save arrays (and optional ``str -> str`` metadata) as a safetensors file, atomically.

    Arrays are stored little-endian and C-contiguous, whatever their layout in memory.

    Raises:
        TypeError: a name, array or metadata entry has the wrong type.
        ValueError: an array's dtype has no safetensors equivalent here (see ``_DTYPES``).
        OSError: the file cannot be written (see :func:`write_atomic`).
    """
    prepared: dict[str, np.ndarray] = {}
    for name, arr in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"save_tensors: tensor names must be str, got {name!r}")
        _check_text(name, "save_tensors: tensor name", ValueError)
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"save_tensors: tensor {name!r} must be a numpy array, got {arr!r}")
        code = next((k for k, dt in _DTYPES.items() if dt == arr.dtype.newbyteorder("<")), None)
        if code is None:
            raise ValueError(
                f"save_tensors: tensor {name!r} has dtype {arr.dtype}, expected one of "
                f"{', '.join(str(dt) for dt in _DTYPES.values())}"
            )
        prepared[name] = np.asarray(arr, dtype=_DTYPES[code], order="C")  # keeps 0-d
    if metadata is not None:
        bad = [
            (k, v) for k, v in metadata.items() if not (isinstance(k, str) and isinstance(v, str))
        ]
        if bad:
            raise TypeError(f"save_tensors: metadata must map str to str, got {bad[0]!r}")
        for k, v in metadata.items():
            _check_text(k, "save_tensors: metadata key", ValueError)
            _check_text(v, f"save_tensors: metadata[{k!r}]", ValueError)
        # safetensors 0.8 writes the invalid header '{},"__metadata__":{}}' for no tensors and
        # empty metadata; an empty dict means the same as none, so never pass one.
        metadata = dict(metadata) or None
    import safetensors.numpy  # deferred: only writers need it

    data = safetensors.numpy.save(prepared, metadata=metadata)
    try:  # never write a file that load_tensors would refuse (guards against writer bugs)
        _read_header(io.BytesIO(data), "save_tensors", len(data), len(data), 64, frozenset(_DTYPES))
    except ModelFileError as e:
        raise ValueError(f"refusing to write a file that cannot be read back: {e}") from e
    write_atomic(path, data)


# ---------------------------------------------------------------------------------- reading


def load_tensors(
    path: str | os.PathLike[str],
    *,
    allowed_dtypes: Iterable[str] = DEFAULT_ALLOWED,
    max_header_bytes: int = 16 * MiB,
    max_nesting: int = 32,
    allow_nonfinite: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors file strictly; return ``(tensors, metadata)``.

    Everything is validated before any array is allocated (see the module docstring for the
    layout). Arrays come back as fresh, writable, native-endian copies in header order.

    Args:
        path: the file. Only this path is opened (symlinks are followed, as by ``open``).
        allowed_dtypes: safetensors dtype names accepted, e.g. ``("F32", "F64", "I64")``.
        max_header_bytes: the largest JSON header accepted (bounds parse time and memory).
        max_nesting: the deepest JSON nesting accepted; a valid file needs 3.
        allow_nonfinite: accept NaN/Inf in float tensors (rejected by default: a model with
            NaN weights only produces NaN).

    Raises:
        ModelFileError: anything wrong with the file, including a missing or unreadable one;
            the message starts with the path and names the problem.
    """
    allowed = _check_allowed(allowed_dtypes)
    name = os.fspath(path)
    f, size = _open_regular(name)
    with f:
        header, data_len = _read_header(f, name, size, max_header_bytes, max_nesting, allowed)
        data = _read_exact(f, name, data_len)
    tensors: dict[str, np.ndarray] = {}
    for key, (dt, shape, begin, end) in header.tensors.items():
        try:
            view = np.frombuffer(data, dt, count=(end - begin) // dt.itemsize, offset=begin)
            arr = view.reshape(shape).astype(dt.newbyteorder("="))  # owned, aligned copy
        except (MemoryError, OverflowError, ValueError) as e:  # unreachable after validation
            raise ModelFileError(f"{name}: cannot build tensor {key!r:.60}: {e!r}") from e
        if not allow_nonfinite and arr.dtype.kind == "f":
            bad = arr.size - int(np.count_nonzero(np.isfinite(arr)))
            if bad:
                raise ModelFileError(f"{name}: tensor {key!r:.60} has {bad} NaN/Inf value(s)")
        tensors[key] = arr
    return tensors, header.metadata


def read_metadata(
    path: str | os.PathLike[str],
    *,
    allowed_dtypes: Iterable[str] = DEFAULT_ALLOWED,
    max_header_bytes: int = 16 * MiB,
    max_nesting: int = 32,
) -> dict[str, str]:
    """Return the ``__metadata__`` of a safetensors file, reading and validating only its
    header (tensor entries included, against the file size); the data is not read.

    Raises:
        ModelFileError: as :func:`load_tensors`, for the header's problems.
    """
    allowed = _check_allowed(allowed_dtypes)
    name = os.fspath(path)
    f, size = _open_regular(name)
    with f:
        header, _ = _read_header(f, name, size, max_header_bytes, max_nesting, allowed)
    return header.metadata


def _check_allowed(allowed_dtypes: Iterable[str]) -> frozenset[str]:
    allowed = frozenset(allowed_dtypes)
    unknown = sorted(allowed - _DTYPES.keys())
    if unknown:  # a programming error, not a bad file
        raise ValueError(f"allowed_dtypes: unsupported {unknown}, expected some of {list(_DTYPES)}")
    return allowed


def open_regular(
    path: str | os.PathLike[str], *, error: type[Exception] = DataError, what: str = "a file"
) -> tuple[Any, int]:
    """Open ``path`` for binary reading if it is a regular file; return the file and its size.

    Every read of a path a user names goes through here: a FIFO would block forever and a
    device such as ``/dev/zero`` would fill the memory, so anything but a regular file is
    refused. The open descriptor itself is checked (no race with a rename), and O_NONBLOCK
    keeps the open of a FIFO from blocking.

    Raises:
        ``error`` (``DataError`` unless told): missing, a folder, not a regular file, or
            unreadable; the message starts with the path.
    """
    name = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(name, flags)
    except FileNotFoundError as e:
        raise error(f"{name}: file not found") from e
    except IsADirectoryError as e:
        raise error(f"{name}: expected {what}, got a folder") from e
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
        raise error(f"{name}: cannot open: {getattr(e, 'strerror', None) or e}") from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{name}: expected {what}, got {_kind(st.st_mode)}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), st.st_size
    except OSError as e:
        os.close(fd)
        raise error(f"{name}: cannot stat: {e.strerror or e}") from e
    except BaseException:
        os.close(fd)
        raise


def _kind(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "something that is not a regular file"


def read_regular(path: str | os.PathLike[str], *, error: type[Exception] = DataError,
                 what: str = "a file") -> bytes:
    """The whole content of a regular file (see :func:`open_regular`)."""
    f, _ = open_regular(path, error=error, what=what)
    with f:
        try:
            return f.read()
        except OSError as e:
            raise error(f"{os.fspath(path)}: cannot read: {e.strerror or e}") from e


def _open_regular(name: str) -> tuple[Any, int]:
    """A model file opened by :func:`open_regular`, with the model file's messages."""
    try:
        return open_regular(name, error=ModelFileError, what="a model file")
    except ModelFileError as e:
        msg = str(e).replace(": file not found", ": no such file")
        msg = msg.replace("expected a model file, got a folder", "is a directory, not a model file")
        msg = msg.replace("expected a model file, got ", "not a regular file, got ")
        raise ModelFileError(msg) from e.__cause__


def _read_exact(f: Any, name: str, n: int) -> bytes:
    try:
        data = f.read(n)
    except (OSError, MemoryError, OverflowError) as e:
        raise ModelFileError(f"{name}: cannot read {n} bytes: {e!r}") from e
    if len(data) != n:  # the file shrank since fstat
        raise ModelFileError(f"{name}: file is truncated: expected {n} more bytes, got {len(data)}")
    return data


class _Header(NamedTuple):
    """A validated header: tensor name -> (dtype, shape, begin, end), and the metadata."""

    tensors: dict[str, tuple[np.dtype, tuple[int, ...], int, int]]
    metadata: dict[str, str]


def _read_header(
    f: Any, name: str, size: int, max_bytes: int, max_nesting: int, allowed: frozenset[str]
) -> tuple[_Header, int]:
    """Read and validate the length prefix and JSON header; return it and the data length."""
    prefix = _read_exact(f, name, min(size, 16))
    # Every safetensors header starts with "{" at byte 8, and none of the foreign formats has
    # one there, so only then are the magic bytes meaningful (a header length can start with
    # 0x80, and a truncated safetensors file must not be called a pickle).
    if size >= 9 and prefix[8:9] != b"{":
        for magic, what in _FOREIGN_MAGIC:
            if prefix.startswith(magic):
                raise ModelFileError(
                    f"{name}: this is {what}, not a safetensors file "
                    "(rnnkit never loads pickled or foreign formats)"
                )
    if size < 10:  # the smallest valid file is the length and "{}"
        raise ModelFileError(f"{name}: file has {size} bytes, too short for a safetensors file")
    if prefix[8:9] != b"{":  # before the length: a CSV's first 8 bytes are no length
        raise ModelFileError(f"{name}: not an rnnkit model file (not safetensors: the header "
                             "does not start with '{' after the 8-byte length)")
    n = int.from_bytes(prefix[:8], "little")
    if n > size - 8:
        raise ModelFileError(
            f"{name}: header declares {n} bytes but file has only {size - 8} after the length"
        )
    if n > max_bytes:
        raise ModelFileError(f"{name}: header of {n} bytes exceeds the limit of {max_bytes}")
    raw = prefix[8 : 8 + n]
    raw += _read_exact(f, name, n - len(raw))
    f.seek(8 + n)  # the 16-byte prefix may have read past a tiny header
    obj = _parse_json(raw, name, max_nesting)
    return _validate(obj, name, size - 8 - n, allowed), size - 8 - n


def _parse_json(raw: bytes, name: str, max_nesting: int) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelFileError(
            f"{name}: header is not valid UTF-8 ({e.reason} at byte {e.start})"
        ) from e
    depth = json_depth(raw)
    if depth > max_nesting:
        raise ModelFileError(f"{name}: header JSON nests {depth} deep, limit is {max_nesting}")
    try:
        obj = json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constant)
    except RecursionError as e:  # unreachable after json_depth; kept as a second line
        raise ModelFileError(f"{name}: header JSON nests too deeply") from e
    except (ValueError, MemoryError, OverflowError) as e:  # JSONDecodeError, digit limit, ...
        raise ModelFileError(f"{name}: header is not valid JSON: {e}") from e
    if not isinstance(obj, dict):
        raise ModelFileError(f"{name}: header must be a JSON object, got {type(obj).__name__}")
    return obj


def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:  # json would let the last one win silently; refuse the ambiguity
            raise ValueError(f"duplicate key {k!r:.60}")
        out[k] = v
    return out


def no_constant(token: str) -> Any:
    raise ValueError(f"non-standard constant {token}")  # NaN/Infinity are not JSON


def json_depth(raw: bytes, chunk: int = MiB) -> int:
    """Deepest ``[``/``{`` nesting of JSON bytes, counted outside string literals.

    Exact for valid JSON and for the valid prefix of invalid JSON (which is all a parser
    recurses into), so a parser never nests deeper than this. Vectorized over fixed chunks so a
    16 MiB header costs little time and bounded memory; Python's ``json`` would otherwise raise
    ``RecursionError`` only at the interpreter's recursion limit.
    """
    depth = deepest = 0
    in_string = 0  # parity of unescaped quotes seen so far
    backslashes = 0  # length of the run of backslashes ending the previous chunk
    for start in range(0, len(raw), chunk):
        a = np.frombuffer(raw, np.uint8, count=min(chunk, len(raw) - start), offset=start)
        idx = np.arange(a.size)
        last_other = np.maximum.accumulate(np.where(a == 0x5C, -1, idx))  # last non-backslash
        run = np.empty(a.size, np.int64)  # backslashes immediately before each byte
        run[0] = backslashes
        run[1:] = idx[:-1] - last_other[:-1] + np.where(last_other[:-1] < 0, backslashes, 0)
        quotes = np.cumsum((a == 0x22) & (run % 2 == 0)) + in_string
        outside = quotes % 2 == 0
        step = (((a == 0x5B) | (a == 0x7B)) & outside).astype(np.int64)
        step -= ((a == 0x5D) | (a == 0x7D)) & outside
        levels = np.cumsum(step) + depth
        deepest = max(deepest, int(levels.max()))
        depth, in_string = int(levels[-1]), int(quotes[-1] % 2)
        tail = a.size - 1 - int(last_other[-1])
        backslashes = backslashes + tail if last_other[-1] < 0 else tail
    return deepest


def _validate(obj: dict[str, Any], name: str, data_len: int, allowed: frozenset[str]) -> _Header:
    metadata = obj.pop("__metadata__", {})
    if not isinstance(metadata, dict):
        raise ModelFileError(
            f"{name}: __metadata__ must be an object, got {type(metadata).__name__}"
        )
    for k, v in metadata.items():
        if not isinstance(v, str):
            raise ModelFileError(f"{name}: __metadata__[{k!r}] must be a string, got {v!r:.40}")
        _check_text(k, f"{name}: metadata key")
        _check_text(v, f"{name}: __metadata__[{k!r:.60}]")
    tensors = {}
    for key, entry in obj.items():
        _check_text(key, f"{name}: tensor name")
        tensors[key] = _validate_entry(name, key, entry, data_len, allowed)
    # The tensors must tile the buffer: sorted by offsets, each begins where the last ended.
    expected = 0
    for key, (_, _, begin, end) in sorted(tensors.items(), key=lambda kv: kv[1][2:]):
        if begin != expected:
            problem = "overlaps the previous tensor" if begin < expected else "leaves a gap"
            raise ModelFileError(f"{name}: tensor {key!r} at bytes {begin}..{end} {problem}")
        expected = end
    if expected != data_len:
        raise ModelFileError(f"{name}: tensors cover {expected} of {data_len} data bytes")
    return _Header(tensors, metadata)


def _check_text(s: str, what: str, error: type[ValueError] = ModelFileError) -> None:
    """Reject strings that cannot be UTF-8 encoded: lone surrogates (from a ``\\ud800`` escape
    in JSON, or a Python string) would only fail later, in whoever prints or saves them."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise error(f"{what} {s!r:.60} is not valid Unicode (lone surrogate)") from e


def _is_int(x: Any) -> bool:
    return type(x) is int  # bool is an int subclass; true/false are not sizes


def _validate_entry(
    name: str, key: str, entry: Any, data_len: int, allowed: frozenset[str]
) -> tuple[np.dtype, tuple[int, ...], int, int]:
    where = f"{name}: tensor {key!r:.60}"
    if not isinstance(entry, dict) or entry.keys() != _ENTRY_KEYS:
        got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise ModelFileError(f"{where} must have exactly {sorted(_ENTRY_KEYS)}, got {got!s:.80}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise ModelFileError(f"{where} has unsupported dtype {dtype!r:.40}")
    if dtype not in allowed:
        raise ModelFileError(f"{where} has dtype {dtype}, allowed here: {sorted(allowed)}")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise ModelFileError(
            f"{where}: shape must be a list of non-negative ints, got {shape!r:.80}"
        )
    if len(shape) > _MAX_NDIM:
        raise ModelFileError(f"{where} has {len(shape)} dimensions, limit is {_MAX_NDIM}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_int, offsets))):
        raise ModelFileError(
            f"{where}: data_offsets must be [begin, end] ints, got {offsets!r:.80}"
        )
    begin, end = offsets
    if not 0 <= begin <= end <= data_len:
        raise ModelFileError(
            f"{where}: data_offsets [{begin}, {end}] outside the {data_len}-byte data buffer"
        )
    # Python ints cannot overflow; math.prod of a few dozen ints stays cheap even if they are
    # huge, and a mismatch is caught before anything the size of the shape is allocated.
    nbytes = math.prod(shape) * _DTYPES[dtype].itemsize
    if nbytes != end - begin:
        # str() of an int over 4300 digits raises ValueError, so never print a huge product.
        need = f"{nbytes}" if nbytes <= data_len else f"more than the {data_len} available"
        raise ModelFileError(
            f"{where}: {dtype} shape {shape!s:.80} needs {need} bytes but data_offsets "
            f"span {end - begin}"
        )
    return _DTYPES[dtype], tuple(shape), begin, end
