"""The command line: ``python -m mtlcore COMMAND ...``.

Each subcommand lives in its own module with a ``register(subparsers)``
function; argparse stays here, outside the library proper.
"""
from __future__ import annotations

import argparse
import sys

from . import check, datasets, doctor, download, export, predict, prune, runs, study, train
from . import reproduce, steer
from .common import run_guarded

COMMANDS = (datasets, download, train, predict, export, runs, steer, study, doctor, check, prune, reproduce)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mtlcore",
        description="MTL Lab engine: train and compare multi-task models.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_guarded(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
