"""Import your own data into the data folder: images with labels.csv, or a table.

Two kinds of data become datasets like the built-in ones:

- **images**: a folder, or a ``.zip`` of one, holding the pictures and a
  ``labels.csv``. One column names each picture's file (relative to the
  folder); every other column is a task -- numbers become regression,
  anything else classification, unless the user says otherwise.
- **a table**: a plain CSV whose numeric columns are the features (inputs of
  an MLP trunk) and whose chosen *target* columns are the tasks.

Nothing half-imported is ever left behind: everything is unpacked and copied
into a hidden staging folder inside ``MTL_HOME/datasets``, checked, and only
then renamed into place -- one atomic step on one file system. A zip is
refused, before anything is written, when one of its entries would unpack
outside its folder ("zip slip": a name such as ``../../.bashrc``), when it
holds links, or when it is larger than the limits below (a "zip bomb" of a
few kilobytes can claim gigabytes). A CSV, or a zip's labels.csv, is refused
from its size before it is read; its columns and rows are bounded while it
is read (``own_labels``). A killed import's staging folder is removed at the
next start (``own_folders.clean_staging``); a failed or cancelled one removes its own.
An import reports its progress and can be cancelled between files
(``progress`` and ``cancelled``; ``import_job.ImportJob`` runs it in a thread).

    >>> preview(open("pets.zip", "rb").read())          # columns and suggested kinds
    >>> import_images(open("pets.zip", "rb").read(), "pets", kinds={"age": "classification"})
    >>> import_table(open("houses.csv", "rb").read(), "houses", targets=["price", "type"])
"""
from __future__ import annotations

import io
import os
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence, Union

from ..images import ImageError, read_image
from .base import DATASETS
from .folders import imported_root
from .own_folders import (  # noqa: F401 (re-exported: the page, own.py and runs/datasets.py import them here)
    MANIFEST, NAME, STAGING_PREFIX, TRASH_PREFIX, clean_staging, dataset_owner, may_delete_dataset, owner_fields,
    publish, remove_dataset,
)
from .own_folders import manifest as build_manifest
from .own_folders import staging as new_staging
from .own_labels import (
    DataImportError, Column, Table, describe, feature_matrix, find_file_column, read_csv, safe_relative, task_target,
)

# The upload itself, zip or CSV. The one owner of this number: the server's
# upload limit (.streamlit/config.toml, server.maxUploadSize) must say the
# same, and tests/test_own_data.py checks that it does.
MAX_UPLOAD_MB = 50
MAX_ARCHIVE_BYTES = MAX_UPLOAD_MB * 2**20
MAX_CSV_BYTES = MAX_ARCHIVE_BYTES  # a CSV, or the labels.csv inside a zip once unpacked
MAX_UNPACKED_BYTES = 1 * 2**30  # all files of a zip once unpacked
MAX_FILES = 100_000
LABELS = "labels.csv"
TABLE = "data.csv"
IGNORE = "ignore"  # a kind meaning "leave this column out"
SKIPPED = ("__MACOSX",)  # macOS's resource forks, added to every zip it makes

Source = Union[bytes, bytearray, str, os.PathLike]
Progress = Callable[[float, str], None]  # progress(fraction done, what is being done)


class ImportCancelled(DataImportError):
    """The user cancelled the import; nothing of it was kept."""


class _Steps:
    """Reports an import's progress and stops it at the next step once cancelled.

    ``part(start, end)`` maps a stage's own 0..1 onto its share of the whole,
    so each stage counts its files without knowing the others.
    """

    def __init__(self, name: str, progress: Progress | None, cancelled: Callable[[], bool] | None,
                 start: float = 0.0, end: float = 1.0):
        self.name, self.progress, self.cancelled, self.start, self.end = name, progress, cancelled, start, end

    def __call__(self, fraction: float, message: str) -> None:
        if self.cancelled is not None and self.cancelled():
            raise ImportCancelled(f"The import of {self.name!r} was cancelled; nothing of it was kept.")
        if self.progress is not None:
            self.progress(self.start + (self.end - self.start) * min(max(fraction, 0.0), 1.0), message)

    def part(self, start: float, end: float) -> "_Steps":
        width = self.end - self.start
        return _Steps(self.name, self.progress, self.cancelled, self.start + width * start, self.start + width * end)


@dataclass(frozen=True)
class Preview:
    """What an upload holds, for the user to confirm before importing."""

    kind: str  # "images" or "table"
    rows: int
    columns: tuple[Column, ...]  # every column except the file column
    file_column: str = ""  # images only


