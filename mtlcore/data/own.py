"""Your own datasets: every folder in ``MTL_HOME/datasets`` becomes a dataset.

``own_import.py`` puts a checked dataset there (a ``manifest.json`` with its
tasks, the ``labels.csv`` or ``data.csv``, and the images); this module turns
each such folder into a registry entry like the built-in datasets, so the
app, the command line and the workers list it, train on it and predict with
it. Folders are found three ways:

- when ``mtlcore.data`` is imported (``refresh``), so imported datasets
  persist across restarts;
- when a name the registry does not know is looked up (``find``), so a
  worker started before the import still trains on it;
- at once in the process that imports one (``register_folder``).

Images are read with PIL, turned into RGB on white, resized so that the
shorter side is ``image_size`` pixels and centre-cropped (torchvision's
``Resize`` and ``CenterCrop``), then normalised as ``(x - 0.5) / 0.5`` like
shapes; ``preprocess`` does the same to a picture given to Predict. Tables
feed their numeric columns to an MLP, standardised with the training split's
mean and standard deviation.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..images import MAX_SIDE, read_image, to_rgb_on_white
from .base import DATASETS, DatasetInfo, MTLData, Split, TaskSpec, split_indices, standardise_regression
from .cache import cached_build
from .folders import imported_root
from .own_import import LABELS, MANIFEST, NAME, TABLE, clean_staging
from .own_labels import feature_matrix, read_csv
from .tvsets import picture_transform

MIN_SIZE, MAX_SIZE = 8, 128
_REGISTERED: dict[str, Path] = {}  # imported datasets this process knows, and their folders


def check_image_size(image_size: int) -> None:
    if not MIN_SIZE <= image_size <= MAX_SIZE:
        raise ValueError(f"image_size must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {image_size}.")


def read_manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / MANIFEST).read_text())


def task_specs(manifest: dict[str, Any]) -> tuple[TaskSpec, ...]:
    specs = []
    for t in manifest["tasks"]:
        if t["kind"] == "classification":
            specs.append(TaskSpec(t["name"], "classification", len(t["classes"]), tuple(t["classes"]),
                                  description=f"The column {t['name']!r} of your data ({len(t['classes'])} classes)."))
        else:
            specs.append(TaskSpec(t["name"], "regression", description=f"The column {t['name']!r} of your data."))
    return tuple(specs)


def missing(folder: Path) -> str | None:
    """None while the folder is there; after a delete by another process, what happened."""
    if (folder / MANIFEST).is_file():
        return None
    return f"The imported dataset {folder.name!r} is no longer in {folder.parent}; import it again on the Data page."


# ----- building ----------------------------------------------------------------

def targets_of(table, specs: tuple[TaskSpec, ...]) -> dict[str, torch.Tensor]:
    """Each task's targets from the CSV, with the classes fixed at import."""
    y = {}
    for spec in specs:
        values = table.values(spec.name)
        if spec.kind == "classification":
            index = {c: i for i, c in enumerate(spec.classes)}
            unknown = [v for v in values if v not in index]
            if unknown:
                raise ValueError(f"{table.source} of dataset changed since import: {unknown[0]!r} is not a class "
                                 f"of {spec.name!r}; import the data again.")
            y[spec.name] = torch.tensor([index[v] for v in values], dtype=torch.int64)
        else:
            y[spec.name] = torch.tensor([float(v) for v in values], dtype=torch.float32)
    return y


def read_inputs(folder: Path, manifest: dict[str, Any], image_size: int):
    """(x, table): every image as a 3 x S x S input, or the feature matrix."""
    if manifest["kind"] == "images":
        table = read_csv((folder / LABELS).read_bytes(), LABELS)
        transform = picture_transform(image_size)
        files = table.values(manifest["file_column"])
        # Shrunk as Predict shrinks a user's picture, so both see the same thing.
        x = torch.stack([transform(to_rgb_on_white(read_image(folder / "images" / f, max_side=MAX_SIDE)))
                         for f in files])
        return x.clamp_(-1.0, 1.0), table
    table = read_csv((folder / TABLE).read_bytes(), TABLE)
    return torch.from_numpy(feature_matrix(table, manifest["features"])), table


def assemble(folder: Path, seed: int, image_size: int) -> MTLData:
    manifest = read_manifest(folder)
    specs = task_specs(manifest)
    x, table = read_inputs(folder, manifest, image_size)
    y = targets_of(table, specs)
    train, val, test = split_indices(len(x), seed)
    splits = {name: Split(x[idx], {t: v[idx] for t, v in y.items()})
              for name, idx in (("train", train), ("val", val), ("test", test))}
    if manifest["kind"] == "table":
        # Features on wildly different scales (metres and millimetres) would
        # make the MLP's first layer listen to the largest; the training
        # split's statistics are used for all three splits.
        mean = splits["train"].x.mean(0, keepdim=True)
        std = splits["train"].x.std(0, keepdim=True) if len(splits["train"]) > 1 else torch.ones_like(mean)
        std = torch.where(std > 1e-8, std, torch.ones_like(std))
        for split in splits.values():
            split.x = ((split.x - mean) / std).float().contiguous()
    tasks = {t.name: t for t in specs}
    stats = standardise_regression(splits, tasks)
    kind = "image" if manifest["kind"] == "images" else "vector"
    return MTLData(manifest["name"], tasks, splits["train"], splits["val"], splits["test"], kind, stats)


