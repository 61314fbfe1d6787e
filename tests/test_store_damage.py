"""A store never loses a run silently: damage is detected, said in one sentence, and repaired from run folders.

Each run folder keeps a copy of its row and metrics (run.json, config.json,
metrics.jsonl, summary.json, checkpoint.pt). The damage is made by hand
here: a row rolled back as a deleted -wal file leaves it, a 0-byte
database file, a page overwritten with garbage, a read-only folder.
"""
import errno
import json
import os
import sqlite3

import pytest
import torch

from mtlcore.cli import main
from mtlcore.config import ExperimentConfig
from mtlcore.runs import RunStore, StoreUnwritable, load_checkpoint, run_worker
from mtlcore.runs import database, integrity, run_files
from mtlcore.runs import worker as worker_module
from mtlcore.runs.database import writing
from mtlcore.engine import Callback


def tiny_config(**settings) -> ExperimentConfig:
    flat = {"dataset.name": "shapes", "dataset.n_samples": 300, "train.epochs": 2,
            "train.max_samples": 200, "device": "cpu", **settings}
    return ExperimentConfig.from_flat(flat)


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "home")


@pytest.fixture(autouse=True)
def keep_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def trained(store, *labels, **settings) -> list[str]:
    ids = [store.add_run(tiny_config(**settings), label=label, owner="alice").id for label in labels]
    run_worker(store.home, idle_exit=0)
    return ids


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_healthy_store_checks_clean_and_its_run_folders_hold_a_copy_of_each_run(store, capsys):
    run_id, = trained(store, "baseline")
    cancelled = store.add_run(tiny_config()).id
    store.cancel_run(cancelled)

    assert integrity.check(store.home) == [] and integrity.quick_check(store) == []
    assert cli(capsys, "check", "--home", str(store.home))[0] == 0
    files = run_files.read_folder(store.run_dir(run_id))
    assert files.row["label"] == "baseline" and files.row["state"] == "finished"
    assert ExperimentConfig.from_json(files.config_json) == store.get_run(run_id).config
    assert len(files.steps) == len(store.step_metrics(run_id)) and len(files.epochs) == 2
    assert files.summary["test"] == store.get_run(run_id).summary["test"] and files.has_checkpoint


def test_a_run_rolled_back_to_queued_is_not_trained_again_and_repair_restores_it(store, capsys):
    run_id, = trained(store, "baseline")
    before = store.get_run(run_id)
    steps = store.step_metrics(run_id)
    checkpoint = store.checkpoint_path(run_id).read_bytes()
    with writing(store.db_path) as conn:  # what a deleted -wal file leaves: the row as it was when queued
        conn.execute("UPDATE runs SET state = 'queued', started_at = NULL, finished_at = NULL, progress = 0, "
                     "summary = NULL, worker = NULL, claim = NULL WHERE id = ?", (run_id,))
        conn.execute("DELETE FROM step_metrics WHERE run_id = ?", (run_id,))
        conn.execute("DELETE FROM epoch_metrics WHERE run_id = ?", (run_id,))

    code, out, err = cli(capsys, "runs", "--home", str(store.home))
    assert code == 0 and "warning: 1 run(s) in the store are behind their own folders" in err and "repair" in err

    run_worker(store.home, once=True)  # must not train it over its own files
    set_aside = store.get_run(run_id)
    assert set_aside.state == "interrupted" and "repair" in set_aside.message
    assert store.checkpoint_path(run_id).read_bytes() == checkpoint

    code, out, err = cli(capsys, "check", "--home", str(store.home))
    assert code == 1 and "behind their own folders" in out

    assert cli(capsys, "repair", "--home", str(store.home))[0] == 0
    after = store.get_run(run_id)
    assert (after.state, after.summary["test"], after.label) == ("finished", before.summary["test"], "baseline")
    assert after.progress == 1.0
    assert store.step_metrics(run_id) == steps and len(store.epoch_metrics(run_id)) == 2
    assert integrity.check(store.home) == []


def test_a_zero_byte_store_file_next_to_run_folders_is_reported_and_rebuilt(store, capsys):
    ids = trained(store, "first", "second")
    steps = {run_id: store.step_metrics(run_id) for run_id in ids}
    for suffix in ("-wal", "-shm"):
        store.db_path.with_name(store.db_path.name + suffix).unlink(missing_ok=True)
    store.db_path.write_bytes(b"")  # truncated: SQLite would open it as a new, empty store

    code, out, err = cli(capsys, "runs", "--home", str(store.home))
    assert "2 run folder(s)" in err and "not in the store" in err and "repair" in err
    code, out, _ = cli(capsys, "check", "--home", str(store.home))
    assert code == 1 and "2 run folder(s)" in out

    code, out, _ = cli(capsys, "repair", "--home", str(store.home))
    assert code == 0 and out.count("Restored run") == 2
    for run_id, label in zip(ids, ("first", "second")):
        run = store.get_run(run_id)
        assert (run.label, run.owner, run.state) == (label, "alice", "finished")
        assert store.step_metrics(run_id) == steps[run_id]
        assert load_checkpoint(store.checkpoint_path(run_id))["epoch"] == 2
    assert integrity.check(store.home) == []