# ----- names -----------------------------------------------------------------

def check_name(name: str) -> None:
    """A new dataset's name: short, lower-case, and not taken."""
    if not NAME.match(name or ""):
        raise DataImportError(
            f"The dataset name {name!r} is not accepted; use 1 to 40 lower-case letters, digits, '-' or '_', "
            "starting with a letter or digit."
        )
    if name in DATASETS or (imported_root() / name).exists():
        raise DataImportError(f"A dataset called {name!r} already exists; choose another name or delete it first.")


# ----- reading sources ---------------------------------------------------------

def _size(n: int) -> str:
    """A byte count for a sentence: 3 MB, or 12 KB below a megabyte."""
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{max(1, round(n / 1024))} KB"


def _read_source(source: Source, what: str) -> bytes:
    """The bytes of a CSV, refused before reading when larger than the limit."""
    if isinstance(source, (bytes, bytearray)):
        size = len(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise DataImportError(f"There is no file at {str(path)!r}; give the path of {what}.")
        size = path.stat().st_size
    if size > MAX_CSV_BYTES:
        raise DataImportError(f"The CSV file is {_size(size)}; the limit is {_size(MAX_CSV_BYTES)}, "
                              "so use a sample of its rows.")
    return bytes(source) if isinstance(source, (bytes, bytearray)) else path.read_bytes()


def _is_zip(source: Source) -> bool:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source[:4]) == b"PK\x03\x04" or bytes(source[:4]) == b"PK\x05\x06"
    path = Path(source)
    return path.is_file() and zipfile.is_zipfile(path)


def _open_zip(source: Source) -> zipfile.ZipFile:
    size = len(source) if isinstance(source, (bytes, bytearray)) else Path(source).stat().st_size
    if size > MAX_ARCHIVE_BYTES:
        raise DataImportError(
            f"The zip file is {size / 2**20:.0f} MB; the limit is {MAX_ARCHIVE_BYTES / 2**20:.0f} MB. "
            "Use fewer or smaller images."
        )
    try:
        return zipfile.ZipFile(io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray)) else source)
    except (zipfile.BadZipFile, OSError) as error:
        raise DataImportError(f"The upload is not a readable zip file ({error}).") from None


