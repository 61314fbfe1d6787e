"""Who may stop, delete or re-run a run or a dataset: a browser's private key, the teacher, the command line.

Before keys, the owner was the free-text sidebar name: typing "alice" was
enough to stop alice's runs or delete her datasets, and "Alice", "alice "
or a zero-width space got around the per-person cap. These tests state the
rules of mtlcore.owners as the store, the runner, the studies, the importer
and the command line apply them. No training happens here.
"""
from __future__ import annotations

import argparse
import re
import sqlite3

import pytest

from mtlcore.compare import rows_to_csv
from mtlcore.config import ExperimentConfig
from mtlcore.owners import (
    MACHINE_NAME, Owner, display_name, fold_name, key_hash, new_key, teacher_password_ok, valid_key,
)
from mtlcore.runs import NotOwnerError, QueueFullError, Runner, RunStore, StoreError
from mtlcore.safe_text import csv_cell, md_text, plotly_text, tex_text


def tiny_config(**settings) -> ExperimentConfig:
    flat = {"dataset.name": "shapes", "dataset.n_samples": 300, "train.epochs": 1,
            "train.max_samples": 200, "device": "cpu", **settings}
    return ExperimentConfig.from_flat(flat)


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "home")


@pytest.fixture
def runner(store):
    return Runner(store, max_workers=0, queue_cap_per_owner=3)


def browser(name: str = "alice") -> Owner:
    """A person in a new browser: the name typed in its sidebar and a fresh private key."""
    return Owner.from_key(name, new_key())


def teacher() -> Owner:
    return Owner.from_key("Ms Smith", new_key(), teacher=True)


# ----- names and keys -------------------------------------------------------------------

@pytest.mark.parametrize("typed", ["Alice", "alice ", "  ALICE", "al\u200bice", "a\u200dlice\u2060", "ａｌｉｃｅ",
                                   "alice\u00ad", "alice\t"])
def test_names_that_look_alike_are_one_name(typed):
    assert fold_name(typed) == "alice"


def test_a_display_name_keeps_its_case_but_loses_invisible_characters_and_extra_spaces():
    assert display_name("  Alice \u200b  Smith\n") == "Alice Smith"
    assert display_name("\u200b\u200b") == "anonymous" and display_name("") == "anonymous"
    assert len(display_name("x" * 500)) == 40


def test_keys_are_random_and_only_their_hash_is_kept():
    first, second = new_key(), new_key()
    assert first != second and valid_key(first) and len(first) >= 24
    assert not valid_key("short") and not valid_key("has spaces in it, not a key at all")
    owner = Owner.from_key("alice", first)
    assert owner.key_hash == key_hash(first) and first not in repr(owner)


def test_the_teacher_password_comes_from_the_server_and_nothing_else(monkeypatch):
    monkeypatch.delenv("MTL_TEACHER_PASSWORD", raising=False)
    assert not teacher_password_ok("") and not teacher_password_ok("anything")
    monkeypatch.setenv("MTL_TEACHER_PASSWORD", "correct horse")
    assert teacher_password_ok("correct horse")
    assert not teacher_password_ok("correct horse ") and not teacher_password_ok("")


# ----- stopping and deleting runs -------------------------------------------------------------


def test_guessing_the_teacher_password_is_slowed_down_per_source_and_the_teacher_is_not_locked_out(monkeypatch):
    from mtlcore.owners import PasswordAttempts

    monkeypatch.setenv("MTL_TEACHER_PASSWORD", "correct horse")
    now = [1000.0]
    attempts = PasswordAttempts(free=3, first_wait=30.0, max_wait=900.0, clock=lambda: now[0])
    for _ in range(3):  # typos cost nothing
        assert attempts.check("10.0.0.7", "guess") == (False, "That is not the teacher password.")
    unlocked, problem = attempts.check("10.0.0.7", "correct horse")  # even the right one must wait now
    assert not unlocked and "try again in 30 s" in problem
    now[0] += 31
    assert attempts.check("10.0.0.7", "guess")[0] is False
    assert "try again in 60 s" in attempts.check("10.0.0.7", "correct horse")[1]  # doubled after a miss
    assert attempts.check("10.0.0.9", "correct horse") == (True, None)  # the teacher's own machine still gets in
    now[0] += 61
    assert attempts.check("10.0.0.7", "correct horse") == (True, None)
    assert attempts.check("10.0.0.7", "guess") == (False, "That is not the teacher password.")  # misses cleared

