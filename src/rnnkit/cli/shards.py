"""Data for ``mpiexec -n K rnnkit train``: DATA is read once, and every rank trains on memory
maps of the prepared arrays.

Rank 0 reads and prepares DATA (a CSV's series, a text's sequences, an ``.npz``, a bundled
dataset) as one process would, writes the arrays ``fit`` reads (training and validation inputs,
targets, lengths; for a forecast the series its windows are cut from) and the held-out part to
``.npy`` files in the run folder's ``rank-data.tmp`` folder, and then keeps memory maps of them
instead of the arrays. The other ranks never read
DATA: they get the resolved settings and the task's metadata from rank 0 and map the same
files. Each rank then reads only the rows of its share of every batch; its own memory holds
that share, not the data (the pages it reads are file cache, shared by the ranks of a machine
and reclaimable). The run folder must be on a file system every rank can read, as for
``--resume``; rank 0 removes ``rank-data.tmp`` when the run ends.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

import rnnkit as rk
from rnnkit.data.sequences import pad_sequences
from rnnkit.data.series_windows import SeriesWindows, WindowRows
from rnnkit.distributed import World, bcast_text

from .prepared import Prepared
from .settings import Settings

FOLDER = "rank-data.tmp"
BLOCK_BYTES = 64 << 20  # rows copied to a file at a time
WINDOW_BLOCK_BYTES = 4 << 20  # windows built and written at a time: built in rank 0's memory
HELD_BYTES = 1 << 20  # rank 0 maps held-out arrays from this size on
QUANTILE = "quantile"  # the loss function quantile_loss(settings.quantiles)


def share(w: World, s: Settings | None, p: Prepared | None, name: str, out: Path | None
          ) -> tuple[Settings, Prepared, str, Path]:
    """Rank 0's ``(settings, prepared data, name, run folder)`` on every rank, the arrays
    memory-mapped (rank 0 passes what it prepared, the other ranks ``None`` but their
    settings)."""
    doc = None
    if w.rank == 0:
        assert p is not None and s is not None and out is not None
        doc = json.dumps(_spill(s, p, name, out), default=_plain)
    got = json.loads(bcast_text(w, doc) or "{}")
    if w.rank == 0:
        return s, p, name, out  # type: ignore[return-value]
    return receive(got, s)


def remove(out: Path) -> None:
    """The run's ``rank-data.tmp`` folder, once no rank trains any more."""
    shutil.rmtree(out / FOLDER, ignore_errors=True)


def _spill(s: Settings, p: Prepared, name: str, out: Path) -> dict[str, Any]:
    """Write ``p``'s arrays to ``out/rank-data.tmp``, map them in ``p``, and describe them."""
    folder = out / FOLDER
    remove(out)  # a killed run's
    folder.mkdir()
    specs: dict[str, Any] = {}
    windows: dict[str, Any] = {}

    def put(key: str, a: Any) -> Any:
        if a is None:
            return None
        if isinstance(a, WindowRows):  # forecast windows: the series they are cut from
            if "series" not in specs:
                src = a.src
                src.values, src.known = put("series", src.values), put("known", src.known)
                windows["source"] = src.spec()
            windows[key] = {"lo": a.lo, "hi": a.hi, "what": a.what, "model": a.model}
            return a
        a = np.asarray(a)
        specs[key] = {"dtype": a.dtype.str, "shape": list(a.shape)}
        return write(folder / f"{key}.npy", a)

    X, lengths = _padded(p.X, p.lengths)
    p.X, p.y, p.lengths = put("X", X), put("y", p.y), put("lengths", lengths)
    if p.val is not None:
        Xv, lv = _padded(p.val[0], p.val[2] if len(p.val) == 3 else None)
        Xv, yv, lv = put("X_val", Xv), put("y_val", p.val[1]), put("lengths_val", lv)
        p.val = (Xv, yv) if lv is None else (Xv, yv, lv)
    sent = dict(specs)
    for key, v in p.held_out.items():  # rank 0's alone: it reports on them (windows too,
        if isinstance(v, (np.ndarray, WindowRows)) and v.dtype.kind in "biuf" \
                and v.nbytes >= HELD_BYTES:  # which it would otherwise build in its memory)
            p.held_out[key] = write(folder / f"held-{key}.npy", v)
    if isinstance(p.loss, str):
        loss = p.loss
    elif s.loss == QUANTILE:
        loss = QUANTILE
    else:
        raise ValueError(f"distributed: the loss {p.loss!r} cannot be sent to the other ranks")
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(s).items()}
    return {"settings": settings, "name": name, "out": str(out), "arrays": sent,
            "windows": windows,
            "task": p.task, "loss": loss, "metric": p.metric, "out_size": p.out_size,
            "meta": p.meta, "vocab_size": p.vocab_size}


