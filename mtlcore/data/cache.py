"""Build a dataset's tensors once, keep them in the data folder's cache.

Decoding 60 000 MNIST pictures or a few thousand JPEG faces takes seconds to
minutes; a class that trains twenty runs on one dataset should pay that once.
The key holds everything the tensors depend on -- dataset, seed, options and
a fingerprint of the source files -- so a changed option or a replaced file
builds afresh instead of returning stale tensors.

Files are written to a temporary name and renamed (atomic on one file
system), so a worker killed mid-write never leaves a half file that a later
run would read; an unreadable cache file is rebuilt, never trusted.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from .base import MTLData, Split, TaskSpec
from .folders import cache_root

FORMAT = 1  # bump when the layout of a cache file changes


def fingerprint(paths: Iterable[Path]) -> list[list[Any]]:
    """Name, size and modification time of each existing path: cheap, and
    changes whenever a file is replaced."""
    result = []
    for path in sorted(Path(p) for p in paths):
        try:
            stat = path.stat()
        except OSError:
            continue
        result.append([str(path), stat.st_size, stat.st_mtime_ns])
    return result


def cache_path(name: str, key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps([FORMAT, key], sort_keys=True, default=str).encode()).hexdigest()[:20]
    return cache_root() / f"{name}-{digest}.pt"


def cached_build(name: str, key: dict[str, Any], build: Callable[[], MTLData]) -> MTLData:
    """``build()``'s result, read from the cache when an identical build was saved."""
    path = cache_path(name, key)
    if path.is_file():
        try:
            # weights_only: the file holds tensors, numbers and text only, and
            # loading anything else from a shared folder could run its code.
            return _from_payload(torch.load(path, map_location="cpu", weights_only=True))
        except Exception:
            path.unlink(missing_ok=True)  # unreadable or from an older layout: rebuild
    data = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        try:
            torch.save(_to_payload(data), tmp)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError:
        pass  # a read-only data folder: the dataset still works, only uncached
    return data


def _to_payload(data: MTLData) -> dict[str, Any]:
    return {
        "name": data.name,
        "input_kind": data.input_kind,
        "tasks": [t.as_dict() for t in data.tasks.values()],
        "splits": {n: {"x": s.x, "y": s.y} for n, s in data.splits().items()},
        "target_stats": {t: [m, s] for t, (m, s) in data.target_stats.items()},
    }


def _from_payload(payload: dict[str, Any]) -> MTLData:
    tasks = {
        d["name"]: TaskSpec(d["name"], d["kind"], d["num_classes"], tuple(d["classes"]), d["unit"], d["description"])
        for d in payload["tasks"]
    }
    splits = {n: Split(v["x"], dict(v["y"])) for n, v in payload["splits"].items()}
    stats = {t: (float(v[0]), float(v[1])) for t, v in payload["target_stats"].items()}
    return MTLData(payload["name"], tasks, splits["train"], splits["val"], splits["test"],
                   payload["input_kind"], stats)
