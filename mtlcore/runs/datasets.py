"""Imported datasets and the runs that use them: delete one only when no queued or running run needs it.

Deleting an imported dataset spans two layers: its folder belongs to the
data package (``mtlcore.data.own_import``), the runs that train on it to the
run store. The data package sits below the store (the store's runs train on
its datasets), so the check that asks the store lives here, above both.
"""
from __future__ import annotations

from ..data.own_import import remove_dataset
from .record import ACTIVE_STATES
from .store import RunStore

__all__ = ["delete_dataset", "runs_using"]


def runs_using(name: str) -> list:
    """Queued or running runs that train on dataset ``name`` (they would fail if it went away)."""
    return [r for r in RunStore().list_runs(states=ACTIVE_STATES) if r.config.dataset.name == name]


def delete_dataset(name: str, by=None) -> None:
    """Remove the imported dataset ``name`` (``own_import.remove_dataset``'s rules), unless runs use it.

    ``by`` is who asks (an Owner or a name; None: the machine's user).
    Raises DataImportError, in one sentence, for an unknown dataset, someone
    who may not delete it, or queued or running runs that use it.
    """
    remove_dataset(name, by, in_use=runs_using)