def test_the_same_name_in_another_browser_cannot_stop_or_delete_a_run(runner, store):
    alice = browser("alice")
    run_id = runner.submit(tiny_config(), label="mine", owner=alice)
    for impostor in (browser("alice"), browser("Alice"), browser("al\u200bice"), Owner("alice")):
        with pytest.raises(NotOwnerError, match="Only alice can stop this run"):
            runner.cancel(run_id, by=impostor)
    assert store.get_run(run_id).state == "queued"
    assert "cancelled" in runner.cancel(run_id, by=alice)
    with pytest.raises(NotOwnerError, match="Only alice can delete this run"):
        runner.delete(run_id, by=browser("alice"))
    assert "deleted" in runner.delete(run_id, by=alice)
    with pytest.raises(StoreError, match="No run with id"):
        store.get_run(run_id)


def test_the_owner_keeps_a_run_after_correcting_their_name(runner, store):
    key = new_key()
    run_id = runner.submit(tiny_config(), owner=Owner.from_key("alcie", key))
    assert "cancelled" in runner.cancel(run_id, by=Owner.from_key("Alice", key))
    assert [r.id for r in store.list_runs(owner=Owner.from_key("Alice", key))] == [run_id]


def test_the_teacher_and_the_command_line_may_stop_and_delete_anyones_run(runner, store):
    first = runner.submit(tiny_config(), owner=browser("bob"))
    second = runner.submit(tiny_config(), owner=browser("carol"))
    assert "as the teacher" in runner.cancel(first, by=teacher())
    assert f"as {MACHINE_NAME}" in runner.cancel(second)  # no one given: the machine's own user
    assert "deleted as the teacher" in runner.delete(first, by=teacher())
    assert "deleted as the machine's user" in runner.delete(second)
    assert store.list_runs() == []


def test_runs_without_a_key_belong_to_the_machines_user_not_to_a_browser_that_types_the_name(runner, store):
    run_id = runner.submit(tiny_config(), owner="dave")  # e.g. `python -m mtlcore submit --owner dave`
    assert store.get_run(run_id).owner_key is None
    with pytest.raises(NotOwnerError, match="without a browser key"):
        runner.cancel(run_id, by=browser("dave"))
    assert "cancelled" in runner.cancel(run_id, by=Owner("dave"))  # local code naming the keyless owner
    assert "deleted" in runner.delete(run_id, by=teacher())


def test_a_store_from_before_keys_gets_the_column_and_its_runs_stay_listed_and_teacher_only(tmp_path):
    home = tmp_path / "old"
    RunStore(home)
    with sqlite3.connect(home / "mtl.sqlite") as conn:  # what an older version's file looks like
        conn.execute("ALTER TABLE runs DROP COLUMN owner_key")
        conn.execute("INSERT INTO runs (id, label, owner, state, config, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                     ("old-run", "from last term", "erin", "queued", tiny_config().to_json(), 1.0))
    store = RunStore(home)
    (old,) = store.list_runs()
    assert (old.id, old.owner, old.owner_key) == ("old-run", "erin", None)
    with pytest.raises(NotOwnerError):
        store.cancel_run("old-run", by=browser("erin"))
    assert "cancelled" in store.cancel_run("old-run", by=teacher())


def test_a_run_must_be_stopped_before_it_is_deleted_and_its_files_go_with_it(runner, store):
    alice = browser()
    run_id = runner.submit(tiny_config(), owner=alice)
    folder = store.run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "checkpoint.pt").write_bytes(b"weights")
    with pytest.raises(StoreError, match="stop it first"):
        runner.delete(run_id, by=alice)
    runner.cancel(run_id, by=alice)
    store.append_epoch(run_id, {"epoch": 1, "loss": 1.0})
    runner.delete(run_id, by=alice)
    assert not folder.exists() and list((store.home / "runs").iterdir()) == []
    assert store.epoch_metrics(run_id) == []


# ----- the queue cap ------------------------------------------------------------------------

def test_the_cap_counts_per_browser_key_whatever_name_is_typed(runner, store):
    key = new_key()
    for typed in ("Alice", "alice ", "al\u200bice"):
        runner.submit(tiny_config(), owner=Owner.from_key(typed, key))
    with pytest.raises(QueueFullError, match="already has 3 runs"):
        runner.submit(tiny_config(), owner=Owner.from_key("ALICE\u200b", key))
    assert not runner.has_room(Owner.from_key("someone else", key))
    runner.submit(tiny_config(), owner=browser("alice"))  # another browser has its own queue
    assert {r.owner for r in store.list_runs()} == {"Alice", "alice", "alice"} | {"alice"}


