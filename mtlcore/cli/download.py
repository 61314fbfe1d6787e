"""``python -m mtlcore download NAME``: fetch a dataset's files into the data folder.

    python -m mtlcore download cifar10
    python -m mtlcore download multimnist multifashion

Prints a progress bar on stderr. Offline, or when a download fails, it
prints one sentence saying which files to place in which folder and exits
with status 2; datasets already there are left as they are.
"""
from __future__ import annotations

import sys

from .common import CommandError

BAR = 30  # characters


def register(subparsers) -> None:
    parser = subparsers.add_parser("download", help="download a dataset's files into the data folder")
    parser.add_argument("names", nargs="+", metavar="NAME", help="dataset name, e.g. multimnist, cifar10, celeba")
    parser.set_defaults(func=run)


def progress_bar(name: str):
    """A ``progress(fraction, message)`` that redraws one line on stderr."""
    def show(fraction: float, message: str) -> None:
        done = int(BAR * max(0.0, min(fraction, 1.0)))
        sys.stderr.write(f"\r{name:<13} [{'#' * done}{'.' * (BAR - done)}] {fraction:4.0%}  {message[:50]:<50}")
        sys.stderr.flush()

    return show


def run(args) -> int:
    from ..data import dataset_info
    from ..data.download import DownloadError
    from ..registry import UnknownNameError

    for name in args.names:
        try:
            info = dataset_info(name)
        except UnknownNameError as error:
            raise CommandError(str(error)) from None
        if info.unavailable_reason() is None:
            print(f"{name}: already in the data folder.")
            continue
        if info.download is None:
            raise CommandError(f"{name} cannot be downloaded; {info.unavailable_reason()}")
        try:
            info.download(progress=progress_bar(name))
        except DownloadError as error:
            sys.stderr.write("\n")
            raise CommandError(str(error)) from None
        sys.stderr.write("\n")
        print(f"{name}: ready.")
    return 0
