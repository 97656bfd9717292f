"""Reading an ONNX file as untrusted input, under the rules of ``fileio.py``.

The file is parsed by protobuf (whose own nesting limit refuses deep structures) and nothing
in it is executed: tensors are decoded here, only from the four numeric types rnnkit uses,
after their declared sizes are checked against the bytes that hold them. External data is
read only from regular files inside the model's folder, within ``max_bytes`` in all. Every
problem is a ``ModelFileError``.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ..errors import ModelFileError
from ..fileio import open_regular
from .onnx_graph import import_onnx

MAX_BYTES = 1 << 30  # the file and its external data together, by default
MAX_NODES = 100_000
# ONNX TensorProto data type -> (NumPy dtype, the typed field that may hold the values)
DTYPES = {1: (np.dtype("<f4"), "float_data"), 11: (np.dtype("<f8"), "double_data"),
          7: (np.dtype("<i8"), "int64_data"), 6: (np.dtype("<i4"), "int32_data")}


class Reader:
    """One model file: ``proto`` (the parsed ``ModelProto``) and ``array(tensor)``."""

    def __init__(self, path: str | os.PathLike[str], max_bytes: int = MAX_BYTES) -> None:
        self.name = os.fspath(path)
        self.budget = max_bytes
        f, size = open_regular(self.name, error=ModelFileError, what="an ONNX model file")
        with f:
            if size > max_bytes:
                raise ModelFileError(f"{self.name}: {size} bytes exceed the limit of {max_bytes}")
            data = _read(f, self.name, size)
        # symbolic links resolved: a link in the folder to a file outside it is outside
        self.folder = os.path.realpath(os.path.dirname(os.path.abspath(self.name)))
        self.budget -= size
        onnx = import_onnx()
        self.proto = onnx.ModelProto()
        try:
            self.proto.ParseFromString(data)
        except Exception as e:  # protobuf's DecodeError, its nesting limit, a bad UTF-8 string
            raise ModelFileError(f"{self.name}: not an ONNX model: {type(e).__name__}: "
                                 f"{str(e)[:200]}") from e
        if not self.proto.HasField("graph"):
            raise ModelFileError(f"{self.name}: not an ONNX model (no graph)")
        g = self.proto.graph
        if len(g.node) > MAX_NODES:
            raise ModelFileError(f"{self.name}: {len(g.node)} nodes exceed the limit of "
                                 f"{MAX_NODES}")
        # protobuf hands back bytes for a string field that is not valid UTF-8
        names = [v.name for v in (*g.input, *g.output, *g.initializer)]
        for node in g.node:
            names += [node.name, node.op_type, node.domain, *node.input, *node.output,
                      *(a.name for a in node.attribute)]
        if not all(isinstance(n, str) for n in names):
            raise ModelFileError(f"{self.name}: a name in the graph is not valid UTF-8")

    def array(self, t: Any, what: str) -> np.ndarray:
        """The tensor ``t`` as a NumPy array, its size checked before anything is allocated."""
        where = f"{self.name}: {what}"
        if t.data_type not in DTYPES:
            raise ModelFileError(f"{where}: tensor data type {t.data_type} is not supported "
                                 "(float32, float64, int32, int64)")
        dtype, field = DTYPES[t.data_type]
        dims = list(t.dims)
        if len(dims) > 8 or any(d < 0 for d in dims):
            raise ModelFileError(f"{where}: tensor shape {dims[:9]} is not valid")
        count = math.prod(dims)
        nbytes = count * dtype.itemsize
        if nbytes > self.budget:
            raise ModelFileError(f"{where}: tensor of shape {dims} ({nbytes} bytes) exceeds the "
                                 "memory limit")
        if t.data_location == 1:  # EXTERNAL
            raw = self._external(t, nbytes, where)
        elif len(t.raw_data) > 0:
            raw = t.raw_data
        else:
            values = getattr(t, field)
            if len(values) != count:
                raise ModelFileError(f"{where}: tensor of shape {dims} has {len(values)} values")
            return np.asarray(values, dtype=dtype).reshape(dims)
        if len(raw) != nbytes:
            raise ModelFileError(f"{where}: tensor of shape {dims} needs {nbytes} bytes, the "
                                 f"file gives {len(raw)}")
        self.budget -= nbytes
        arr = np.frombuffer(raw, dtype=dtype).reshape(dims).copy()
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise ModelFileError(f"{where}: tensor has NaN/Inf values")
        return arr.astype(arr.dtype.newbyteorder("="))

    def _external(self, t: Any, nbytes: int, where: str) -> bytes:
        info = {e.key: e.value for e in t.external_data}
        if not all(isinstance(v, str) for kv in info.items() for v in kv):
            raise ModelFileError(f"{where}: external data entries are not valid UTF-8")
        location = info.get("location", "")
        try:
            offset, length = int(info.get("offset", "0")), int(info.get("length", str(nbytes)))
        except ValueError as e:
            raise ModelFileError(f"{where}: external data offset/length are not integers") from e
        target = ""  # a relative path, links resolved, that stays inside the folder
        if location and "\0" not in location and not os.path.isabs(location):
            target = os.path.realpath(os.path.join(self.folder, location))
        if not target or os.path.commonpath([self.folder, target]) != self.folder:
            raise ModelFileError(f"{where}: external data {location!r:.80} is outside the "
                                 "model's folder")
        if offset < 0 or length != nbytes:
            raise ModelFileError(f"{where}: external data length {length} at offset {offset} "
                                 f"does not match the tensor's {nbytes} bytes")
        f, size = open_regular(target, error=ModelFileError, what="an external data file")
        with f:
            if offset + length > size:
                raise ModelFileError(f"{where}: external data ends at byte {offset + length} "
                                     f"of a {size}-byte file")
            f.seek(offset)
            return _read(f, target, length)


def _read(f: Any, name: str, n: int) -> bytes:
    """Exactly ``n`` bytes from ``f``, or a ``ModelFileError`` (a file that shrank since it
    was opened gives fewer)."""
    try:
        data = f.read(n)
    except OSError as e:
        raise ModelFileError(f"{name}: cannot read: {e.strerror or e}") from e
    if len(data) != n:
        raise ModelFileError(f"{name}: expected {n} bytes, read {len(data)} (the file changed "
                             "while it was read)")
    return data
