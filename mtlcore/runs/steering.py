"""Live steering in the store: the changes people ask of a running run, and when the worker made them.

The page never trains (DESIGN.md): a slider moved during a run writes a
*request* into the ``steering`` table; the run's worker reads new requests
between two steps (``SteeringCallback``, mtlcore/runs/steering_callback.py),
applies them from its next step and writes back the step at which each took
effect. The same rows are then the run's steering history: the markers on
every curve, the ``steering`` list of its summary, Compare's notes.

    >>> steer(store, run_id, "loss.weights.shape", 3.0, by=alice)   # from the next step on
    >>> pause(store, run_id, by=alice); resume(store, run_id, by=alice)
    >>> [(e.key, e.value, e.step) for e in events(store, run_id)]

Keys: ``loss.weights.<task>`` (a task's slider weight), ``optim.lr`` (the
learning rate), ``pause`` and ``resume``; and two the system writes:
``forked_from`` (the run is a fork: ``text`` names the parent, ``value`` its
step) and ``packed`` (the worker trains it packed with ``value - 1`` others,
so its learning rate and pause cannot be steered).

Only the run's owner, the teacher or the machine's user may steer, pause or
resume a run (``Owner.may_change``, mtlcore/owners.py), as for stopping it.
Only ``weights_refusal`` imports torch (through the weighting registry it asks).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from ..owners import Owner, as_owner
from .database import reading, writing
from .errors import NotOwnerError, StoreError
from .record import RUNNING

WEIGHT_PREFIX = "loss.weights."
LR, PAUSE, RESUME, FORKED_FROM, PACKED = "optim.lr", "pause", "resume", "forked_from", "packed"
MAX_WEIGHT = 100.0  # the Train page's sliders stop at 10; beyond 100 a run is sure to diverge
MAX_LR = 10.0


@dataclass(frozen=True)
class SteeringEvent:
    """One row of the table: a request and, once the worker took it, the step from which it acts.

    ``step`` is the number of steps trained before the change: it acts from
    step ``step + 1`` on. None while the worker has not picked it up.
    ``note`` says why it was refused (then ``step`` is where it was seen).
    """

    run_id: str
    seq: int
    key: str
    value: float | None
    text: str
    by: str
    requested_at: float
    step: int | None
    applied_at: float | None
    note: str

    @property
    def applied(self) -> bool:
        return self.step is not None and not self.note

    @property
    def label(self) -> str:
        """Short text for a chart's marker: "shape ×3", "lr 0.001", "paused", "fork of <id>"."""
        if self.key.startswith(WEIGHT_PREFIX):
            return f"{self.key[len(WEIGHT_PREFIX):]} ×{self.value:g}"
        if self.key == LR:
            return f"lr {self.value:g}"
        if self.key == PAUSE:
            return "paused"
        if self.key == RESUME:
            return "resumed"
        if self.key == FORKED_FROM:
            return f"fork of {self.text}"
        return self.key

    def as_dict(self) -> dict[str, Any]:
        """What a run's summary keeps under ``"steering"`` (plain types)."""
        return {"step": self.step, "key": self.key, "value": self.value, "text": self.text, "by": self.by,
                "requested_at": self.requested_at, "applied_at": self.applied_at, "note": self.note}


# ----- what may be steered ----------------------------------------------------------------------

def weights_refusal(config) -> str | None:
    """Why this run's loss weights cannot change while it trains (the weighting method's capability), or None."""
    from ..weighting import WEIGHTINGS  # the registry: the method says whether it can be steered

    method = WEIGHTINGS.get(config.weighting.method)
    if getattr(method, "steerable_weights", False):
        return None
    return (f"{config.weighting.method} chooses the task weights itself as it trains (a change would be undone), "
            "so the sliders act only when a run starts; choose static (or rlw) to steer them live.")


def packed_refusal(members: int) -> str:
    return (f"This run trains packed with {members - 1} other run{'s' if members != 2 else ''} as one stacked "
            "model, with one optimiser and one step loop for all: its loss weights can be steered, but not "
            "its learning rate, and it cannot be paused alone.")


def check_request(config, key: str, value: float | None) -> None:
    """ValueError in one sentence when ``key``/``value`` is not a change this run can take."""
    if key.startswith(WEIGHT_PREFIX):
        task = key[len(WEIGHT_PREFIX):]
        if task not in config.tasks:
            raise ValueError(f"This run trains {', '.join(config.tasks)}; it has no task {task!r} to weigh.")
        refusal = weights_refusal(config)
        if refusal:
            raise ValueError(refusal)
        if value is None or not math.isfinite(value) or not 0 <= value <= MAX_WEIGHT:
            raise ValueError(f"A loss weight is a number from 0 to {MAX_WEIGHT:g}, not {value!r}.")
    elif key == LR:
        if value is None or not math.isfinite(value) or not 0 < value <= MAX_LR:
            raise ValueError(f"A learning rate is a number above 0 and at most {MAX_LR:g}, not {value!r}.")
    elif key not in (PAUSE, RESUME):
        raise ValueError(f"A running run can be steered by loss.weights.<task>, {LR}, {PAUSE} or {RESUME}, "
                         f"not {key!r}.")


