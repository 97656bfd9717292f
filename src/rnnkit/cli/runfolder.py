"""The run folder of ``rnnkit train``: one training at a time, and its files as one set.

- ``lock``: the folder's ``.rnnkit-lock`` is held (``flock``) for the whole run, with the
  holder's pid, host, command and start time written inside; a second run into the folder is
  refused with those. The kernel drops the lock of a killed process, so its lock file, still
  naming it, is taken over (and said so).
- ``clean``: removes the temporary files of atomic writes a killed run left behind.
- ``write_manifest``: ``manifest.json`` (state, and each file's size and sha256) is written at
  the start as "running" and last as "finished" or "interrupted": a run whose last writes
  failed (a full disk) still says "running" once no process holds the lock, never a silent
  mix of new and old files. Files not in the manifest are not this run's.

Every write into the folder goes through these functions and ``train.run``, so that a
distributed run can let one process do them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from rnnkit.fileio import clean_temp_files, read_regular, write_atomic

from .common import UsageError, one_line

try:
    import fcntl
except ImportError:  # Windows: the lock file is written but not enforced
    fcntl = None  # type: ignore[assignment]

LOCK = ".rnnkit-lock"
MANIFEST = "manifest.json"
CHECKPOINT = "checkpoint.safetensors"
CONFIG = "config.toml"


class Lock:
    """A held run-folder lock; ``taken_over`` describes the dead holder it replaced, if any."""

    def __init__(self, fd: int, path: Path, taken_over: str | None) -> None:
        self.fd, self.path, self.taken_over = fd, path, taken_over

    def release(self) -> None:
        """Empty the lock file (a clean end) and let it go. The file stays: removing it would
        let a process that opened it just before lock a file nobody else sees."""
        if self.fd < 0:
            return
        try:
            os.ftruncate(self.fd, 0)
        finally:
            os.close(self.fd)  # closing releases the flock
            self.fd = -1


def lock(folder: Path) -> Lock:
    """Lock ``folder`` for this process; ``UsageError`` naming the holder if another has it."""
    path = folder / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UsageError(f"run folder {folder} is in use by {_holder(fd)}; wait for "
                                 "it to end or choose another --out") from None
        previous = _holder(fd) if os.fstat(fd).st_size else None
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "command": " ".join(["rnnkit", *sys.argv[1:]])[:500],
              "started": dt.datetime.now().isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        return Lock(fd, path, previous)
    except BaseException:
        os.close(fd)
        raise


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
        return (f"pid {int(info['pid'])} on {str(info['host'])[:100]} "
                f"({str(info['command'])[:200]}, started {str(info['started'])[:40]})")
    except (ValueError, KeyError, TypeError, OSError):
        return "another process (its lock file is unreadable)"


def clean(folder: Path) -> list[str]:
    """Remove orphan temporary files of killed writes (the folder is locked: none is live)."""
    return clean_temp_files(folder)


def write_manifest(folder: Path, state: str, files: list[str], started: str) -> None:
    """``manifest.json``: the run's state and, for each file, its size and sha256."""
    entries = {}
    for name in files:
        path = folder / name
        if path.is_file():
            entries[name] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
    doc = {"state": state, "started": started,
           "updated": dt.datetime.now().isoformat(timespec="seconds"), "files": entries}
    write_atomic(folder / MANIFEST, (json.dumps(doc, indent=1) + "\n").encode())


def unfinished(folder: Path, skip: tuple[str, ...] = ("report.html",)) -> str | None:
    """Why the folder's files may not be one run's set: its manifest says the run did not
    finish (a full disk, a kill: new files beside an earlier run's), or a file differs from
    what the manifest lists; ``None`` when all is as written, or with no manifest (runs from
    before manifests, backtests). ``skip``: files rewritten on purpose (``rnnkit report``)."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        doc = json.loads(read_regular(path))
    except (ValueError, OSError) as e:  # DataError, JSON or UTF-8 errors are ValueErrors
        return f"{MANIFEST} cannot be read ({one_line(e)})"
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, dict):
        return f"{MANIFEST} is not a manifest of rnnkit train"
    if doc.get("state") != "finished":
        return (f"{MANIFEST} says {doc.get('state')!r} (updated {doc.get('updated')}): the run "
                "did not finish, so its files may mix with an earlier run's in this folder")
    for name, entry in files.items():
        if name in skip:
            continue
        # a plain name in this folder: the manifest is a file too, and names nothing else
        if not isinstance(entry, dict) or os.path.basename(name) != name or name in ("", ".", ".."):
            return f"{MANIFEST} lists {name!r}, which is not a file name of a run folder"
        if not (folder / name).is_file():
            return f"{name} is missing, though {MANIFEST} lists it"
        if _sha256(folder / name) != entry.get("sha256"):
            return f"{name} changed since the run finished (its sha256 is not {MANIFEST}'s)"
    return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class hold_sigint:
    """Ctrl-C waits until the block ends (the run's files are then whole), and is raised
    there as ``KeyboardInterrupt`` (unless ``then_raise`` is false: the run is already
    stopping): a second Ctrl-C never cuts the final writes short."""

    def __init__(self, then_raise: bool = True) -> None:
        self.then_raise = then_raise

    def __enter__(self) -> hold_sigint:
        self.caught, self.previous = False, None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._hold)
        return self

    def _hold(self, signum: int, frame: Any) -> None:
        self.caught = True

    def __exit__(self, kind: Any, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        if self.caught and self.then_raise and kind is None:
            raise KeyboardInterrupt
