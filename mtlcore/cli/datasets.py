"""``python -m mtlcore datasets``: every dataset with its tasks."""
from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser("datasets", help="list datasets and their tasks")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..data import list_datasets

    infos = list_datasets()
    if args.json:
        print(json.dumps([
            {"name": i.name, "description": i.description, "input": i.input_kind, "options": i.options,
             "source": i.source, "unavailable": i.unavailable_reason(),
             "tasks": [t.as_dict() for t in i.tasks]}
            for i in infos
        ], indent=2))
        return 0
    for info in infos:
        options = ", ".join(f"{k}={v}" for k, v in info.options.items())
        print(f"{info.name}  ({info.input_kind} inputs)  {info.description}")
        reason = info.unavailable_reason()
        if reason:
            print(f"  UNAVAILABLE: {reason}")
        if options:
            print(f"  options: {options}")
        for task in info.tasks:
            if task.kind == "classification":
                detail = f"classification, {task.num_classes} classes, metric accuracy"
            else:
                detail = "regression, metric mae" + (f" ({task.unit})" if task.unit else "")
            print(f"  - {task.name:<12} {detail}")
        print()
    return 0
