"""``python -m mtlcore train [--config FILE] [--set KEY=VALUE ...] --out DIR``."""
from __future__ import annotations

from pathlib import Path

from .common import CommandError, add_config_arguments, config_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train one model in the foreground")
    add_config_arguments(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for config.json, metrics.jsonl, summary.json and checkpoint.pt")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def format_results(summary: dict) -> str:
    """The test metrics as a small table, one task a line."""
    lines = [f"{'task':<12} {'metric':<9} {'test':>9}"]
    for task, metrics in summary.get("test", {}).items():
        name = "accuracy" if "accuracy" in metrics else "mae"
        lines.append(f"{task:<12} {name:<9} {metrics[name]:>9.4f}")
    return "\n".join(lines)


def run(args) -> int:
    from ..callbacks import ProgressBar, RunFiles
    from ..validation import validate
    from ..engine import fit

    config = validate(config_from_args(args))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out} is a file; give a folder.")
    callbacks = [RunFiles(out)] + ([] if args.quiet else [ProgressBar()])
    try:
        result = fit(config, callbacks)
    except ValueError as error:  # e.g. a device that is not there
        raise CommandError(str(error)) from None
    print(result.message)
    if result.status == "diverged":
        return 1
    print(format_results(result.summary))
    print(f"Wrote {out}/summary.json")
    return 0
