"""``rnnkit datasets``: the bundled datasets, their sizes and where they come from."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from rnnkit.data import list_datasets

from .common import (
    EXIT_OK,
    add_command,
    emit_json,
    say,
    table,
)

EPILOG = """examples:
  rnnkit datasets
  rnnkit datasets --json
  rnnkit train airline            # train on one of them
"""


def add_parser(sub: Any) -> None:
    add_command(sub, "datasets", "list the bundled datasets", __doc__, EPILOG)


def run(args: argparse.Namespace) -> int:
    infos = list_datasets()
    if args.json:
        emit_json([dataclasses.asdict(d) for d in infos])
        return EXIT_OK
    say(
        table(
            ["name", "task", "shape", "description"],
            [[d.name, d.task, d.shape, d.description] for d in infos],
        )
    )
    say("\nsources and licences:")
    for d in infos:
        say(f"  {d.name:9s} {d.source}; {d.licence}")
    say("\nAlso: ucr:PATH reads a UCR archive problem from its folder of NAME_TRAIN.tsv and "
        "NAME_TEST.tsv;\nucr:NAME loads one by name (needs the optional package aeon or "
        "tslearn).")
    return EXIT_OK
