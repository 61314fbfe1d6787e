"""Looking at studies changes nothing, and a list of studies is read in one query.

The Studies page polls ``get`` and ``list`` every few seconds for everyone
in class: a read that writes would take the store's write lock on every
poll (and fail in a read-only data folder), and a list that asks once per
study would cost a query per study and member. Tests play the worker by
writing each run's ending; nothing trains.
"""
import sqlite3

import pytest

from mtlcore import ExperimentConfig
from mtlcore.runs import Runner, RunStore, database
from mtlcore.studies import StudySpec, StudyStore, default_base


@pytest.fixture
def runner(tmp_path):
    return Runner(RunStore(tmp_path / "home"), max_workers=0, queue_cap_per_owner=100)


def small_study() -> StudySpec:
    return StudySpec("stl-vs-mtl", ExperimentConfig.from_flat({"tasks": "shape,color", "device": "cpu"},
                                                               default_base("stl-vs-mtl")), seeds=1)


def finish_all(store: RunStore, study_id: str) -> None:
    """End every run of the study as a worker would (same test value for each task)."""
    for run in store.list_runs(study_id=study_id):
        tasks = {t: {"metric": "accuracy", "higher_is_better": True} for t in run.config.tasks}
        store.finish_run(run.id, "finished", "Finished.", {"test": {t: {"accuracy": 0.5} for t in tasks},
                                                           "tasks": tasks})


def stored_state(store: RunStore, study_id: str) -> str:
    with sqlite3.connect(store.db_path) as conn:
        return conn.execute("SELECT state FROM studies WHERE id = ?", (study_id,)).fetchone()[0]


def test_a_study_whose_runs_all_ended_reads_as_finished_without_writing_to_the_store(runner, monkeypatch):
    studies = StudyStore(runner.store)
    record = studies.start(small_study(), runner, owner="alice")
    finish_all(runner.store, record.id)

    # Opened read-only (as a read-only data folder is): any write would raise.
    monkeypatch.setattr(database, "READ_ONLY", {runner.store.db_path})
    seen = studies.get(record.id)
    assert seen.state == "finished" and seen.progress_text == "3 of 3 runs done"
    assert seen.finished_at == max(r.finished_at for r in runner.store.list_runs(study_id=record.id))
    assert [s.id for s in studies.list(states=("finished",))] == [record.id]
    assert studies.list(states=("running",)) == []
    assert stored_state(runner.store, record.id) == "running"  # looking changed nothing

    # Moving studies on (the worker's hook, the page's advance) records the ending.
    monkeypatch.setattr(database, "READ_ONLY", set())
    assert studies.advance_all(runner) == 0
    assert stored_state(runner.store, record.id) == "finished"
    assert studies.get(record.id).state == "finished"


def test_a_list_of_studies_with_their_members_is_one_query(runner, monkeypatch):
    studies = StudyStore(runner.store)
    started = [studies.start(small_study(), runner, owner=name) for name in ("alice", "bob", "carol")]
    statements: list[str] = []
    connect = database.connect

    def traced(path):
        conn = connect(path)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(database, "connect", traced)
    listed = studies.list()
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1, selects
    assert [s.id for s in listed] == [s.id for s in reversed(started)]  # newest first
    assert [s.total for s in listed] == [3, 3, 3] and all(s.state == "running" for s in listed)
    assert [s.id for s in studies.list(owner="bob")] == [started[1].id]
