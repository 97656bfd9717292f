"""What every command shares: exit codes, error messages, JSON output, progress, file writes.

Library code never prints; everything a user sees on a terminal is written here or by the
command modules, through ``say`` (stdout) and ``warn`` (stderr).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from rnnkit.fileio import write_atomic

# Exit codes, documented in ``rnnkit --help`` and docs/cli.md.
EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug in rnnkit: short message, traceback only with RNNKIT_DEBUG=1
EXIT_USAGE = 2  # bad flags or config file (argparse uses 2 as well)
EXIT_DATA = 3  # bad data or input: DataError, ValueError, TypeError
EXIT_MODEL = 4  # bad model file: ModelFileError
EXIT_IO = 5  # the file system refused: OSError (unwritable --out, disk full)
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT (128 + 2)

EXIT_CODES_HELP = """exit codes:
  0    success
  1    internal error (a bug: please report it; RNNKIT_DEBUG=1 shows the traceback)
  2    usage error: bad flag or config file value
  3    bad data or input (file, column, row, window, labels, dataset name)
  4    bad model file
  5    I/O error (e.g. --out not writable)
  130  interrupted (Ctrl-C); train saves the model first"""


class UsageError(Exception):
    """A bad flag value or config file entry found after argparse ran (exit code 2)."""


def say(text: str = "") -> None:
    """Print to stdout (results)."""
    print(text, file=sys.stdout, flush=True)


def warn(text: str) -> None:
    """Print to stderr (progress, notes, errors)."""
    print(text, file=sys.stderr, flush=True)


def one_line(message: object) -> str:
    """A message folded onto one line, as every CLI error is printed."""
    return " ".join(str(message).split())


def emit_json(doc: Any) -> None:
    """The single JSON document a ``--json`` command writes to stdout."""
    say(json.dumps(to_jsonable(doc), indent=2, allow_nan=False))


def to_jsonable(x: Any) -> Any:
    """NumPy scalars and arrays to plain Python; NaN/inf to None (JSON has neither)."""
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def add_command(sub: Any, name: str, help: str, doc: str | None, epilog: str
                ) -> argparse.ArgumentParser:
    """A subcommand parser with the shared ``--json``/``--quiet`` flags and its examples."""
    return sub.add_parser(name, parents=[output_flags()], help=help,
                          description=summary(doc), epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def add_model_and_data(p: argparse.ArgumentParser, model_help: str) -> None:
    p.add_argument("model", metavar="MODEL", help=model_help)
    p.add_argument("data", nargs="?", metavar="DATA",
                   help="dataset name or file (default: the dataset it was trained on)")
    g = p.add_argument_group("columns of DATA, when they are named otherwise than at training")
    g.add_argument("--target", metavar="COL[,COL]", help="the column(s) standing for the "
                   "model's target(s), in its order (classify: its label column)")
    g.add_argument("--features", metavar="COLS", help="the columns standing for the model's "
                   "features, in the model's order, comma-separated")
    g.add_argument("--future-features", metavar="COLS", help="the columns standing for the "
                   "model's known-future features, in its order")
    g.add_argument("--date", metavar="COL", help="the column of dates/years")


def output_flags() -> argparse.ArgumentParser:
    """A parent parser giving every command ``--json`` and ``--quiet``."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("output")
    g.add_argument(
        "--json", action="store_true", help="write one JSON document to stdout instead of tables"
    )
    g.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress or notes on stderr (errors are still printed)",
    )
    return p


# --- files ---------------------------------------------------------------------------------
def write_text(path: str | os.PathLike[str], text: str) -> None:
    write_atomic(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], doc: Any) -> None:
    write_text(path, json.dumps(to_jsonable(doc), indent=2, allow_nan=False) + "\n")


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow([_cell(v) for v in row])
    return buf.getvalue()


