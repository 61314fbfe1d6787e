"""Reading a user's CSV and turning its columns into tasks, with clear refusals.

One rule decides a column's kind, and the user can override it: a column
whose every cell is a number becomes a *regression* task, anything else a
*classification* task whose classes are the distinct values. Before a column
becomes a task it must be learnable and testable:

- no empty cells (a missing label would silently become a class of its own);
- at least two different values (a task with one answer teaches nothing);
- for classification, at least two samples of every class (one sample
  cannot be in both the training and the test split).

Every refusal is a ``DataImportError`` with one sentence naming the column,
the row or the value, and what is accepted.

Reading is bounded and linear: the width, the number of rows and of cells
are checked as the CSV is read, so a 3 MB file of 100,001 columns or a
labels.csv of 4 million rows is refused after its first line or after the
last row allowed, not after minutes of work and gigabytes of memory; and a
column's values are found by its index, never by searching the header
(which made a preview grow with the square of the columns).
"""
from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

KINDS = ("classification", "regression")
MIN_ROWS = 10  # enough for 70/15/15 splits that each hold a sample
MAX_CLASSES = 1000  # more distinct texts than this is an identifier column, not a task
MAX_COLUMNS = 2000  # features of an MLP and tasks; more is not a table this lab can teach with
MAX_ROWS = 100_000  # as many as a zip may hold images (own_import.MAX_FILES)
MAX_CELLS = 5_000_000  # rows x columns: about 400 MB of Python text cells at most
# A task's name appears in flat settings (loss.weights.NAME=2) and in lists
# (tasks=a,b): these characters would be read as separators there.
FORBIDDEN_IN_NAMES = ".,="
# A cell starting with one of these is run as a formula by spreadsheets (OWASP's
# CSV-injection rule); task names reach exported CSV files, so they may not.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class DataImportError(ValueError):
    """Data that cannot be imported, with one sentence saying why and what is accepted."""


@dataclass(frozen=True)
class Column:
    """What the importer proposes for one column of the CSV."""

    name: str
    numeric: bool  # every cell is a number
    distinct: int  # number of different values
    example: str  # the first value, for display
    suggested: str  # "classification" or "regression"


