"""Fetch a dataset's archive with a progress callback, then let torchvision check it.

torchvision downloads with its own console progress bar, which a web page
cannot show. So the archives are fetched here, from the addresses and with
the MD5 sums that torchvision's classes declare (never a hand-kept copy),
reporting ``progress(fraction, message)`` as the bytes arrive. The dataset
class is then created with ``download=True``: it finds the archive, verifies
its checksum, skips the download and unpacks it -- the same files, in the
same places, as if torchvision had fetched them itself.
"""
from __future__ import annotations

import os
import urllib.request
from pathlib import Path
from typing import Callable, Optional

Progress = Callable[[float, str], None]
CHUNK = 1 << 16
TIMEOUT_S = 30  # a machine with no network fails fast instead of hanging a page


class DownloadError(ValueError):
    """A download that failed; the message says which files to place where."""


def no_progress(fraction: float, message: str) -> None:
    """The default ``progress``: report nothing."""


def fetch_file(url: str, dest: Path, md5: Optional[str], progress: Progress, done: float = 0.0,
               share: float = 1.0) -> None:
    """Download ``url`` to ``dest`` unless a file with the right MD5 is there.

    Progress goes from ``done`` to ``done + share``, so that several files
    fill one bar. The bytes go to ``dest.part`` first and are renamed only
    when complete and verified: an interrupted download leaves no file that
    looks finished.
    """
    from torchvision.datasets.utils import USER_AGENT, check_integrity

    if dest.is_file() and check_integrity(dest, md5):
        progress(done + share, f"{dest.name} is already there")
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, open(part, "wb") as out:
            total = response.length or 0
            got = 0
            while chunk := response.read(CHUNK):
                out.write(chunk)
                got += len(chunk)
                fraction = got / total if total else 0.0
                progress(done + share * min(fraction, 1.0), f"{dest.name}: {got / 1e6:.1f} of {total / 1e6:.1f} MB")
        if not check_integrity(part, md5):
            raise OSError(f"{dest.name} arrived damaged (its MD5 checksum does not match)")
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)


def fetch_first(urls: list[str], dest: Path, md5: Optional[str], progress: Progress, done: float = 0.0,
                share: float = 1.0) -> None:
    """``fetch_file`` from the first of several mirrors that answers."""
    errors = []
    for url in urls:
        try:
            fetch_file(url, dest, md5, progress, done, share)
            return
        except Exception as error:  # URLError, timeouts, HTTP errors, bad checksum
            errors.append(f"{url}: {error}")
    raise OSError("; ".join(errors))
