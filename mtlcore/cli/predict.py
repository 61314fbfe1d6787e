"""``python -m mtlcore predict --run DIR --image FILE``: one JSON object."""
from __future__ import annotations

import json
from pathlib import Path

from .common import CommandError


def register(subparsers) -> None:
    parser = subparsers.add_parser("predict", help="predict every task for one image")
    parser.add_argument("--run", required=True, metavar="DIR", help="a run folder (with checkpoint.pt) or a checkpoint file")
    parser.add_argument("--image", required=True, metavar="FILE", help="a PNG or JPEG image")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..images import ImageError
    from ..predict import CheckpointError, load_model, predict_image

    path = Path(args.run)
    if not path.exists():
        raise CommandError(f"There is no run folder or checkpoint at {path}; give the --out folder of a training run.")
    checkpoint = path / "checkpoint.pt" if path.is_dir() else path
    try:
        loaded = load_model(checkpoint)
        result = predict_image(loaded, args.image)
    except (CheckpointError, ImageError, ValueError) as error:
        raise CommandError(str(error)) from None
    print(json.dumps(result["predictions"], indent=2))
    return 0
