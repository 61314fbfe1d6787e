"""An import running in a background thread, with its progress and a Cancel.

Checking and copying a zip of thousands of pictures takes a while; done in
a page's script thread it froze that page (and, on a small server, others)
until it finished, with no way to stop it. The Data page starts an
``ImportJob`` instead, keeps it in the session, and shows ``fraction`` and
``message`` until ``done``; Cancel sets a flag that the import checks before
every file, so it stops at once and removes its staging folder.

A thread rather than a process: the import registers the new dataset in the
app's own registry (``own.register_folder``), and it spends its time in file
I/O and PIL's decoder, which release the interpreter lock.

    >>> job = ImportJob.start(import_table, data, "houses", targets=["price"])
    >>> job.fraction, job.message, job.done, job.error
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from .own_labels import DataImportError

__all__ = ["ImportJob"]


class ImportJob:
    """One import (``import_images`` or ``import_table``) in its own thread."""

    def __init__(self, importer: Callable[..., Path], *args: Any, **kwargs: Any):
        self._importer, self._args, self._kwargs = importer, args, kwargs
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self.fraction = 0.0
        self.message = "Starting"
        self.result: Path | None = None  # the new dataset's folder, once imported
        self.error: str | None = None  # one sentence when it failed or was cancelled
        self.cancelled = False

    @classmethod
    def start(cls, importer: Callable[..., Path], *args: Any, **kwargs: Any) -> "ImportJob":
        """Make the job and start its thread."""
        return cls(importer, *args, **kwargs).begin()

    def begin(self) -> "ImportJob":
        threading.Thread(target=self._run, name="mtl-import", daemon=True).start()
        return self

    def _report(self, fraction: float, message: str) -> None:
        with self._lock:
            self.fraction, self.message = fraction, message

    def _run(self) -> None:
        try:
            result = self._importer(*self._args, progress=self._report, cancelled=self._cancel.is_set,
                                    **self._kwargs)
        except DataImportError as error:
            self.error = str(error)
            self.cancelled = self._cancel.is_set()
        except (ValueError, OSError) as error:  # e.g. an image size out of range, a full disk
            self.error = f"The import failed: {error}"
        except Exception as error:  # never a traceback on a page; the sentence says what broke
            self.error = f"The import failed unexpectedly ({type(error).__name__}: {error})."
        else:
            self.result = result
            self._report(1.0, "Imported")
        finally:
            self._finished.set()

    def cancel(self) -> None:
        """Ask the import to stop at its next file; its staging folder is removed."""
        self._cancel.set()

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the import ends (for tests and the command line); True when it did."""
        return self._finished.wait(timeout)