def build(folder: Path, seed: int = 0, image_size: int = 32) -> MTLData:
    """The imported dataset in ``folder``, from the cache when built before."""
    problem = missing(folder)
    if problem:
        raise ValueError(problem)
    check_image_size(image_size)
    manifest = read_manifest(folder)
    key = {"id": manifest["id"], "seed": seed,
           "image_size": image_size if manifest["kind"] == "images" else 0}
    return cached_build(manifest["name"], key, lambda: assemble(folder, seed, image_size))


def footprint(manifest: dict[str, Any], image_size: int = 32) -> tuple[int, tuple[int, ...]]:
    """(samples, input shape) that ``build`` would make, from the manifest alone."""
    if manifest["kind"] != "images":
        return int(manifest["rows"]), (len(manifest["features"]),)
    check_image_size(image_size)
    return int(manifest["rows"]), (3, image_size, image_size)


def preprocess(img: Image.Image, image_size: int = 32, **_other_options) -> torch.Tensor:
    """A user's picture as one input (3 x S x S in [-1, 1]), exactly as the imported images."""
    check_image_size(image_size)
    return picture_transform(image_size)(to_rgb_on_white(img)).clamp(-1.0, 1.0)


# ----- registering -------------------------------------------------------------

def info_from_folder(folder: Path) -> DatasetInfo:
    """The registry entry of the imported dataset in ``folder``."""
    manifest = read_manifest(folder)
    images = manifest["kind"] == "images"
    size = int(manifest.get("image_size", 32))
    return DatasetInfo(
        name=manifest["name"],
        description=manifest.get("description") or "Your own data.",
        tasks=task_specs(manifest),
        build=functools.partial(build, folder),
        footprint=functools.partial(footprint, manifest),
        # A table has no options: a dict of options the user cannot change
        # would only clutter the pages.
        options={"image_size": size} if images else {},
        option_help={"image_size": f"Width and height the pictures are resized to ({MIN_SIZE} to {MAX_SIZE})."}
        if images else {},
        input_kind="image" if images else "vector",
        # The size chosen at import is the default here too: a run that kept
        # the default and passes no options is preprocessed as it was trained.
        preprocess=functools.partial(preprocess, image_size=size) if images else None,
        image_hint="A picture like the ones you imported." if images else "",
        source="imported",
        available=functools.partial(missing, folder),
    )


def register_folder(folder: Path) -> DatasetInfo:
    """Register (or re-register) the imported dataset in ``folder``."""
    info = info_from_folder(folder)
    if info.name in DATASETS.names() and info.name not in _REGISTERED:
        raise ValueError(f"The imported dataset {info.name!r} has the name of a built-in dataset; rename its folder.")
    DATASETS.unregister(info.name)
    DATASETS.register(info.name)(info)
    _REGISTERED[info.name] = folder
    _clear_loaded()
    return info


def forget(name: str) -> None:
    """Unregister an imported dataset (after its folder was deleted)."""
    if name in _REGISTERED:
        DATASETS.unregister(name)
        del _REGISTERED[name]
        _clear_loaded()


def _clear_loaded() -> None:
    """Drop loaded tensors: a name may now stand for other data."""
    from . import clear_loaded  # the package's in-process cache; imported late (it imports us)

    clear_loaded()


def _valid_folder(folder: Path) -> bool:
    return bool(NAME.match(folder.name)) and (folder / MANIFEST).is_file()


def find(name: str) -> DatasetInfo | None:
    """The registry's finder: an imported dataset ``name`` not registered yet."""
    if not isinstance(name, str) or not NAME.match(name):
        return None  # also keeps names like "../x" from reaching the file system
    folder = imported_root() / name
    if not _valid_folder(folder):
        return None
    try:
        info = info_from_folder(folder)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    _REGISTERED[name] = folder
    return info


def refresh() -> list[str]:
    """Register every imported dataset in the data folder and forget those that
    are gone (or belong to another data folder). Returns one sentence per
    folder that could not be read, and registers the others regardless.

    Leftovers of imports that were killed midway (hidden ``.import-*``
    folders whose process is gone) are removed first."""
    clean_staging()
    problems = []
    found: dict[str, Path] = {}
    root = imported_root()
    try:
        folders = sorted(root.iterdir()) if root.is_dir() else []
    except OSError as error:  # an unreadable data folder must not stop the built-in datasets
        folders = []
        problems.append(f"The folder {root} cannot be read ({error}); imported datasets are not listed.")
    if folders:
        for folder in folders:
            if not _valid_folder(folder):
                continue
            try:
                info = info_from_folder(folder)
            except (OSError, ValueError, KeyError, TypeError) as error:
                problems.append(f"The imported dataset in {folder} cannot be read ({error}); delete the folder.")
                continue
            if info.name != folder.name:
                problems.append(f"The folder {folder} holds a manifest for {info.name!r}; rename one to match.")
                continue
            found[folder.name] = folder
    for name, folder in list(_REGISTERED.items()):
        if found.get(name) != folder:
            forget(name)
    for name, folder in found.items():
        if name in _REGISTERED:
            continue
        if name in DATASETS.names():
            problems.append(f"The imported dataset {name!r} has the name of a built-in dataset; rename its folder.")
            continue
        register_folder(folder)
    return problems


def imported_names() -> list[str]:
    """The imported datasets this process knows."""
    return sorted(_REGISTERED)
