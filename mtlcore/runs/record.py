"""One background run as the store describes it, and how run ids are made."""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from ..config import ExperimentConfig

# The life of a run:  queued -> running -> finished | cancelled | diverged | failed
# and, when its worker process vanished mid-run, running -> interrupted.
QUEUED, RUNNING = "queued", "running"
FINISHED, CANCELLED, DIVERGED, FAILED, INTERRUPTED = "finished", "cancelled", "diverged", "failed", "interrupted"
STATES = (QUEUED, RUNNING, FINISHED, CANCELLED, DIVERGED, FAILED, INTERRUPTED)
ACTIVE_STATES = (QUEUED, RUNNING)  # what counts against a person's queue cap
FINAL_STATES = (FINISHED, CANCELLED, DIVERGED, FAILED, INTERRUPTED)

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_run_id(now: float | None = None) -> str:
    """A short id that sorts by creation time: 8 base-36 digits of milliseconds + 4 random ones.

    e.g. ``mpa3x0k2-7fq1``. The random part keeps ids unique when many people
    press Start in the same millisecond (the store retries on the rare clash).
    """
    millis = int((time.time() if now is None else now) * 1000)
    digits = ""
    while millis:
        millis, rest = divmod(millis, 36)
        digits = _ALPHABET[rest] + digits
    suffix = "".join(secrets.choice(_ALPHABET) for _ in range(4))
    return f"{digits.rjust(8, '0')}-{suffix}"


@dataclass(frozen=True)
class RunRecord:
    """A snapshot of one run's row in the store (times are seconds since the epoch)."""

    id: str
    label: str
    owner: str
    state: str  # one of STATES
    message: str  # why it ended, or what it is doing; "" when there is nothing to say
    config: ExperimentConfig
    device: str | None  # where it trained ("cpu", "cuda", ...); None until it starts
    created_at: float
    started_at: float | None
    finished_at: float | None
    progress: float  # 0..1 of all training steps
    summary: dict[str, Any] | None  # what ``fit`` returned; None until it ends
    worker: str | None  # "host:pid" of the worker that claimed it
    study_id: str | None = None  # set when the run belongs to a study
    owner_key: str | None = None  # SHA-256 of its owner's browser key (mtlcore.owners); None: no key
    claim: str | None = None  # the token of its worker's claim while it runs (fencing: errors.ClaimLost)
    # How it packs, decided when it was queued (mtlcore.packing.grouping.packing_of); a worker claims
    # the queued runs with its lead's pack_key (RunStore.claim_pack). None: it trains alone.
    pack_key: str | None = None
    pack_batch: int | None = None  # the most runs in its pack
    pack_on_cpu: bool = False  # whether stacking its model pays on a CPU too (not for CNNs)

    @property
    def is_active(self) -> bool:
        """True while the run is waiting or training."""
        return self.state in ACTIVE_STATES

    def as_dict(self) -> dict[str, Any]:
        """Plain types for JSON (``python -m mtlcore runs --json``); the config is left out."""
        return {
            "id": self.id, "label": self.label, "owner": self.owner, "state": self.state,
            "message": self.message, "progress": self.progress, "device": self.device,
            "created_at": self.created_at, "started_at": self.started_at, "finished_at": self.finished_at,
            "worker": self.worker, "study_id": self.study_id, "summary": self.summary,
        }
