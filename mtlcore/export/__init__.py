"""A trained run leaves the lab: as a model file plain PyTorch loads, and as a script a student reads.

    export_model(loaded, "model.pt2")         model.pt2 (torch.export) + model.json (tasks, preprocessing)
    render_script(config)                     a standalone PyTorch training script for the run
    export_dataset(config, "data.pt")         the run's splits as a tensor file the script trains on
    run_checkpoint("runs/first")              a run folder (train --out) or a run id of the store -> checkpoint

``python -m mtlcore export --run DIR --out FILE [--script FILE [--data FILE]]``
is the command line for all of them; the Predict page offers the downloads.
"""
from __future__ import annotations

from pathlib import Path

from .model import FORMAT, export_bytes, export_model, model_metadata
from .script import COVERED, dataset_bytes, export_dataset, render_script, script_problem

__all__ = ["COVERED", "FORMAT", "dataset_bytes", "export_bytes", "export_dataset", "export_model", "model_metadata",
           "render_script", "run_checkpoint", "script_problem"]


def run_checkpoint(run: str, home: Path | str | None = None) -> Path:
    """The checkpoint of ``run``: a run folder, a checkpoint file, or the id of a run in the store.

    Raises FileNotFoundError with one sentence when there is none.
    """
    path = Path(run)
    if path.is_file():
        return path
    if path.is_dir():
        if (path / "checkpoint.pt").is_file():
            return path / "checkpoint.pt"
        raise FileNotFoundError(f"The folder {path} has no checkpoint.pt; give the --out folder of a training run.")
    from ..runs import RunStore
    from ..runs.database import DB_NAME
    from ..runs.home import resolve_home

    if (resolve_home(home) / DB_NAME).is_file():  # no store: do not create one just to look
        store = RunStore(home)
        checkpoint = store.checkpoint_path(run)
        if checkpoint.is_file():
            return checkpoint
    raise FileNotFoundError(f"There is no run folder, checkpoint or run id {run!r} (looked in the data folder "
                            f"{resolve_home(home)}); give the --out folder of a training run or an id from "
                            "`python -m mtlcore runs`.")
