"""Free disk space: ``python -m mtlcore prune``.

    python -m mtlcore prune --older-than 30 --dry-run   # what would go
    python -m mtlcore prune --older-than 30             # delete runs that ended over 30 days ago
    python -m mtlcore prune --thin-steps                # keep 500 steps of each ended run's curve

Never touches queued or running runs, nor runs that a study uses; prints
what it removed and the bytes freed.
"""
from __future__ import annotations

from .common import CommandError


def register(subparsers) -> None:
    parser = subparsers.add_parser("prune", help="delete old ended runs and thin their per-step rows")
    parser.add_argument("--older-than", type=float, metavar="DAYS",
                        help="delete ended runs that ended more than DAYS days ago (with their checkpoints)")
    parser.add_argument("--thin-steps", action="store_true",
                        help="keep only --keep-steps evenly spaced steps of each ended run's curve")
    parser.add_argument("--keep-steps", type=int, metavar="N",
                        help="how many steps --thin-steps keeps per run (default: 500, pruning.DEFAULT_KEEP_STEPS)")
    parser.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    parser.add_argument("--home", metavar="DIR", help="the data folder (default: $MTL_HOME, else ~/.mtl-lab)")
    parser.set_defaults(func=prune)


def prune(args) -> int:
    from ..runs import RunStore, StoreError
    from ..runs.pruning import DEFAULT_KEEP_STEPS, prune as prune_store

    if args.older_than is None and not args.thin_steps:
        raise CommandError("Say what to prune: --older-than DAYS (old ended runs) and/or --thin-steps.")
    try:
        report = prune_store(RunStore(args.home), older_than_days=args.older_than,
                             keep_steps=(args.keep_steps or DEFAULT_KEEP_STEPS) if args.thin_steps else None, dry_run=args.dry_run)
    except StoreError as error:
        raise CommandError(str(error)) from None
    for line in report.lines:
        print(line)
    return 0
