"""``python -m mtlcore study KIND [--set KEY=VALUE ...] [--seeds S] --out DIR``.

Trains every member run of a study in the foreground, one progress line per
run, then prints the result table and writes ``DIR/result.json``. Each kind
starts from its own base settings (``mtlcore.studies.KIND_DEFAULTS``);
``--set`` changes them, ``--config FILE`` replaces them.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import CommandError, add_config_arguments, config_from_args

KINDS = ("stl-vs-mtl", "pairs", "sweep", "relatedness", "mtl-vs-ensemble")  # checked against mtlcore.studies.KINDS in the tests


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "study", help="train a study (many runs over seeds) in the foreground and write result.json",
        description="Kinds: stl-vs-mtl (each task alone vs together), pairs (transfer matrix and affinity), "
                    "sweep (two tasks' loss weights and the Pareto front), relatedness (synthetic tasks of "
                    "chosen correlation, hard sharing vs MMoE), mtl-vs-ensemble (the multi-task model against "
                    "single-task models and a bagged ensemble of them at a matched parameter budget).",
    )
    parser.add_argument("kind", choices=KINDS, metavar="KIND", help=f"one of: {', '.join(KINDS)}")
    add_config_arguments(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for result.json")
    parser.add_argument("--seeds", type=int, metavar="S",
                        help="seeds per configuration: seed, seed+1, ... (default 3)")
    parser.add_argument("--max-subset", type=int, metavar="K",
                        help="pairs: also train every group of up to K tasks, K = 2, 3 or 4 (default 2: pairs only)")
    parser.add_argument("--steps", type=int, metavar="N",
                        help="sweep: number of weights of the first task from 0 to 1 (default 5)")
    parser.add_argument("--methods", metavar="A,B", default="",
                        help="sweep: weighting methods to overlay (default: equal, uncertainty, dwa, upgrad "
                             "where they fit)")
    parser.add_argument("--correlations", metavar="P,Q", default="",
                        help="relatedness: task correlations (default 1,0.5,0,-0.5)")
    parser.add_argument("--archs", metavar="A,B", default="",
                        help="relatedness: architectures compared with single-task (default hard,mmoe)")
    parser.add_argument("--diagnostics-every", type=int, metavar="STEPS",
                        help="pairs: steps between lookahead-affinity measurements in the all-task run (default 10)")
    parser.add_argument("--ensemble", type=int, metavar="K",
                        help="mtl-vs-ensemble: bagged members per task (default 5)")
    parser.add_argument("--no-reuse", action="store_true",
                        help="train every member, even one identical to a finished run in the data folder")
    parser.add_argument("--home", metavar="DIR",
                        help="reuse identical finished runs from this data folder (default: $MTL_HOME, else "
                             "~/.mtl-lab, when it holds a store)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(func=run)


def _list(text: str, kind=str, option: str = "") -> tuple:
    items = [item.strip() for item in text.split(",") if item.strip()]
    try:
        return tuple(kind(item) for item in items)
    except ValueError:
        raise CommandError(f"{option} expects a comma-separated list of numbers, got {text!r}.") from None


def spec_from_args(args: argparse.Namespace):
    """The StudySpec the command line describes (checked by ``plan`` later)."""
    from ..config import parse_assignment
    from ..studies import StudySpec, kind_defaults

    if args.config:
        base = config_from_args(args)
    else:
        # The kind's defaults go first, so that --set changes them; those of
        # another dataset's options are left out when --set picks a dataset.
        names = [value for key, value in map(parse_assignment, args.assignments) if key == "dataset.name"]
        defaults = kind_defaults(args.kind, names[-1] if names else None)
        assignments = [f"{key}={value}" for key, value in defaults.items()] + args.assignments
        base = config_from_args(argparse.Namespace(config=None, assignments=assignments))
    options = {name: getattr(args, name) for name in ("seeds", "max_subset", "steps", "diagnostics_every", "ensemble")
               if getattr(args, name) is not None}  # unset: the StudySpec default
    if args.methods:
        options["methods"] = _list(args.methods)
    if args.correlations:
        options["correlations"] = _list(args.correlations, float, "--correlations")
    if args.archs:
        options["archs"] = _list(args.archs)
    return StudySpec(args.kind, base, reuse=not args.no_reuse, **options)


def _store(args):
    """The run store to reuse finished runs from, or None when there is none (never created here)."""
    from ..runs import RunStore, StoreError
    from ..runs.database import DB_NAME
    from ..runs.home import resolve_home

    if args.no_reuse:
        return None
    home = resolve_home(args.home)
    if not (home / DB_NAME).is_file():
        if args.home:
            raise CommandError(f"--home {home} holds no run store ({DB_NAME} is missing).")
        return None
    try:
        return RunStore(home)
    except StoreError:
        return None  # an unreadable store only means nothing is reused


def run(args) -> int:
    from ..studies import StudyError, format_result, plan, run_study

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out} is a file; give a folder.")
    try:
        spec = spec_from_args(args)
        members = plan(spec)  # fails fast, before any training, on an impossible study
    except StudyError as error:
        raise CommandError(str(error)) from None
    store = _store(args)
    if not args.quiet:
        print(f"Study {spec.kind}: {len(members)} runs over {spec.seeds} seed(s).", flush=True)
    report = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    try:
        document = run_study(spec, report=report, store=store)
    except ValueError as error:  # e.g. a device that is not there
        raise CommandError(str(error)) from None
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(document, indent=2) + "\n")
    print()
    print(format_result(spec.kind, document["result"]))
    print(f"Wrote {out}/result.json")
    progress = document["progress"]
    if document["interrupted"]:
        print(f"Interrupted: {progress['with_result']} of {progress['total']} runs have a result; "
              "the table shows those.", file=sys.stderr)
        return 1
    if progress["with_result"] < progress["total"]:
        print(f"{progress['total'] - progress['with_result']} run(s) ended without a result (see the lines above).",
              file=sys.stderr)
        return 1
    return 0