@dataclass(frozen=True)
class Table:
    """A CSV read into text cells: the header and the rows, all the same width."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    source: str  # "labels.csv", for messages

    def __post_init__(self):
        # Column name -> position, once: header.index per column made previews quadratic.
        object.__setattr__(self, "_index", {name: j for j, name in enumerate(self.header)})

    def values(self, column: str) -> list[str]:
        j = self._index[column]
        return [row[j] for row in self.rows]


def read_csv(data: bytes, source: str = "The CSV file") -> Table:
    """Parse CSV bytes (UTF-8, comma, semicolon or tab separated) into a Table."""
    try:
        text = data.decode("utf-8-sig")  # -sig: Excel writes a byte-order mark first
    except UnicodeDecodeError:
        raise DataImportError(f"{source} is not UTF-8 text; save it as CSV (UTF-8).") from None
    if not text.strip():
        raise DataImportError(f"{source} is empty; it needs a header row and at least {MIN_ROWS} rows of data.")
    if "\x00" in text:
        raise DataImportError(f"{source} holds binary data, not text; save it as CSV (UTF-8).")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel  # one column, or too irregular to guess: plain commas
    lines = (row for row in csv.reader(io.StringIO(text), dialect) if any(cell.strip() for cell in row))
    try:
        first = next(lines, None)
        if first is None:
            raise DataImportError(f"{source} has no header row; it needs one, then at least {MIN_ROWS} rows of data.")
        header = tuple(cell.strip() for cell in first)
        check_size(len(header), 0, source)
        check_header(header, source)
        rows = []
        for number, row in enumerate(lines, start=2):
            if len(row) != len(header):
                raise DataImportError(
                    f"{source} row {number} has {len(row)} values but the header has {len(header)} columns; "
                    "give every row one value per column."
                )
            rows.append(tuple(cell.strip() for cell in row))
            if len(rows) > MAX_ROWS or len(rows) * len(header) > MAX_CELLS:
                check_size(len(header), len(rows), source)
    except csv.Error as error:
        raise DataImportError(f"{source} is not valid CSV ({error}).") from None
    if len(rows) < MIN_ROWS:
        raise DataImportError(f"{source} has {len(rows)} rows of data; at least {MIN_ROWS} are needed.")
    return Table(header, tuple(rows), source)


def check_size(columns: int, rows: int, source: str) -> None:
    """Refuse a table wider, longer or larger than the limits, in one sentence."""
    if columns > MAX_COLUMNS:
        raise DataImportError(f"{source} has {columns} columns; at most {MAX_COLUMNS} are accepted "
                              "(features and tasks together), so leave out the columns you do not need.")
    if rows > MAX_ROWS:
        raise DataImportError(f"{source} has more than {MAX_ROWS} rows of data; at most {MAX_ROWS} are accepted, "
                              "so use a sample of the rows.")
    if rows * columns > MAX_CELLS:
        raise DataImportError(f"{source} has more than {MAX_CELLS:,} cells ({columns} columns); at most "
                              f"{MAX_CELLS:,} are accepted, so use fewer rows or columns.")


def check_header(header: Sequence[str], source: str) -> None:
    for j, name in enumerate(header, start=1):
        if not name:
            raise DataImportError(f"{source}: column {j} has no name in the header row; name every column.")
    duplicates = [name for name, count in Counter(header).items() if count > 1]
    if duplicates:
        raise DataImportError(f"{source}: the column {duplicates[0]!r} appears twice; give each column its own name.")


def check_task_name(name: str, source: str) -> None:
    if name.startswith(FORMULA_STARTS):
        raise DataImportError(
            f"{source}: the column {name!r} cannot be a task name because it starts with {name[0]!r}, which "
            "spreadsheets run as a formula; rename it to start with a letter or digit."
        )
    bad = [c for c in FORBIDDEN_IN_NAMES if c in name]
    if bad:
        raise DataImportError(
            f"{source}: the column {name!r} cannot be a task name because it contains {bad[0]!r}; "
            f"rename it without {', '.join(repr(c) for c in FORBIDDEN_IN_NAMES)}."
        )


def is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def describe(table: Table, column: str) -> Column:
    values = table.values(column)
    filled = [v for v in values if v]
    numeric = bool(filled) and all(is_number(v) for v in filled)
    return Column(column, numeric, len(set(filled)), filled[0] if filled else "",
                  "regression" if numeric else "classification")


def sorted_classes(values: Sequence[str]) -> tuple[str, ...]:
    """Distinct values in a natural order: by number when all are numbers
    (so "2" comes before "10"), else alphabetically."""
    distinct = set(values)
    if all(is_number(v) for v in distinct):
        return tuple(sorted(distinct, key=float))
    return tuple(sorted(distinct))


def task_target(table: Table, column: str, kind: str) -> tuple[dict, np.ndarray]:
    """Check one column as a task of ``kind``; return its description and targets.

    The description is ``{"name", "kind", "classes"}`` (what the manifest
    stores); targets are class indices (int64) or values (float32).
    """
    source = table.source
    if kind not in KINDS:
        raise DataImportError(f"The kind of {column!r} must be classification or regression, got {kind!r}.")
    check_task_name(column, source)
    values = table.values(column)
    for number, value in enumerate(values, start=2):
        if not value:
            raise DataImportError(
                f"{source}: the column {column!r} is empty in row {number}; fill every cell of a task column."
            )
    distinct = set(values)
    if len(distinct) < 2:
        raise DataImportError(
            f"{source}: the task {column!r} has only one value ({values[0]!r}) in every row; "
            "a task needs at least two different values."
        )
    if kind == "regression":
        for number, value in enumerate(values, start=2):
            if not is_number(value):
                raise DataImportError(
                    f"{source}: the column {column!r} holds {value!r} in row {number}, which is not a number, "
                    "so it can only be a classification task."
                )
        return {"name": column, "kind": kind, "classes": []}, np.array([float(v) for v in values], dtype=np.float32)
    if len(distinct) > MAX_CLASSES:
        raise DataImportError(
            f"{source}: the column {column!r} has {len(distinct)} different values, more than the "
            f"{MAX_CLASSES} classes a task may have; make it a regression task or leave it out."
        )
    counts = Counter(values)
    rare = sorted((c for c, n in counts.items() if n < 2), key=str)
    if rare:
        raise DataImportError(
            f"{source}: in the task {column!r} the class {rare[0]!r} has only 1 sample; every class needs at "
            "least 2 (add samples, merge the class into another or remove its rows)."
        )
    classes = sorted_classes(values)
    index = {c: i for i, c in enumerate(classes)}
    return {"name": column, "kind": kind, "classes": list(classes)}, np.array([index[v] for v in values], dtype=np.int64)


def feature_matrix(table: Table, columns: Sequence[str]) -> np.ndarray:
    """The numeric feature columns as an N x D float32 array; text is refused."""
    if not columns:
        raise DataImportError(f"{table.source} has no feature columns left once the targets are taken; "
                              "a table needs at least one numeric feature column.")
    out = np.empty((len(table.rows), len(columns)), dtype=np.float32)
    for j, column in enumerate(columns):
        for i, value in enumerate(table.values(column)):
            if not is_number(value):
                raise DataImportError(
                    f"{table.source}: the feature column {column!r} holds {value!r} in row {i + 2}, which is not "
                    "a number; feature columns must be numbers -- make it a target or leave it out."
                )
            out[i, j] = float(value)
    return out


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
FILE_COLUMN_NAMES = ("file", "filename", "file_name", "image", "image_file", "path", "img")


def find_file_column(table: Table) -> str:
    """The column naming the image files: one called file, filename, image,
    path... or else the first whose every value ends like an image file."""
    for name in table.header:
        if name.lower() in FILE_COLUMN_NAMES:
            return name
    for name in table.header:
        values = table.values(name)
        if all(v.lower().endswith(IMAGE_EXTENSIONS) for v in values):
            return name
    raise DataImportError(
        f"{table.source} has no column naming the image files; add a column called 'file' holding each "
        "image's file name (e.g. cat_01.png), relative to the folder that holds labels.csv."
    )


SAFE_RELATIVE = re.compile(r"^(?![\\/])(?![A-Za-z]:)")


def safe_relative(path_text: str) -> bool:
    """True for a relative path that stays inside its folder (no '..', no drive, no leading slash)."""
    parts = re.split(r"[\\/]+", path_text)
    return bool(path_text) and bool(SAFE_RELATIVE.match(path_text)) and ".." not in parts
