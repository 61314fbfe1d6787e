"""The errors of background runs, each worded as one sentence for a person."""
from __future__ import annotations


class StoreError(Exception):
    """The run store cannot do what was asked (unwritable folder, unknown run, bad checkpoint)."""


class QueueFullError(StoreError):
    """A person already has as many runs waiting or training as the cap allows."""


class NotOwnerError(PermissionError):
    """Someone tried to stop a run that belongs to another person."""


class StoreUnwritable(StoreError):
    """The data folder or its database cannot be written (read-only folder or disk, disk full)."""


class StoreDamaged(StoreError):
    """The database file cannot be read as an MTL Lab store (damaged page, emptied or lost journal)."""


class ClaimLost(StoreError):
    """A worker wrote for a run it no longer holds: its claim was taken away (fencing).

    A worker paused for longer than the heartbeat timeout (SIGSTOP, a laptop
    lid, a swap storm) finds on waking that its runs were marked
    ``interrupted`` meanwhile, or deleted, or rolled back. Each write names
    the claim it was given when it took the run, and the store refuses a
    write whose claim is no longer the run's: the worker stops that run at
    once and leaves it as the store says. (Fencing tokens: M. Kleppmann, "How
    to do distributed locking", 2016; Gray and Cheriton's leases, SOSP 1989.)
    """
