"""``python -m mtlcore doctor``: what this machine gives MTL Lab, on one screen."""
from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "doctor", help="report versions, devices, precision, solvers, datasets and the data folder")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..doctor import environment_report

    report = environment_report()
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.as_text())
    return 0 if report.core_ok else 1