def receive(doc: dict[str, Any], s: Settings) -> tuple[Settings, Prepared, str, Path]:
    """What rank 0 described (``_spill``), with its arrays mapped from the files."""
    fields = {f.name for f in dataclasses.fields(Settings)}
    s = dataclasses.replace(s, **{k: tuple(v) if isinstance(v, list) else v
                                  for k, v in doc["settings"].items() if k in fields})
    out = Path(doc["out"])
    a = {key: read(out / FOLDER / f"{key}.npy", spec) for key, spec in doc["arrays"].items()}
    windows = dict(doc.get("windows") or {})
    if windows:
        src = SeriesWindows.from_spec(windows.pop("source"), a["series"], a.get("known"))
        a.update({key: src.rows(int(w["lo"]), int(w["hi"]), str(w["what"]), bool(w["model"]))
                  for key, w in windows.items()})
    val = None
    if "X_val" in a:
        val = (a["X_val"], a["y_val"]) + ((a["lengths_val"],) if "lengths_val" in a else ())
    loss = rk.losses.quantile_loss(s.quantiles) if doc["loss"] == QUANTILE else doc["loss"]
    p = Prepared(doc["task"], doc["name"], a["X"], a["y"], val, loss, doc["metric"],
                 doc["out_size"], doc["meta"], vocab_size=doc["vocab_size"],
                 lengths=a.get("lengths"))
    return s, p, doc["name"], out


def write(path: Path, a: np.ndarray) -> np.ndarray:
    """``a`` as the ``.npy`` file ``path`` (whole or absent: written aside, then renamed),
    copied a block of rows at a time; returns its read-only memory map."""
    if a.size == 0:
        return a
    tmp = path.with_name(path.name + ".part")
    m = np.lib.format.open_memmap(tmp, mode="w+", dtype=a.dtype, shape=a.shape)
    block = BLOCK_BYTES if isinstance(a, np.ndarray) else WINDOW_BLOCK_BYTES
    rows = max(1, block // max(1, a[:1].nbytes))
    for i in range(0, len(a), rows):
        m[i : i + rows] = a[i : i + rows]
    m.flush()
    del m
    os.replace(tmp, path)
    return np.load(path, mmap_mode="r", allow_pickle=False)


def read(path: Path, spec: dict[str, Any]) -> np.ndarray:
    """The memory map of ``path``, which must hold what rank 0 said it wrote."""
    dtype, shape = np.dtype(spec["dtype"]), tuple(int(n) for n in spec["shape"])
    if 0 in shape:
        return np.zeros(shape, dtype)
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise FileNotFoundError(
            f"distributed: cannot read {path}, which rank 0 wrote ({e}); the run folder "
            "(--out) must be on a file system every rank can read") from None
    if a.dtype != dtype or a.shape != shape:
        raise ValueError(f"distributed: {path} holds {a.dtype} {a.shape}, rank 0 wrote "
                         f"{dtype} {shape}")
    return a


def _padded(X: Any, lengths: Any) -> tuple[Any, Any]:
    """Variable-length sequences (a list) as one padded array and their lengths, as fit pads
    them."""
    if isinstance(X, (list, tuple)):
        return pad_sequences([np.asarray(x) for x in X])
    return X, lengths


def _plain(v: Any) -> Any:
    """NumPy scalars and arrays in the metadata, as JSON."""
    if isinstance(v, (np.generic, np.ndarray)):
        return v.tolist()
    raise TypeError(f"distributed: cannot send {type(v).__name__} to the other ranks")
