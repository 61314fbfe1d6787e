"""In class the queue is fair: one person's three runs do not delay everybody else's first.

Claims here are made by the store directly (no worker process), so the order
is the rule's and nothing depends on timing.
"""
from dataclasses import replace
from pathlib import Path

import pytest

from mtlcore.config import ExperimentConfig
from mtlcore.owners import Owner
from mtlcore.runs import Runner, RunStore
from mtlcore.runs import runner as runner_module
from mtlcore.runs.worker import claim_partners

KEYS = {name: f"{name}-browser-key-0123456789" for name in ("alice", "bob", "carol")}


def owner(name: str) -> Owner:
    return Owner.from_key(name, KEYS[name])


def mlp_config(**settings) -> ExperimentConfig:
    """A small synthetic MLP run: runs like it pack together on a CPU."""
    flat = {"dataset.name": "synthetic", "tasks": "task_a,task_b", "dataset.n_samples": 300, "train.epochs": 1,
            "device": "cpu", **settings}
    return ExperimentConfig.from_flat(flat)


@pytest.fixture
def runner(tmp_path):
    return Runner(RunStore(tmp_path / "home"), max_workers=0, queue_cap_per_owner=100)


def queue_three_people(runner) -> dict[str, str]:
    """Alice queues three runs before Bob and Carol queue one each; returns run id -> a readable name."""
    names = {}
    for label in ("alice 1", "alice 2", "alice 3", "bob 1", "carol 1"):
        person = label.split()[0]
        names[runner.submit(mlp_config(seed=len(names)), label=label, owner=owner(person))] = label
    return names


def test_each_person_gets_a_turn_before_anyone_gets_a_second_run(runner):
    names = queue_three_people(runner)
    claimed = []
    while (record := runner.store.claim_next("test-worker")) is not None:
        claimed.append(names[record.id])
    assert claimed == ["alice 1", "bob 1", "carol 1", "alice 2", "alice 3"]


def test_a_person_whose_run_started_recently_waits_behind_a_newcomer(runner):
    store = runner.store
    first = runner.submit(mlp_config(), label="alice 1", owner=owner("alice"))
    assert store.claim_next("w").id == first  # alice's first run is training
    second = runner.submit(mlp_config(seed=1), label="alice 2", owner=owner("alice"))
    bob = runner.submit(mlp_config(seed=2), label="bob 1", owner=owner("bob"))  # queued after alice's second
    assert [r.id for r in store.queued_runs()] == [bob, second]
    assert store.claim_next("w").id == bob


def test_runs_without_a_key_share_one_queue_per_folded_name(runner):
    store = runner.store
    a1 = runner.submit(mlp_config(), owner="Alice")
    a2 = runner.submit(mlp_config(seed=1), owner="alice ")  # the same person from the command line
    b1 = runner.submit(mlp_config(seed=2), owner="bob")
    assert [store.claim_next("w").id for _ in range(3)] == [a1, b1, a2]


def test_positions_match_the_claim_order_and_count_the_whole_queue(runner):
    names = queue_three_people(runner)
    places = runner.store.queue_places()
    by_position = [names[run_id] for run_id, _ in sorted(places.items(), key=lambda item: item[1].position)]
    assert by_position == ["alice 1", "bob 1", "carol 1", "alice 2", "alice 3"]
    assert {place.of for place in places.values()} == {5}
    assert all(place.estimated_start is None for place in places.values())  # nothing has finished yet

    claimed = runner.store.claim_next("w")
    assert names[claimed.id] == "alice 1"
    assert [names[i] for i, p in sorted(runner.store.queue_places().items(), key=lambda item: item[1].position)] \
        == ["bob 1", "carol 1", "alice 2", "alice 3"]


def test_the_estimated_start_grows_with_the_position_once_a_run_has_finished(runner):
    store = runner.store
    done = runner.submit(mlp_config(), owner=owner("carol"))
    claimed = store.claim_next("w")
    store.finish_run(done, "finished", claim=claimed.claim)
    queue_three_people(runner)
    places = sorted(store.queue_places(now=1e12).values(), key=lambda place: place.position)
    starts = [place.estimated_start for place in places]
    assert None not in starts and starts == sorted(starts) and starts[-1] > starts[0]
    assert places[1].sentence(now=1e12).startswith("2nd of 5 in the queue; starts in about")