def test_a_damaged_page_gives_one_sentence_and_repair_rebuilds_from_the_folders(store, capsys):
    run_id, = trained(store, "baseline")
    with writing(store.db_path) as conn:  # many runs, so that their table spans pages that can be damaged
        conn.executemany("INSERT INTO step_metrics (run_id, step, data) VALUES (?, ?, ?)",
                         [("filler", i, "x" * 300) for i in range(400)])
    database.connect(store.db_path).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    data = bytearray(store.db_path.read_bytes())
    page = 4096
    data[page:] = os.urandom(len(data) - page)  # everything after the schema page is garbage now
    store.db_path.write_bytes(bytes(data))

    code, out, err = cli(capsys, "runs", "--home", str(store.home))
    assert code == 2 and "damaged" in err and "python -m mtlcore repair" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1

    code, out, _ = cli(capsys, "repair", "--home", str(store.home))
    assert code == 0 and "moved it aside" in out and "Restored run" in out
    assert store.get_run(run_id).state == "finished" and store.get_run(run_id).label == "baseline"
    assert list(store.home.glob("mtl.sqlite.damaged-*")), "the damaged file is kept, not deleted"


def test_a_read_only_store_can_be_listed(store, capsys, monkeypatch):
    run_id = store.add_run(tiny_config(), label="visible").id
    database.connect(store.db_path).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    os.chmod(store.home, 0o555)
    os.chmod(store.db_path, 0o444)
    if os.geteuid() == 0:  # root writes anywhere: make the folder look read-only as it would to anyone else
        real_access = os.access
        monkeypatch.setattr(database.os, "access",
                            lambda path, mode: False if mode == os.W_OK else real_access(path, mode))
    try:
        code, out, err = cli(capsys, "runs", "--home", str(store.home))
        assert code == 0 and run_id in out and "visible" in out
        with pytest.raises(StoreUnwritable, match="not writable"):
            RunStore(store.home).add_run(tiny_config())
    finally:
        database.READ_ONLY.discard(store.db_path)
        os.chmod(store.home, 0o755)
        os.chmod(store.db_path, 0o644)


def test_a_run_whose_folder_turns_read_only_fails_with_one_sentence(store, monkeypatch, capfd):
    run_id = store.add_run(tiny_config(), label="doomed").id

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(run_files, "append_metrics", read_only)
    monkeypatch.setattr(torch, "save", read_only)

    run_worker(store.home, once=True)

    run = store.get_run(run_id)
    assert run.state == "failed"
    assert run.message.startswith("Could not write") and "read-only" in run.message and "\n" not in run.message
    assert "Traceback" not in capfd.readouterr().err


def test_a_worker_whose_database_turns_read_only_stops_with_one_sentence(store, monkeypatch, capfd):
    store.add_run(tiny_config(), label="doomed")

    class TurnReadOnly(Callback):
        def on_step_end(self, run, logs):
            database.READ_ONLY.add(store.db_path)  # every later connection can only read

    original = worker_module.fit
    monkeypatch.setattr(worker_module, "fit", lambda cfg, callbacks=(), device=None:
                        original(cfg, [TurnReadOnly(), *callbacks], device=device))
    try:
        run_worker(store.home, once=True)  # returns: no exception escapes
    finally:
        database.READ_ONLY.discard(store.db_path)
    err = capfd.readouterr().err
    assert "Worker stopped: The data folder" in err and "not writable" in err
    assert "Traceback" not in err


def test_a_leftover_checkpoint_tmp_is_removed_by_the_next_worker(store):
    run_id, = trained(store, "baseline")
    leftover = store.checkpoint_path(run_id).with_name("checkpoint.pt.tmp")
    leftover.write_bytes(b"half a checkpoint")  # what a kill during torch.save leaves

    run_worker(store.home, once=True)  # nothing queued: it only starts and stops

    assert not leftover.exists()
    assert load_checkpoint(store.checkpoint_path(run_id))["epoch"] == 2


def test_a_leftover_tmp_of_a_run_that_is_training_is_left_alone(store):
    run_id = store.add_run(tiny_config()).id
    store.claim_next("another-host:1")  # training elsewhere, and writing its checkpoint now
    writing_now = store.run_dir(run_id) / "checkpoint.pt.tmp"
    writing_now.write_bytes(b"being written")

    assert integrity.remove_leftover_temp_files(store) == []
    assert writing_now.exists()


def test_metrics_files_of_a_run_match_its_rows_after_a_kill(store):
    # A worker killed mid-run leaves its metrics copy no further than its rows: no false alarm.
    run_id = store.add_run(tiny_config()).id
    held = store.claim_next("another-host:1")
    store.append_steps(run_id, [{"step": 1, "loss": {"shape": 1.0}}], 0.1, claim=held.claim)
    with writing(store.db_path) as conn:
        conn.execute("UPDATE runs SET heartbeat = heartbeat - 1000")
    store.recover_orphans()
    assert store.get_run(run_id).state == "interrupted"
    assert integrity.check(store.home) == []
    assert json.loads((store.run_dir(run_id) / "run.json").read_text())["state"] == "interrupted"
    with sqlite3.connect(store.db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM step_metrics").fetchone()[0] == 1


def test_steps_lost_from_the_middle_of_a_run_are_found_and_put_back(store, capsys):
    run_id, = trained(store, "baseline")
    steps = store.step_metrics(run_id)
    with writing(store.db_path) as conn:  # lost rows, while the run trained on and ended
        conn.execute("DELETE FROM step_metrics WHERE run_id = ? AND step BETWEEN 3 AND 6", (run_id,))

    code, out, _ = cli(capsys, "check", "--home", str(store.home))
    assert code == 1 and "behind their own folders" in out
    assert cli(capsys, "repair", "--home", str(store.home))[0] == 0
    assert store.step_metrics(run_id) == steps and store.get_run(run_id).state == "finished"