# ----- asking (pages, the command line) -----------------------------------------------------------

def steer(store, run_id: str, key: str, value: float | None = None, by: Owner | str | None = None) -> str:
    """Ask the running run to change ``key`` to ``value`` from its next step; return what happens, as a sentence.

    NotOwnerError for anyone but its owner, the teacher and the machine's
    user; ValueError for a change it cannot take; StoreError when it is not
    running.
    """
    by = as_owner(by)
    with writing(store.db_path) as conn:
        row = conn.execute("SELECT state, owner, owner_key, config FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"No run with id {run_id!r}; `python -m mtlcore runs` lists them.")
        verb = {PAUSE: "pause", RESUME: "resume"}.get(key, "steer")
        if not by.may_change(row["owner"], row["owner_key"]):
            raise NotOwnerError(by.refusal("this run", row["owner"], row["owner_key"], verb))
        if row["state"] != RUNNING:
            done = {"pause": "paused", "resume": "resumed"}.get(verb, "steered (fork it to train on with other settings)")
            raise StoreError(f"Run {run_id} is {row['state']}: only a running run can be {done}.")
        config = _config(row["config"])
        check_request(config, key, value)
        if key in (LR, PAUSE, RESUME):
            packed = conn.execute("SELECT value FROM steering WHERE run_id = ? AND key = ?",
                                  (run_id, PACKED)).fetchone()
            if packed is not None:
                raise ValueError(packed_refusal(int(packed["value"])))
        _insert(conn, run_id, key, value, "", by.name)
    if key == PAUSE:
        return f"Run {run_id} pauses after its current step; its worker holds it until you resume."
    if key == RESUME:
        return f"Run {run_id} resumes from its next step."
    return f"Run {run_id}: {key} = {value:g} from its next step."


def pause(store, run_id: str, by: Owner | str | None = None) -> str:
    return steer(store, run_id, PAUSE, None, by)


def resume(store, run_id: str, by: Owner | str | None = None) -> str:
    return steer(store, run_id, RESUME, None, by)


def record(store, run_id: str, key: str, value: float | None, text: str = "", step: int | None = 0) -> None:
    """Write a row the system itself states (``forked_from``, ``packed``), already applied at ``step``."""
    with writing(store.db_path) as conn:
        _insert(conn, run_id, key, value, text, "", step)


def _insert(conn, run_id: str, key: str, value: float | None, text: str, by: str,
            step: int | None = None) -> None:
    now = time.time()
    seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM steering WHERE run_id = ?", (run_id,)).fetchone()[0]
    conn.execute(
        "INSERT INTO steering (run_id, seq, key, value, text, by_name, requested_at, applied_step, applied_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (run_id, seq, key, value, text, by, now, step, None if step is None else now),
    )


# ----- reading --------------------------------------------------------------------------------------

def events(store, run_id: str) -> list[SteeringEvent]:
    """Every steering row of the run, in the order asked."""
    with reading(store.db_path) as conn:
        rows = conn.execute("SELECT * FROM steering WHERE run_id = ? ORDER BY seq", (run_id,)).fetchall()
    return [_event(row) for row in rows]


def applied(store, run_id: str) -> list[SteeringEvent]:
    """The changes that took effect, in order: what the markers on the run's curves show."""
    return [e for e in events(store, run_id) if e.applied]


def pending(store, run_id: str, after_seq: int = 0) -> list[SteeringEvent]:
    """Requests after ``after_seq`` that the worker has not taken yet (one indexed read: cheap to poll)."""
    with reading(store.db_path) as conn:
        rows = conn.execute("SELECT * FROM steering WHERE run_id = ? AND seq > ? AND applied_step IS NULL "
                            "ORDER BY seq", (run_id, after_seq)).fetchall()
    return [_event(row) for row in rows]


def mark_applied(store, run_id: str, seqs: list[int], step: int, notes: dict[int, str] | None = None) -> None:
    """The worker took these requests before training step ``step + 1`` (``notes``: those it refused, and why)."""
    now, notes = time.time(), notes or {}
    with writing(store.db_path) as conn:
        conn.executemany("UPDATE steering SET applied_step = ?, applied_at = ?, note = ? WHERE run_id = ? AND seq = ?",
                         [(step, now, notes.get(seq, ""), run_id, seq) for seq in seqs])


def is_paused(store, run_id: str) -> bool:
    """Whether the run's last applied pause is not followed by an applied resume (its worker holds it)."""
    state = False
    for event in applied(store, run_id):
        if event.key in (PAUSE, RESUME):
            state = event.key == PAUSE
    return state


def fork_parent(store, run_id: str) -> tuple[str, int] | None:
    """(parent id, the parent's step it started from) when the run is a fork; else None."""
    for event in events(store, run_id):
        if event.key == FORKED_FROM:
            return event.text, int(event.value or 0)
    return None


def packed_with(store, run_id: str) -> int:
    """How many runs (itself included) its worker trains packed together; 0 when it trains alone."""
    for event in events(store, run_id):
        if event.key == PACKED:
            return int(event.value or 0)
    return 0



def _event(row) -> SteeringEvent:
    return SteeringEvent(run_id=row["run_id"], seq=row["seq"], key=row["key"], value=row["value"],
                         text=row["text"] or "", by=row["by_name"] or "", requested_at=row["requested_at"],
                         step=row["applied_step"], applied_at=row["applied_at"], note=row["note"] or "")


def _config(config_json: str):
    from ..config import ExperimentConfig

    return ExperimentConfig.from_json(config_json, strict=False)


# ----- fork from here ----------------------------------------------------------------------------------

# What a fork keeps from its parent: what shapes the model, so that the parent's weights fit it.
FORK_KEEPS = ("dataset", "tasks", "model", "reg.batchnorm")


def fork_config(parent_config, changes: dict[str, Any], start_file: str):
    """The parent's config with ``changes`` (flat keys: ``optim.lr``, ``loss.weights.shape``...) that starts
    from ``start_file``; ValueError in one sentence for a change that would give another model."""
    from dataclasses import replace

    from ..config import set_key

    config = parent_config
    for key, value in changes.items():
        config = set_key(config, key, value)
    for part in FORK_KEEPS:
        if _part(config, part) != _part(parent_config, part):
            raise ValueError(f"A fork keeps its parent's model, so it cannot change {part}; it may change the "
                             "loss weights, the weighting method, the optimiser and learning rate, the epochs "
                             "and the regularisers.")
    return replace(config, train=replace(config.train, init_from=str(start_file)))


def fork(runner, parent_id: str, changes: dict[str, Any] | None = None, by: Owner | str | None = None,
         label: str | None = None) -> str:
    """Queue a new run that starts from the parent's last saved weights with ``changes``; return its id.

    The parent may be running (its checkpoint of the last finished epoch) or
    ended. The starting weights are copied into the parent's folder
    (``forks/step-<S>-<id>.pt``), so later checkpoints of the parent do not
    move the fork's start; the fork records its parent and that step
    (``forked_from``), and Compare draws its curves from there. Only the
    parent's owner, the teacher or the machine's user may fork it.
    """
    import secrets
    import shutil

    from ..checkpoint import load_checkpoint

    store = runner.store
    by = as_owner(by)
    parent = store.get_run(parent_id)
    if not by.may_change(parent.owner, parent.owner_key):
        raise NotOwnerError(by.refusal("this run", parent.owner, parent.owner_key, "fork"))
    source = store.checkpoint_path(parent_id)
    if not source.is_file():
        raise StoreError(f"Run {parent_id} has no saved weights yet (they are saved at the end of each epoch): "
                         "fork it after its first epoch.")
    try:
        step = int(load_checkpoint(source).get("step") or 0)
    except Exception as error:  # a damaged file: its own sentence
        raise StoreError(str(error)) from None
    start = store.run_dir(parent_id) / "forks" / f"step-{step}-{secrets.token_hex(4)}.pt"
    start.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, start)
    try:
        config = fork_config(parent.config, dict(changes or {}), str(start))
        name = label if label is not None else f"{parent.label or parent.id} · fork at step {step}"
        run_id = runner.submit(config, label=name, owner=by)
    except BaseException:
        start.unlink(missing_ok=True)
        raise
    record(store, run_id, FORKED_FROM, float(step), text=parent_id)
    return run_id


def _part(config, dotted: str):
    value = config
    for name in dotted.split("."):
        value = getattr(value, name)
    return value


def branch_start(store, run_id: str) -> tuple[int, int] | None:
    """Where a fork's curves start on its parent's axes: (the parent's step, its finished epochs then); None if not a fork.

    Compare draws a fork's step s at parent step + s and its epoch e at
    parent epochs + e, so the branch leaves its parent where it was forked.
    """
    parent = fork_parent(store, run_id)
    if parent is None:
        return None
    parent_id, step = parent
    try:
        epochs = store.epoch_metrics(parent_id)
    except StoreError:  # the parent was deleted: its step still places the branch
        epochs = []
    return step, sum(1 for e in epochs if int(e.get("step", 0)) <= step)
