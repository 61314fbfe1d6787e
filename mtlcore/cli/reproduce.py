"""``python -m mtlcore reproduce NAME [--seeds S] [--out FILE]`` and ``reproduce --list``.

Runs one of the paper reproductions (``mtlcore.reproduce``), prints its
table (claim, paper, ours, verdict) and writes its result JSON, by default
to ``MTL_HOME/reproductions/NAME/result.json`` where the app finds it.
"""
from __future__ import annotations

import sys

from .common import CommandError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "reproduce", help="reproduce a paper's claim on embedded data and print claim, paper, ours and verdict",
        description="Each reproduction states a paper's claim, runs the experiment, and prints the paper's number "
                    "beside ours with a verdict (reproduced / not reproduced / inconclusive). --list names them.",
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="the reproduction to run (see --list)")
    parser.add_argument("--list", action="store_true", help="list the reproductions and exit")
    parser.add_argument("--seeds", type=int, metavar="S", help="seeds (default: the reproduction's own)")
    parser.add_argument("--out", metavar="FILE",
                        help="where to write the result JSON (default: $MTL_HOME/reproductions/NAME/result.json); "
                             "a folder gets result.json inside it")
    parser.add_argument("--methods", metavar="A,B", default="",
                        help="toy: weighting methods whose trajectories to run (default equal,famo,pcgrad)")
    parser.add_argument("--steps", type=int, metavar="N", help="toy: Adam steps (default 50000, the papers')")
    parser.add_argument("--beyond", type=int, metavar="N",
                        help="toy: for starts that miss the Pareto set, up to N more steps, to tell a stall from a "
                             "slower path (default 40%% of the steps; 0: none)")
    parser.add_argument("--starts", metavar="I,J",
                        help="toy: run from these of the five starts only, numbered 0-4 (a verdict needs all five)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="toy: processes for the trajectories (default one per core; 1 = this process)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny data and epochs: a smoke test in seconds, whose verdicts mean little")
    parser.add_argument("--full", action="store_true",
                        help="the long version (more data, epochs or methods; tens of minutes): the default is "
                             "sized to finish in minutes on a 2-core CPU")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from ..registry import UnknownNameError
    from ..reproduce import REPRODUCTIONS, run_reproduction

    if args.list or not args.name:
        if not args.list:
            raise CommandError("Name a reproduction to run, or use --list to see them: "
                               f"{', '.join(REPRODUCTIONS.names())}.")
        for name in REPRODUCTIONS.names():
            cls = REPRODUCTIONS.get(name)
            print(f"{name:12s} {cls.title}")
            print(f"{'':12s}   claim: {cls.claim}")
            print(f"{'':12s}   about {cls.expected_minutes:g} min on a 2-core CPU")
        return 0
    try:
        REPRODUCTIONS.get(args.name)
    except UnknownNameError as error:
        raise CommandError(str(error)) from None
    if args.seeds is not None and args.seeds < 1:
        raise CommandError(f"--seeds must be 1 or more, got {args.seeds}.")
    if args.steps is not None and args.steps < 1:
        raise CommandError(f"--steps must be 1 or more, got {args.steps}.")
    out = None
    if args.out:
        out = Path(args.out)
        if out.is_dir() or not out.suffix:
            out = out / "result.json"
    options = {}
    if args.methods:
        options["methods"] = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    if args.steps is not None:
        options["steps"] = args.steps
    if args.beyond is not None:
        if args.beyond < 0:
            raise CommandError(f"--beyond must be 0 or more steps, got {args.beyond}.")
        options["beyond"] = args.beyond
    if args.starts:
        try:
            options["starts"] = tuple(int(i) for i in args.starts.split(",") if i.strip())
        except ValueError:
            raise CommandError(f"--starts takes start numbers 0-4 separated by commas, got {args.starts!r}.") from None
    if args.quick:
        options["quick"] = True
    if args.full:
        if args.quick:
            raise CommandError("--quick and --full ask for opposite sizes; give one of them.")
        options["full"] = True
    if args.workers is not None:
        if args.workers < 1:
            raise CommandError(f"--workers must be 1 or more, got {args.workers}.")
        options["workers"] = args.workers
    progress = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    try:
        result = run_reproduction(args.name, args.seeds, out, progress=progress, **options)
    except (ValueError, OSError) as error:
        raise CommandError(str(error)) from None
    print(result.table())
    from ..reproduce import default_result_path

    print(f"\nWrote {out or default_result_path(args.name)}")
    return 0
