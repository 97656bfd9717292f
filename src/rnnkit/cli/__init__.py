"""The ``rnnkit`` command line: ``main(argv) -> exit code`` and the console entry ``run()``.

Each command is a module with ``add_parser(subparsers)`` and ``run(args) -> int``. ``main``
never lets a user error escape as a traceback: it prints one line to stderr and returns the
documented exit code (``common.EXIT_CODES_HELP``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import traceback
from typing import Any

from rnnkit.errors import DataError, ModelFileError

from .common import (
    EXIT_CODES_HELP,
    EXIT_DATA,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_IO,
    EXIT_MODEL,
    EXIT_USAGE,
    UsageError,
    one_line,
    warn,
)

# In help order. "diagnose" is written separately and is listed only once its module exists.
COMMANDS = (
    "train", "evaluate", "predict", "backtest", "report", "generate", "datasets", "info",
    "export", "bench", "diagnose",
)
OPTIONAL = ("diagnose",)

__all__ = ["COMMANDS", "build_parser", "main", "run"]


def available_commands() -> list[str]:
    return [
        c
        for c in COMMANDS
        if c not in OPTIONAL or importlib.util.find_spec(f"rnnkit.cli.{c}") is not None
    ]


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line (the full usage is one ``--help`` away)."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    import rnnkit

    parser = _Parser(
        prog="rnnkit",
        description="Train, evaluate and run recurrent neural networks (Elman RNN, LSTM, GRU) "
        "on time series, labelled sequences and text.",
        epilog="example:\n  rnnkit train            # a default task that takes under a "
        "minute\n  rnnkit <command> --help\n\n" + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rnnkit {rnnkit.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in available_commands():
        module = importlib.import_module(f"rnnkit.cli.{name}")
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser()
        try:
            args, extra = parser.parse_known_args(argv)
            if extra and args.command != "bench":
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
        except SystemExit as e:  # --help, --version (0) and argparse's usage errors (2)
            return e.code if isinstance(e.code, int) else EXIT_USAGE
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        if args.command == "bench":  # its options belong to rnnkit.bench: pass them on
            args.rest = extra + args.rest
        module = importlib.import_module(f"rnnkit.cli.{args.command}")
        return int(module.run(args))
    except KeyboardInterrupt:
        warn("rnnkit: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `rnnkit ... | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except BaseException as e:
        return _report(e)


def _report(e: BaseException) -> int:
    if isinstance(e, SystemExit):
        return e.code if isinstance(e.code, int) else EXIT_INTERNAL
    code, kind = _classify(e)
    if os.environ.get("RNNKIT_DEBUG") == "1":
        traceback.print_exception(e)
    if code == EXIT_INTERNAL:
        warn(
            f"rnnkit: internal error: {type(e).__name__}: {one_line(e)} (this is a bug; "
            "please report it with the command you ran; RNNKIT_DEBUG=1 shows the traceback)"
        )
    else:
        warn(f"rnnkit: {kind}: {one_line(e)}")
    return code


def _classify(e: BaseException) -> tuple[int, str]:
    if isinstance(e, UsageError):
        return EXIT_USAGE, "usage error"
    if isinstance(e, ModelFileError):
        return EXIT_MODEL, "bad model file"
    if isinstance(e, (DataError, ValueError, TypeError)):
        return EXIT_DATA, "bad input"
    if isinstance(e, OSError):
        return EXIT_IO, "I/O error"
    if isinstance(e, MemoryError):
        return EXIT_DATA, "out of memory (use smaller --batch-size, --hidden or data)"
    return EXIT_INTERNAL, "internal error"


def run() -> Any:
    """Console entry point (``rnnkit = "rnnkit.cli:run"``)."""
    sys.exit(main())