def test_a_claimed_lead_still_packs_identical_runs_of_other_people(runner):
    store = runner.store
    lesson = mlp_config()
    alice = runner.submit(lesson, owner=owner("alice"))
    bob = runner.submit(replace(lesson, seed=1), owner=owner("bob"))
    carol = runner.submit(replace(lesson, seed=2), owner=owner("carol"))
    lone = runner.submit(mlp_config(**{"weighting.method": "uncertainty"}), owner=owner("bob"))  # never packs
    lead = store.claim_next("w")
    assert lead.id == alice
    partners = claim_partners(store, "w", lead, device="cpu")
    assert {r.id for r in partners} == {bob, carol}
    assert [r.id for r in store.queued_runs()] == [lone]
    assert all(store.get_run(run_id).claim for run_id in (alice, bob, carol))  # each has its own claim token


def test_packing_can_be_turned_off(runner, monkeypatch):
    store = runner.store
    lesson = mlp_config()
    runner.submit(lesson, owner=owner("alice"))
    runner.submit(replace(lesson, seed=1), owner=owner("bob"))
    monkeypatch.setenv("MTL_PACKING", "0")
    lead = store.claim_next("w")
    assert claim_partners(store, "w", lead, device="cpu") == []
    assert len(store.queued_runs()) == 1


def test_the_worker_count_setting_is_honoured(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_WORKERS", "3")
    runner = Runner(RunStore(tmp_path / "home"))
    assert runner.max_workers == 3 and len(runner.worker_devices()) == 3
    monkeypatch.setenv("MTL_WORKERS", "many")
    with pytest.raises(ValueError, match="MTL_WORKERS"):
        runner_module.default_worker_count()
    monkeypatch.delenv("MTL_WORKERS")
    assert runner_module.default_worker_count() >= 1
    assert Runner(RunStore(tmp_path / "home"), max_workers=0).max_workers == 0  # an explicit count wins


def test_threads_per_worker_share_the_cores_between_the_workers(monkeypatch):
    monkeypatch.delenv("MTL_WORKER_THREADS", raising=False)
    assert runner_module.threads_per_worker(workers=1, cores=2) == 1  # one core left to the web server
    assert runner_module.threads_per_worker(workers=2, cores=2) == 1
    assert runner_module.threads_per_worker(workers=2, cores=16) == 7
    monkeypatch.setenv("MTL_WORKER_THREADS", "4")
    assert runner_module.threads_per_worker(workers=2, cores=2) == 4


def test_a_study_trained_here_uses_a_workers_threads_not_one_per_core_and_gives_them_back(monkeypatch):
    """Beside a busy worker, a thread per core makes each operation wait for the thread without a core."""
    import torch

    from mtlcore.studies import StudySpec, default_base, local
    from mtlcore.studies.plans import plan

    monkeypatch.setenv("MTL_WORKER_THREADS", "1")
    seen = []
    monkeypatch.setattr(local, "fit_many", lambda configs, callbacks: seen.append(torch.get_num_threads()))
    members = plan(StudySpec("stl-vs-mtl", default_base("stl-vs-mtl"), seeds=1))
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # torch's default on two cores
    try:
        local.train_missing(members, [], lambda line: None)
        assert seen == [1]
        assert torch.get_num_threads() == 2  # the caller's setting is back
    finally:
        torch.set_num_threads(before)


def test_the_runs_command_shows_each_waiting_runs_place(runner, capsys):
    import json

    from mtlcore.cli import main

    names = queue_three_people(runner)
    assert main(["runs", "--home", str(runner.store.home), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {names[row["id"]]: row["queue"]["position"] for row in rows} == {
        "alice 1": 1, "bob 1": 2, "carol 1": 3, "alice 2": 4, "alice 3": 5}
    assert main(["runs", "--home", str(runner.store.home)]) == 0
    table = capsys.readouterr().out
    assert "1st of 5 in the queue" in table and "5th of 5 in the queue" in table


def test_the_train_page_shows_a_waiting_runs_place_in_the_fair_queue(tmp_path, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    home = tmp_path / "app-home"
    monkeypatch.setenv("MTL_HOME", str(home))
    monkeypatch.setenv("MTL_WORKERS", "0")  # no worker: the runs stay queued while the page is read
    st.cache_resource.clear()
    try:
        runner = Runner(RunStore(home), max_workers=0, queue_cap_per_owner=100)
        names = {label: run_id for run_id, label in queue_three_people(runner).items()}
        at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
        at.session_state["owner"] = "bob"
        at.query_params["run"] = names["bob 1"]
        at.run()
        at.switch_page("views/train.py").run()
        assert not at.exception, at.exception
        waiting = [info.value for info in at.info if "Waiting for a worker" in info.value]
        assert waiting and "2nd of 5 in the queue" in waiting[0], [info.value for info in at.info]
        assert any("0 workers (MTL_WORKERS)" in caption.value for caption in at.sidebar.caption)
    finally:
        st.cache_resource.clear()