def _cell(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return "" if not math.isfinite(v) else f"{float(v):.6g}"
    return v


def history_csv(epochs: list[dict[str, float]]) -> str:
    """The per-epoch history as CSV, one column per logged key (union over epochs)."""
    keys: list[str] = []
    for e in epochs:
        keys += [k for k in e if k not in keys]
    return csv_text(keys, ([e.get(k, "") for k in keys] for e in epochs))


# --- tables --------------------------------------------------------------------------------
def table(header: Sequence[str], rows: Sequence[Sequence[Any]],
          marks: set[tuple[int, int]] | None = None) -> str:
    """A plain text table: numeric columns right-aligned, the others left-aligned; the
    ``(row, column)`` cells in ``marks`` get a ``*`` (the best in their column)."""
    marks = marks or set()
    cells = [[str(h) for h in header]] + [
        [_fmt(v) + ("*" if (i, j) in marks else " " * bool(marks)) for j, v in enumerate(r)]
        for i, r in enumerate(rows)
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    numeric = [
        i > 0 and all(isinstance(r[i], (int, float, np.number)) or r[i] is None for r in rows)
        for i in range(len(header))
    ]

    def line(r: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric)
        ).rstrip()

    return "\n".join(
        [line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]]
    )


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.4g}" if abs(v) < 1e5 else f"{float(v):.3e}"
    return str(v)


# --- progress ------------------------------------------------------------------------------
class ProgressDisplay:
    """Turns ``rk.Progress`` events into a tqdm bar per epoch (stderr is a terminal) or one
    plain line per epoch (a log file, CI); nothing when ``quiet``. ``compiling``: the first
    epoch compiles the kernels, so its time says nothing of the next ones: it shows
    "compiling kernels (once)" instead of an ETA. ``loading``: the first epoch loads them from
    disk (seconds, a warm sunspots epoch is 0.1 s): no ETA after it. From the second epoch on
    the ETA counts only the epochs after the first."""

    def __init__(self, quiet: bool, metric: str, stream: Any = None,
                 compiling: bool = False, loading: bool = False) -> None:
        self.quiet, self.metric, self.compiling = quiet, metric, compiling
        self.loading = loading
        self.first_s = 0.0  # the first epoch's time, left out of the later ETAs
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar: Any = None
        self.epochs = self.start_epoch = self.batches = 0
        self.t0 = time.perf_counter()

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        if self.quiet:
            return
        if event == "begin":
            self.epochs, self.batches = info["epochs"], info["batches"]
            self.start_epoch = info["start_epoch"]
            self.t0 = time.perf_counter()
        elif event == "batch" and self.tty:
            self._batch(info)
        elif event == "epoch":
            self._epoch(info)
        elif event == "end" and self.bar is not None:
            self.bar.close()
            self.bar = None

    def _batch(self, info: dict[str, Any]) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.batches,
                file=self.stream,
                leave=False,
                desc=f"epoch {info['epoch'] + 1}/{self.epochs}",
            )
        self.bar.update(1)
        if "loss" in info:
            self.bar.set_postfix(loss=f"{info['loss']:.4f}", refresh=False)

    def _epoch(self, logs: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        done = int(logs["epoch"]) - self.start_epoch
        elapsed = time.perf_counter() - self.t0
        if done == 1:
            self.first_s = elapsed
        left = self.epochs - int(logs["epoch"])
        # the first epoch carries one-off work (compiling or loading the kernels, first
        # calls): a warm sunspots run's took 2.9 s and the next ones 0.1 s, so from the
        # second epoch on the ETA counts only the epochs after it
        if done > 1:
            eta = (elapsed - self.first_s) / (done - 1) * left
        else:
            eta = None if self.compiling or self.loading else elapsed * left
        parts = [f"epoch {int(logs['epoch'])}/{self.epochs}", f"loss {logs['loss']:.4f}"]
        for key in ("val_loss", f"val_{self.metric}"):
            if key in logs:
                parts.append(f"{key} {logs[key]:.4f}")
        parts.append(f"{logs['time']:.1f}s")
        if eta is not None:
            parts.append(f"ETA {_duration(eta)}")
        elif self.compiling:
            parts.append("compiling kernels (once)")
        print("  ".join(parts), file=self.stream, flush=True)


def _duration(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def summary(doc: str | None) -> str:
    """A command's help description: its module docstring without the ``rnnkit x``: prefix."""
    first = (doc or "").strip().split("\n\n")[0]
    text = " ".join(first.split("``: ", 1)[-1].split())
    return text[:1].upper() + text[1:]
