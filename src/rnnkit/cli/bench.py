"""``rnnkit bench``: timing benchmarks; the arguments go to ``rnnkit.bench``."""

from __future__ import annotations

import argparse
import importlib.util
from typing import Any

from rnnkit.errors import DataError

from .common import (
    add_command,
)

EPILOG = """examples:
  rnnkit bench
  rnnkit bench --help-bench        # the benchmark's own options
  rnnkit bench --variants          # dropout, layer norm, ...: each against the plain cell
"""


def add_parser(sub: Any) -> None:
    p = add_command(sub, "bench", "run timing benchmarks", __doc__, EPILOG)
    p.add_argument("--help-bench", action="store_true", help="show rnnkit.bench's own options")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for rnnkit.bench")


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("rnnkit.bench") is None:
        raise DataError("the benchmark module rnnkit.bench is not installed in this version")
    argv = list(args.rest)
    if "--variants" in argv:
        from rnnkit.bench_variants import main
    else:
        from rnnkit.bench import main  # imported here: benchmarks are not needed to train

    argv += ["--json"] if args.json else []
    argv += ["--help"] if args.help_bench else []
    try:
        return int(main(argv) or 0)
    except SystemExit as e:  # its own argparse: --help (0) or a usage error (2)
        return e.code if isinstance(e.code, int) else 2
