"""The errors of background runs, each worded as one sentence for a person."""
from __future__ import annotations


class StoreError(Exception):
    """The run store cannot do what was asked (unwritable folder, unknown run, bad checkpoint)."""


class QueueFullError(StoreError):
    """A person already has as many runs waiting or training as the cap allows."""


class NotOwnerError(PermissionError):
    """Someone tried to stop a run that belongs to another person."""
