"""Pieces shared by the command-line subcommands."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import ConfigError, ExperimentConfig, parse_assignment, set_key


class CommandError(Exception):
    """A user error on the command line: printed as one sentence, exit code 2."""


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` and repeatable ``--set KEY=VALUE``."""
    parser.add_argument("--config", metavar="FILE", help="a config.json to start from (default: built-in defaults)")
    parser.add_argument(
        "--set", metavar="KEY=VALUE", action="append", default=[], dest="assignments",
        help="override one setting, e.g. --set model.arch=soft --set loss.weights.shape=2 (repeatable)",
    )


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    """The config given by ``--config`` and ``--set`` (not yet validated)."""
    config = ExperimentConfig()
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise CommandError(f"Config file {path} does not exist.")
        config = ExperimentConfig.from_json(path.read_text())
    for text in args.assignments:
        key, value = parse_assignment(text)
        config = set_key(config, key, value)
    return config


def fail(message: str) -> int:
    """Print one clear sentence to stderr; return the exit code for user errors."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def run_guarded(func, args: argparse.Namespace) -> int:
    """Run a subcommand; user errors become one sentence and a non-zero exit."""
    try:
        return int(func(args) or 0)
    except (CommandError, ConfigError) as error:
        return fail(str(error))
    except KeyboardInterrupt:
        return fail("Interrupted.")
