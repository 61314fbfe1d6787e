"""Is the store whole, and rebuild what it lost: ``check`` and ``repair``.

    python -m mtlcore check      # says what is wrong, changes nothing; exit 1 when something is
    python -m mtlcore repair     # moves a damaged database aside and rebuilds runs from their folders

Both read the data folder given by ``--home`` (default: MTL_HOME, else
~/.mtl-lab). Stop the app and its workers before ``repair``.
"""
from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser("check", help="say whether the store lost or damaged any run (changes nothing)")
    parser.add_argument("--json", action="store_true", help="print a JSON list of findings")
    _add_home(parser)
    parser.set_defaults(func=check)

    parser = subparsers.add_parser("repair", help="rebuild the store from the run folders where it lost runs")
    _add_home(parser)
    parser.set_defaults(func=repair)


def _add_home(parser) -> None:
    parser.add_argument("--home", metavar="DIR", help="the data folder (default: $MTL_HOME, else ~/.mtl-lab)")


def check(args) -> int:
    from ..runs.home import resolve_home
    from ..runs.integrity import check as check_store

    home = resolve_home(args.home)
    findings = check_store(home)
    if args.json:
        print(json.dumps([{"kind": f.kind, "message": f.sentence, "runs": list(f.run_ids)} for f in findings],
                         indent=2))
    elif findings:
        for finding in findings:
            print(finding.sentence)
    else:
        print(f"The store at {home} is whole: every run folder matches its row.")
    return 1 if findings else 0


def repair(args) -> int:
    from ..runs.repair import repair as repair_store

    for line in repair_store(args.home).lines:
        print(line)
    return 0