def test_the_cap_of_keyless_owners_compares_folded_names(runner):
    for typed in ("Bob", "bob ", "b\u200bob"):
        runner.submit(tiny_config(), owner=typed)
    with pytest.raises(QueueFullError):
        runner.submit(tiny_config(), owner="BOB")


def test_listing_by_name_finds_every_spelling_and_by_owner_only_that_keys_runs(runner, store):
    alice, other = browser("Alice"), browser("alice")
    mine = runner.submit(tiny_config(), owner=alice)
    theirs = runner.submit(tiny_config(), owner=other)
    assert {r.id for r in store.list_runs(owner="ALICE")} == {mine, theirs}
    assert [r.id for r in store.list_runs(owner=alice)] == [mine]


# ----- the command line ---------------------------------------------------------------------

def cli(capsys, home, *argv):
    from mtlcore.cli import runs as runs_cli
    from mtlcore.cli.common import run_guarded

    parser = argparse.ArgumentParser()
    runs_cli.register(parser.add_subparsers())
    args = parser.parse_args(list(argv) + ["--home", str(home)])
    code = run_guarded(args.func, args)
    return code, capsys.readouterr()


def test_the_command_line_acts_as_the_machines_user_and_says_so(runner, store, capsys):
    run_id = runner.submit(tiny_config(), owner=browser("frank"))
    code, out = cli(capsys, store.home, "cancel", run_id, "--owner", "grace")
    assert code == 2 and "shown under 'frank', not 'grace'" in out.err
    assert store.get_run(run_id).state == "queued"
    code, out = cli(capsys, store.home, "cancel", run_id, "--owner", "FRANK")
    assert code == 0 and f"as {MACHINE_NAME}" in out.out
    code, out = cli(capsys, store.home, "delete", run_id)
    assert code == 0 and "deleted as the machine's user (command line)" in out.out
    code, out = cli(capsys, store.home, "delete", run_id)
    assert code == 2 and "No run with id" in out.err


# ----- studies --------------------------------------------------------------------------------

def test_a_study_can_be_cancelled_only_by_its_key_and_its_runs_are_that_keys(tmp_path):
    from mtlcore.studies import StudySpec, StudyStore

    runner = Runner(RunStore(tmp_path / "home"), max_workers=0, queue_cap_per_owner=100)
    studies = StudyStore(runner.store)
    alice = browser("alice")
    base = tiny_config(tasks="shape,color")
    record = studies.start(StudySpec("stl-vs-mtl", base, seeds=1), runner, owner=alice)
    assert all(r.owner_key == alice.key_hash for r in runner.store.list_runs(study_id=record.id))
    with pytest.raises(NotOwnerError, match="Only alice can cancel this study"):
        studies.cancel(record.id, runner, owner=browser("alice"))
    assert [s.id for s in studies.list(owner=alice)] == [record.id] and studies.list(owner=browser("alice")) == []
    assert "cancelled" in studies.cancel(record.id, runner, owner=alice)


# ----- imported datasets ---------------------------------------------------------------------

