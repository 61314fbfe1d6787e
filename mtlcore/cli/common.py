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


MAX_CONFIG_BYTES = 1 << 20  # a config.json is about 1 KB; a megabyte is not a config


def read_config_text(path: Path) -> str:
    """The text of the config file at ``path``, or one sentence saying why it cannot be read."""
    if not path.is_file():
        raise CommandError(f"Config file {path} does not exist.")
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise CommandError(f"Config file {path} cannot be read ({error.strerror or error}).") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise CommandError(f"Config file {path} is larger than {MAX_CONFIG_BYTES // 2**20} MB; "
                           "give a config.json as MTL Lab writes it.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CommandError(f"Config file {path} is not UTF-8 text (byte {error.start} is {data[error.start]:#04x}); "
                           "give a config.json as MTL Lab writes it.") from None


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    """The config given by ``--config`` and ``--set`` (not yet validated)."""
    config = ExperimentConfig()
    if args.config:
        config = ExperimentConfig.from_json(read_config_text(Path(args.config)))
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
    except Exception as error:
        # The run store's errors are sentences for people too (a damaged or read-only store). Looked up,
        # not imported: importing mtlcore.runs loads torch, which commands that never touch it should not pay.
        store_errors = sys.modules.get(f"{__package__.rpartition('.')[0]}.runs.errors")
        if store_errors is not None and isinstance(error, store_errors.StoreError):
            return fail(str(error))
        raise
