"""Nothing unbounded: ``prune`` deletes old ended runs and thins their step rows; the data folder has a size."""
import time

import pytest
import torch

from mtlcore.cli import main
from mtlcore.config import ExperimentConfig
from mtlcore.runs import RunStore, StoreError, data_folder_size, run_worker
from mtlcore.runs import run_files
from mtlcore.runs.database import writing
from mtlcore.runs.pruning import prune, thinned_steps


def tiny_config(**settings) -> ExperimentConfig:
    flat = {"dataset.name": "shapes", "dataset.n_samples": 300, "train.epochs": 1, "train.max_samples": 200,
            "train.batch_size": 4, "device": "cpu", **settings}
    return ExperimentConfig.from_flat(flat)


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "home")


@pytest.fixture(autouse=True)
def keep_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def age(store, run_id: str, days: float) -> None:
    with writing(store.db_path) as conn:
        conn.execute("UPDATE runs SET created_at = created_at - ?, finished_at = finished_at - ? WHERE id = ?",
                     (days * 86400, days * 86400, run_id))


def test_prune_deletes_old_ended_runs_only_and_says_what_it_freed(store, capsys):
    old, recent = (store.add_run(tiny_config(), label=label).id for label in ("old", "recent"))
    run_worker(store.home, idle_exit=0)
    training = store.add_run(tiny_config(), label="training").id
    waiting = store.add_run(tiny_config(), label="waiting").id
    store.claim_next("another-host:1")  # "training" starts training elsewhere; "waiting" stays queued
    for run_id in (old, waiting, training):
        age(store, run_id, 40)
    home = str(store.home)

    assert main(["prune", "--older-than", "30", "--dry-run", "--home", home]) == 0
    out = capsys.readouterr().out
    assert f"Would delete run {old} (old)" in out and "would free about" in out
    assert store.get_run(old).state == "finished" and store.run_dir(old).exists()

    size_before = data_folder_size(store.home).total
    assert main(["prune", "--older-than", "30", "--home", home]) == 0
    out = capsys.readouterr().out
    assert f"Deleted run {old} (old)" in out and "1 run(s) deleted" in out and "freed" in out
    with pytest.raises(StoreError):
        store.get_run(old)
    assert not store.run_dir(old).exists() and store.step_metrics(old) == []
    assert {r.id for r in store.list_runs()} == {recent, waiting, training}, "queued and running runs are never pruned"
    assert data_folder_size(store.home).total < size_before


def test_prune_thins_the_steps_of_ended_runs_keeping_the_first_and_last(store, capsys):
    ended = store.add_run(tiny_config(), label="ended").id
    run_worker(store.home, once=True)
    steps = [s["step"] for s in store.step_metrics(ended)]
    assert len(steps) > 20
    running = store.add_run(tiny_config()).id
    held = store.claim_next("another-host:1")
    store.append_steps(running, [{"step": i} for i in range(1, 41)], claim=held.claim)

    assert main(["prune", "--thin-steps", "--keep-steps", "10", "--home", str(store.home)]) == 0
    out = capsys.readouterr().out
    assert f"Thinned run {ended} (ended): {len(steps) - 10} step rows, 10 kept." in out

    kept = [s["step"] for s in store.step_metrics(ended)]
    assert len(kept) == 10 and kept[0] == steps[0] and kept[-1] == steps[-1]
    assert sorted(run_files.read_folder(store.run_dir(ended)).steps) == kept, "the folder's copy is thinned alike"
    assert len(store.step_metrics(running)) == 40
    assert len(store.epoch_metrics(ended)) == 1


def test_prune_without_a_choice_or_with_a_bad_age_says_so(store, capsys):
    assert main(["prune", "--home", str(store.home)]) == 2
    assert "--older-than DAYS" in capsys.readouterr().err
    assert main(["prune", "--older-than", "nan", "--home", str(store.home)]) == 2
    assert "0 or more" in capsys.readouterr().err


def test_evenly_spaced_steps():
    assert thinned_steps(list(range(1, 101)), 5) == {1, 26, 51, 75, 100}  # round(i * 99 / 4) + 1: banker's rounding at 49.5
    assert thinned_steps([3, 4], 5) == {3, 4}


def test_the_data_folder_size_counts_each_part(store):
    empty = data_folder_size(store.home)
    store.add_run(tiny_config())
    run_worker(store.home, once=True)
    size = data_folder_size(store.home)
    assert size.runs > 0 and size.database > 0 and size.total == size.database + size.runs + size.logs + size.other
    assert size.total > empty.total
    assert size.as_text().split()[1] in ("kB", "MB") and "runs" in size.as_text()
    assert data_folder_size(store.home / "nowhere").total == 0


def test_prune_keeps_runs_that_a_study_uses(store):
    from mtlcore.studies import StudyStore  # makes the studies' tables

    StudyStore(store)
    used = store.add_run(tiny_config(), label="in a study").id
    run_worker(store.home, once=True)
    age(store, used, 40)
    with writing(store.db_path) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(study_members)")]
        values = {c: None for c in columns}
        values.update(study_id="s1", position=0, run_id=used)
        for column in columns:  # fill NOT NULL columns with something of the right kind
            if values[column] is None and column not in ("run_id",):
                values[column] = 0 if column in ("position", "seed", "group_index") else ""
        conn.execute(f"INSERT INTO study_members ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                     [values[c] for c in columns])

    report = prune(store, older_than_days=30, now=time.time())

    assert report.deleted == [] and report.kept_for_studies == [used]
    assert store.get_run(used).state == "finished"