def table_csv(rows: int = 40) -> bytes:
    lines = ["x1,x2,kind"] + [f"{i},{i % 7},{'ab'[i % 2]}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def lab(tmp_path, monkeypatch):
    from mtlcore.data import own

    monkeypatch.setenv("MTL_HOME", str(tmp_path / "lab"))
    own.refresh()
    yield tmp_path / "lab"
    monkeypatch.setenv("MTL_HOME", str(tmp_path / "elsewhere"))
    own.refresh()


def test_only_whoever_imported_a_dataset_or_the_teacher_may_delete_it(lab):
    from mtlcore.data.own_import import DataImportError, dataset_owner, import_table
    from mtlcore.runs.datasets import delete_dataset

    alice = browser("alice")
    import_table(table_csv(), "houses", targets=["kind"], owner=alice)
    assert dataset_owner("houses") == ("alice", alice.key_hash)
    with pytest.raises(DataImportError, match="Only alice can delete the dataset 'houses'"):
        delete_dataset("houses", by=browser("alice"))
    delete_dataset("houses", by=alice)
    assert not (lab / "datasets" / "houses").exists()

    import_table(table_csv(), "flats", targets=["kind"], owner=alice)
    delete_dataset("flats", by=teacher())
    import_table(table_csv(), "older", targets=["kind"])  # the command line / before owners: no key
    with pytest.raises(DataImportError, match="without a browser key"):
        delete_dataset("older", by=browser(MACHINE_NAME))
    delete_dataset("older")  # the machine's user


def test_a_dataset_that_queued_or_running_runs_use_cannot_be_deleted_and_the_sentence_names_them(lab):
    from mtlcore.data.own_import import DataImportError, import_table
    from mtlcore.runs.datasets import delete_dataset

    alice = browser("alice")
    import_table(table_csv(), "houses", targets=["kind"], owner=alice)
    store = RunStore()
    waiting = store.add_run(tiny_config(**{"dataset.name": "houses", "tasks": "kind"}), owner=browser("bob"))
    with pytest.raises(DataImportError, match=f"while runs use it: {waiting.id} \\(queued\\)"):
        delete_dataset("houses", by=alice)
    assert (lab / "datasets" / "houses").exists()
    store.cancel_run(waiting.id)
    delete_dataset("houses", by=alice)


# ----- text shown to others -------------------------------------------------------------------

def test_user_text_is_shown_as_typed_in_markdown_html_latex_plotly_and_csv():
    payload = '<img src=x onerror=alert(1)> [link](http://evil) :red[x] $x$ # h'
    escaped = md_text(payload)
    assert re.search(r"(?<!\\)[<>\[\]():$#]", escaped) is None  # every character Markdown reads is escaped
    assert escaped.replace("\\", "") == payload  # and nothing else changed: it reads as typed
    assert md_text("line\nbreak") == "line break"
    assert "<" not in plotly_text("<b>bold</b>") and plotly_text("a & b") == "a &amp; b"
    assert tex_text(r"\href{x}") == r"\textbackslash{}href\{x\}"
    for formula in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert csv_cell(formula) == "'" + formula
    assert csv_cell(-1.5) == -1.5 and csv_cell("plain") == "plain"


def test_csv_exports_neutralise_formula_cells_in_values_and_headers():
    text = rows_to_csv([{"label": '=HYPERLINK("http://evil","x")', "owner": "@alice", "=task accuracy": 0.5,
                         "gain": -2.5}])
    header, row = text.splitlines()
    assert header.split(",")[2] == "'=task accuracy"
    assert row.startswith('"\'=HYPERLINK(') and ",'@alice," in row and row.endswith(",-2.5")


def test_tables_offer_no_download_of_their_own_only_the_pages_neutralised_csv():
    """Streamlit's table toolbar writes a CSV without neutralising formula cells; the app turns it off."""
    from helpers import streamlit_settings

    assert streamlit_settings()["client"]["disableDataExport"] is True


def test_charts_draw_task_names_as_text_not_tags():
    from mtlcore import charts

    task = "<a href='http://evil'>t</a>"
    fig = charts.step_loss_figure([{"step": 1, "loss": {task: 1.0}}, {"step": 2, "loss": {task: 0.5}}], [task])
    names = " ".join(trace.name for trace in fig.data)
    assert "<a" not in names and "&lt;a" in names
    sketch = charts.architecture_figure("hard", [task])
    assert all("<a" not in note.text for note in sketch.layout.annotations)


# ----- the app: teacher mode --------------------------------------------------------------------

def test_the_teacher_password_typed_in_the_sidebar_lets_the_teacher_stop_anyones_run(tmp_path, monkeypatch):
    from pathlib import Path

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    home = tmp_path / "home"
    monkeypatch.setenv("MTL_HOME", str(home))
    monkeypatch.setenv("MTL_TEACHER_PASSWORD", "s3cret")
    st.cache_resource.clear()
    store = RunStore(home)
    long_run = tiny_config(**{"train.epochs": 500, "train.batch_size": 8})
    run_id = store.add_run(long_run, label="bob's run", owner=browser("bob")).id
    try:
        at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=60)
        at.query_params["run"] = run_id
        at.run()
        at.switch_page("views/train.py").run()
        assert at.session_state["train_run"] == run_id and at.button(key="train_stop").disabled

        at.text_input(key="teacher_password").input("guess").run()
        assert "That is not the teacher password." in [e.value for e in at.sidebar.error]
        assert at.button(key="train_stop").disabled
        at.text_input(key="teacher_password").input("s3cret").run()
        assert not at.button(key="train_stop").disabled
        at.button(key="train_stop").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        run = store.get_run(run_id)
        assert run.state == "cancelled" or "Stopping" in run.message
    finally:
        Runner(store, max_workers=1).stop_workers(timeout=10)
        st.cache_resource.clear()
