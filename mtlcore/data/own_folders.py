"""Where an imported dataset lives: its hidden staging folder, its publication, its owner, its removal.

``own_import`` unpacks and checks an upload inside a staging folder made
here (``staging``); ``publish`` renames it into place in one atomic step on
one file system. A killed import's staging folder, and a deletion cut short,
are removed at the next start (``clean_staging``). The manifest records who
imported a dataset (the display name and the hash of their browser key), so
that only they, the teacher or the machine's user may delete it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable

from .folders import imported_root
from .own_labels import DataImportError

STAGING_PREFIX = ".import-"  # hidden work folders inside MTL_HOME/datasets: .import-<pid>-<random>
TRASH_PREFIX = ".deleted-"  # a deleted dataset between its rename and its removal
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MANIFEST = "manifest.json"


def staging() -> Path:
    """A hidden folder next to the final one, so the last step is a rename on one file system.

    Its name holds this process's id, so that ``clean_staging`` can tell the
    work of a live import from what a killed one left behind."""
    root = imported_root()
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=root))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, only whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process: assume it is working
    return True


def clean_staging() -> list[str]:
    """Remove the work folders of imports whose process is gone (killed
    mid-import) and deleted datasets whose removal was cut short; return
    their names. A folder of a live import is left alone."""
    root = imported_root()
    removed = []
    try:
        entries = list(root.iterdir()) if root.is_dir() else []
    except OSError:
        return removed
    for entry in entries:
        if entry.name.startswith(STAGING_PREFIX):
            pid = entry.name[len(STAGING_PREFIX):].split("-", 1)[0]
            # A folder from before names held the process id (".import-abc123") is nobody's: leftover.
            if pid.isdigit() and int(pid) > 0 and _alive(int(pid)):
                continue  # an import still at work, in this process (a page's thread) or another
        elif not entry.name.startswith(TRASH_PREFIX):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry.name)
    return removed


def publish(staged: Path, name: str, manifest: dict) -> Path:
    (staged / MANIFEST).write_text(json.dumps(manifest, indent=2))
    final = imported_root() / name
    try:
        os.rename(staged, final)  # atomic; fails if someone took the name meanwhile
    except OSError:
        raise DataImportError(f"A dataset called {name!r} already exists; choose another name.") from None
    from .own import register_folder  # imported here: own.py imports this module's constants

    register_folder(final)
    return final


def manifest(name: str, kind: str, rows: int, tasks: list[dict], description: str, **extra) -> dict:
    return {
        "format": 1,
        "name": name,
        "kind": kind,
        "id": uuid.uuid4().hex,  # tells cached tensors of a deleted and re-imported name apart
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "rows": rows,
        "description": description,
        "tasks": tasks,
        **extra,
    }


def owner_fields(owner) -> dict:
    """The manifest's record of who imported it: the display name and the hash of their browser key."""
    from ..owners import as_owner

    owner = as_owner(owner)
    return {"owner": owner.name, "owner_key": owner.key_hash}


def dataset_owner(name: str) -> tuple[str, str | None]:
    """(display name, key hash or None) of whoever imported ``name``; a dataset from before owners: nobody's key."""
    from ..owners import MACHINE_NAME

    try:
        manifest = json.loads((imported_root() / name / MANIFEST).read_text())
    except (OSError, ValueError):
        return MACHINE_NAME, None
    return str(manifest.get("owner") or MACHINE_NAME), manifest.get("owner_key") or None


def may_delete_dataset(name: str, by=None) -> bool:
    """Whether ``by`` (an Owner or a name; None: the machine's user) may delete the imported dataset ``name``."""
    from ..owners import as_owner

    return as_owner(by).may_change(*dataset_owner(name))


def remove_dataset(name: str, by, in_use: Callable[[str], list]) -> None:
    """Remove an imported dataset's folder and forget it; built-in datasets cannot be deleted.

    ``by`` is who asks (an Owner or a name; None: the machine's user). Only
    whoever imported it, the teacher or the machine's user may; and not while
    ``in_use(name)`` lists runs that use it (one DataImportError sentence each).
    Call ``mtlcore.runs.datasets.delete_dataset``, which asks the run store
    for those runs: the data package sits below the store and cannot ask it.
    """
    from ..owners import as_owner
    from .own import forget

    folder = imported_root() / name
    if not NAME.match(name or "") or not (folder / MANIFEST).is_file():
        raise DataImportError(f"There is no imported dataset called {name!r}.")
    by = as_owner(by)
    owner_name, owner_key = dataset_owner(name)
    if not by.may_change(owner_name, owner_key):
        raise DataImportError(by.refusal(f"the dataset {name!r}", owner_name, owner_key, "delete"))
    busy = in_use(name)
    if busy:
        listed = ", ".join(f"{r.id} ({r.state})" for r in busy[:5]) + (f" and {len(busy) - 5} more" if len(busy) > 5 else "")
        raise DataImportError(f"The dataset {name!r} cannot be deleted while runs use it: {listed}; stop them "
                              "or let them finish first.")
    # Rename first, then delete: other processes stop seeing it at once.
    trash = imported_root() / f"{TRASH_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
    os.rename(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)
    forget(name)