def _members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The zip's entries, after refusing anything unsafe or too large."""
    infos = [i for i in archive.infolist() if i.filename.split("/")[0] not in SKIPPED]
    if len(infos) > MAX_FILES:
        raise DataImportError(f"The zip file holds {len(infos)} files; the limit is {MAX_FILES}.")
    total = sum(i.file_size for i in infos)
    if total > MAX_UNPACKED_BYTES:
        raise DataImportError(
            f"The zip file unpacks to {total / 2**20:.0f} MB; the limit is {MAX_UNPACKED_BYTES / 2**20:.0f} MB, "
            "so it is refused."
        )
    for info in infos:
        if not safe_relative(info.filename):
            raise DataImportError(
                f"The zip file holds {info.filename!r}, which would unpack outside its folder; the zip is refused."
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DataImportError(f"The zip file holds a link, {info.filename!r}; links are refused.")
    return infos


def _unzip(archive: zipfile.ZipFile, dest: Path, step: _Steps | None = None) -> None:
    """Unpack safely: every entry checked first, and no more bytes written
    than the entries declare (a lying header cannot fill the disk)."""
    infos = _members(archive)
    budget = MAX_UNPACKED_BYTES
    root = dest.resolve()
    for number, info in enumerate(infos):
        if step is not None:
            step(number / len(infos), f"Unpacking file {number + 1} of {len(infos)}")
        target = (dest / info.filename).resolve()
        if root not in target.parents and target != root:  # belt and braces after safe_relative
            raise DataImportError(
                f"The zip file holds {info.filename!r}, which would unpack outside its folder; the zip is refused."
            )
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with archive.open(info) as src, open(target, "wb") as out:
            while chunk := src.read(1 << 20):
                written += len(chunk)
                if written > info.file_size or written > budget:
                    raise DataImportError(
                        f"The zip entry {info.filename!r} unpacks to more than it declares; the zip is refused."
                    )
                out.write(chunk)
        budget -= written


def _labels_folder(unpacked: Path) -> Path:
    """The folder holding labels.csv: the zip's top, or its single top folder
    (what zipping a folder produces)."""
    if (unpacked / LABELS).is_file():
        return unpacked
    tops = [p for p in unpacked.iterdir() if p.name not in SKIPPED]
    if len(tops) == 1 and tops[0].is_dir() and (tops[0] / LABELS).is_file():
        return tops[0]
    raise DataImportError(
        f"The zip file has no {LABELS} at its top level (nor inside a single top folder); put {LABELS} "
        "next to the images."
    )


def _read_labels_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The labels.csv of a zip, refused from its declared size before unpacking;
    a header that lies about the size cannot make it read more."""
    if info.file_size > MAX_CSV_BYTES:
        raise DataImportError(f"The zip's {LABELS} unpacks to {_size(info.file_size)}; the limit is "
                              f"{_size(MAX_CSV_BYTES)}, so use fewer rows.")
    with archive.open(info) as f:
        data = f.read(MAX_CSV_BYTES + 1)
    if len(data) > info.file_size:
        raise DataImportError(f"The zip entry {info.filename!r} unpacks to more than it declares; the zip is refused.")
    return data


def _labels_from_zip(archive: zipfile.ZipFile) -> bytes:
    infos = _members(archive)
    names = {i.filename: i for i in infos}
    if LABELS in names:
        return _read_labels_entry(archive, names[LABELS])
    tops = {i.filename.split("/")[0] for i in infos}
    if len(tops) == 1 and f"{next(iter(tops))}/{LABELS}" in names:
        return _read_labels_entry(archive, names[f"{next(iter(tops))}/{LABELS}"])
    raise DataImportError(
        f"The zip file has no {LABELS} at its top level (nor inside a single top folder); put {LABELS} "
        "next to the images."
    )


# ----- preview -----------------------------------------------------------------

def preview(source: Source) -> Preview:
    """The columns of an upload (zip, folder or CSV) with their suggested kinds.

    Reads only the CSV; nothing is written.
    """
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        table = read_csv(_read_source(Path(source) / LABELS, f"a folder's {LABELS}"), LABELS)
        return _image_preview(table)
    if _is_zip(source):
        with _open_zip(source) as archive:
            return _image_preview(read_csv(_labels_from_zip(archive), LABELS))
    table = read_csv(_read_source(source, "a CSV file"), "The CSV file")
    return Preview("table", len(table.rows), tuple(describe(table, c) for c in table.header))


def _image_preview(table: Table) -> Preview:
    file_column = find_file_column(table)
    columns = tuple(describe(table, c) for c in table.header if c != file_column)
    return Preview("images", len(table.rows), columns, file_column)


# ----- import ------------------------------------------------------------------

def _kinds(table: Table, columns: Sequence[str], kinds: Mapping[str, str] | None) -> dict[str, str]:
    """Each column's kind: the user's choice, else the suggestion."""
    kinds = dict(kinds or {})
    unknown = sorted(set(kinds) - set(table.header))
    if unknown:
        raise DataImportError(
            f"{table.source} has no column {unknown[0]!r}; its columns are: {', '.join(table.header)}."
        )
    return {c: kinds.get(c) or describe(table, c).suggested for c in columns}


def _tasks(table: Table, kinds: Mapping[str, str]) -> tuple[list[dict], dict]:
    chosen = {c: k for c, k in kinds.items() if k != IGNORE}
    if not chosen:
        raise DataImportError(f"{table.source} has no task columns; keep at least one column as a task.")
    tasks, targets = [], {}
    for column, kind in chosen.items():
        spec, values = task_target(table, column, kind)
        tasks.append(spec)
        targets[column] = values
    return tasks, targets


def _check_images(base: Path, table: Table, file_column: str, step: _Steps | None = None) -> list[str]:
    """The listed files, each checked to exist inside ``base`` and to open."""
    files = table.values(file_column)
    root = base.resolve()
    missing, broken = [], []
    for number, name in enumerate(files, start=2):
        if step is not None:
            step((number - 2) / len(files), f"Checking image {number - 1} of {len(files)}")
        if not safe_relative(name) or root not in (base / name).resolve().parents:
            raise DataImportError(
                f"{LABELS} row {number} names {name!r}, which is outside the folder; name each file relative "
                f"to the folder that holds {LABELS}."
            )
        path = base / name
        if not path.is_file():
            missing.append(name)
            continue
        try:
            read_image(path)
        except ImageError as error:
            broken.append(f"{name!r} ({error})")
    if missing:
        raise DataImportError(
            f"{LABELS} names {len(missing)} file{'s' if len(missing) > 1 else ''} that "
            f"{'are' if len(missing) > 1 else 'is'} not in the folder, e.g. {missing[0]!r}; add "
            f"{'them' if len(missing) > 1 else 'it'} or remove the rows."
        )
    if broken:
        raise DataImportError(
            f"{len(broken)} image{'s' if len(broken) > 1 else ''} cannot be opened, e.g. {broken[0]}; "
            "replace them with PNG or JPEG files or remove their rows."
        )
    return files


def import_images(source: Source, name: str, kinds: Mapping[str, str] | None = None, image_size: int = 32,
                  description: str = "", owner=None, progress: Progress | None = None,
                  cancelled: Callable[[], bool] | None = None) -> Path:
    """Import a folder or zip of images with labels.csv as dataset ``name``.

    ``kinds`` overrides a column's kind: "classification", "regression" or
    "ignore". ``owner`` (an ``mtlcore.owners.Owner`` or a name; None: the
    machine's user) is who may delete it. ``progress(fraction, message)`` is
    told how far it got; once ``cancelled()`` is true it stops at the next
    file with ``ImportCancelled`` (see ``import_job.py`` for both). Returns
    the dataset's folder; the dataset is registered at once.
    """
    from .own import check_image_size

    check_name(name)
    check_image_size(image_size)
    steps = _Steps(name, progress, cancelled)
    staging = new_staging()
    try:
        if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
            base = Path(source)
        elif _is_zip(source):
            with _open_zip(source) as archive:
                _unzip(archive, staging / "unpacked", steps.part(0.0, 0.3))
            base = _labels_folder(staging / "unpacked")
        else:
            raise DataImportError("Give a folder or a .zip file holding the images and labels.csv.")
        labels = base / LABELS
        if not labels.is_file():
            raise DataImportError(f"The folder {str(base)!r} has no {LABELS}; put {LABELS} next to the images.")
        steps(0.3, f"Reading {LABELS}")
        table = read_csv(_read_source(labels, LABELS), LABELS)
        file_column = find_file_column(table)
        columns = [c for c in table.header if c != file_column]
        if not columns:
            raise DataImportError(f"{LABELS} has only the file column; add at least one column of labels.")
        tasks, _ = _tasks(table, _kinds(table, columns, kinds))
        files = _check_images(base, table, file_column, steps.part(0.35, 0.8))

        dataset = staging / "dataset"
        (dataset / "images").mkdir(parents=True)
        distinct = sorted(set(files))
        for number, name_in_csv in enumerate(distinct):
            steps(0.8 + 0.2 * number / len(distinct), f"Copying image {number + 1} of {len(distinct)}")
            target = dataset / "images" / name_in_csv
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(base / name_in_csv, target)
        shutil.copyfile(labels, dataset / LABELS)
        manifest = build_manifest(name, "images", len(table.rows), tasks,
                             description or f"Your images: {len(table.rows)} pictures.",
                             file_column=file_column, image_size=image_size, **owner_fields(owner))
        return publish(dataset, name, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def import_table(source: Source, name: str, targets: Sequence[str], kinds: Mapping[str, str] | None = None,
                 description: str = "", owner=None, progress: Progress | None = None,
                 cancelled: Callable[[], bool] | None = None) -> Path:
    """Import a CSV as dataset ``name``: ``targets`` are the tasks, the other
    columns (except those whose kind is "ignore") the numeric features;
    ``owner``, ``progress`` and ``cancelled`` as in ``import_images``."""
    check_name(name)
    steps = _Steps(name, progress, cancelled)
    steps(0.0, "Reading the CSV file")
    table = read_csv(_read_source(source, "a CSV file"), "The CSV file")
    if not targets:
        raise DataImportError("Choose at least one target column; the targets are the tasks to learn.")
    unknown = [t for t in targets if t not in table.header]
    if unknown:
        raise DataImportError(f"The CSV file has no column {unknown[0]!r}; its columns are: {', '.join(table.header)}.")
    steps(0.3, "Checking the target columns")
    all_kinds = _kinds(table, table.header, kinds)
    tasks, _ = _tasks(table, {t: all_kinds[t] for t in targets if all_kinds[t] != IGNORE})
    features = [c for c in table.header if c not in targets and (kinds or {}).get(c) != IGNORE]
    steps(0.6, "Checking the feature columns")
    feature_matrix(table, features)  # refuses text in a feature column
    steps(0.9, "Saving the dataset")
    staging = new_staging()
    try:
        dataset = staging / "dataset"
        dataset.mkdir()
        (dataset / TABLE).write_bytes(_read_source(source, "a CSV file"))
        manifest = build_manifest(name, "table", len(table.rows), tasks,
                             description or f"Your table: {len(table.rows)} rows, {len(features)} features.",
                             features=features, **owner_fields(owner))
        return publish(dataset, name, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
