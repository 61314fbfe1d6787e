"""``python -m mtlcore export --run DIR|ID --out FILE [--script FILE [--data FILE]]``.

``--out`` writes the model as a ``torch.export`` file that plain PyTorch
loads (``torch.export.load(FILE).module()``), and its metadata beside it
(FILE with ``.json``). ``--script`` writes the run as a standalone PyTorch
training script, and the run's data as a tensor file for it (``--data``,
default: the script's name with ``_data.pt``).
"""
from __future__ import annotations

from pathlib import Path

from .common import CommandError


def register(subparsers) -> None:
    from ..export import COVERED

    parser = subparsers.add_parser(
        "export", help="export a trained run: a model file for plain PyTorch, and/or its training script",
        description=f"Export a trained run. --out: the model (torch.export) and a JSON of its tasks and "
                    f"preprocessing. --script: a standalone PyTorch training script and its data; it covers "
                    f"{COVERED}.")
    parser.add_argument("--run", required=True, metavar="DIR",
                        help="a run folder (train --out), a checkpoint file, or a run id of the store (MTL_HOME)")
    parser.add_argument("--out", metavar="FILE", help="the model file to write, e.g. model.pt2 (+ model.json)")
    parser.add_argument("--script", metavar="FILE", help="a standalone training script to write, e.g. train_run.py")
    parser.add_argument("--data", metavar="FILE", help="the tensor file the script trains on (default: SCRIPT_data.pt)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..export import COVERED, export_dataset, export_model, render_script, run_checkpoint, script_problem
    from ..predict import CheckpointError, load_model

    if not args.out and not args.script:
        raise CommandError("Say what to export: --out FILE for the model, --script FILE for the training script, or both.")
    if args.data and not args.script:
        raise CommandError("--data is the data file of --script; give --script FILE too.")
    try:
        checkpoint = run_checkpoint(args.run)
        loaded = load_model(checkpoint)
    except (FileNotFoundError, CheckpointError) as error:
        raise CommandError(str(error)) from None
    if args.script:  # checked first: refuse before writing anything
        problem = script_problem(loaded.config)
        if problem:
            raise CommandError(problem)
    for given in (args.out, args.script, args.data):
        if given and Path(given).is_dir():
            raise CommandError(f"{given} is a folder; give a file name.")
    try:
        if args.out:
            model, meta = export_model(loaded, args.out)
            print(f"Wrote {model} (load it with torch.export.load({str(model)!r}).module()) and {meta}.")
        if args.script:
            script = Path(args.script)
            data = Path(args.data) if args.data else script.with_name(script.stem + "_data.pt")
            code = render_script(loaded.config, run=str(args.run), script_name=script.name, data_name=data.name)
            export_dataset(loaded.config, data)  # first: the script is written only when its data is there
            script.parent.mkdir(parents=True, exist_ok=True)
            script.write_text(code)
            print(f"Wrote {script} and its data {data}; run: python {script} --data {data} "
                  f"(the generator covers {COVERED}).")
    except OSError as error:
        raise CommandError(f"Cannot write the export: {error.strerror or error} ({error.filename or ''}).") from None
    except ValueError as error:  # e.g. data too large for one tensor file
        raise CommandError(str(error)) from None
    return 0
