"""Packing is decided once, when a run is queued: the store keeps how it packs, and a worker claims by it.

A worker claiming a pack reads the stored pack key, batch and CPU answer;
it loads no dataset and builds no model (which used to cost it a dataset
load per candidate at every claim). These tests make both impossible
during the claim and check that the pack is still claimed.
"""
from dataclasses import replace

import pytest

from mtlcore.config import ExperimentConfig
from mtlcore.packing import grouping
from mtlcore.packing.grouping import pack_key, part_size
from mtlcore.runs import Runner, RunStore
from mtlcore.runs.database import reading
from mtlcore.runs.worker import claim_partners


def mlp_config(**settings) -> ExperimentConfig:
    flat = {"dataset.name": "synthetic", "tasks": "task_a,task_b", "dataset.n_samples": 300, "train.epochs": 1,
            "device": "cpu", **settings}
    return ExperimentConfig.from_flat(flat)


def cnn_config(**settings) -> ExperimentConfig:
    flat = {"dataset.name": "shapes", "tasks": "shape,size", "dataset.n_samples": 200, "train.epochs": 1,
            "device": "cpu", **settings}
    return ExperimentConfig.from_flat(flat)


@pytest.fixture
def runner(tmp_path):
    return Runner(RunStore(tmp_path / "home"), max_workers=0, queue_cap_per_owner=100)


@pytest.fixture
def no_data_no_models(monkeypatch):
    """Call it to make loading a dataset or building a model raise from then on."""
    import mtlcore.data
    import mtlcore.models

    def forbidden(*args, **kwargs):
        raise AssertionError("a worker's claim loaded a dataset or built a model")

    def arm():
        monkeypatch.setattr(mtlcore.data, "_load_cached", forbidden)
        monkeypatch.setattr(mtlcore.data, "load_dataset", forbidden)
        monkeypatch.setattr(mtlcore.models, "build_model", forbidden)
        monkeypatch.setattr(grouping, "_key_and_cpu", forbidden)  # nor is the key computed again
        grouping._KNOWN.clear()

    return arm


def stored_packing(store: RunStore, run_id: str) -> tuple:
    with reading(store.db_path) as conn:
        return tuple(conn.execute("SELECT pack_key, pack_batch, pack_on_cpu FROM runs WHERE id = ?",
                                  (run_id,)).fetchone())


def test_a_queued_run_keeps_how_it_packs_in_the_runs_table(runner):
    store = runner.store
    packable = runner.submit(mlp_config(), owner="alice")
    seed_one = runner.submit(mlp_config(seed=1), owner="bob")
    alone = runner.submit(mlp_config(**{"weighting.method": "uncertainty"}), owner="carol")  # learns its weights
    cnn = runner.submit(cnn_config(), owner="dave")

    key = pack_key(mlp_config())
    assert key is not None
    assert stored_packing(store, packable) == (key, grouping.MAX_PACKED_RUNS, 1)
    assert stored_packing(store, seed_one)[0] == key  # seeds differ, the pack is the same
    assert stored_packing(store, alone) == (None, 1, 0)
    assert stored_packing(store, cnn)[0] not in (None, key) and stored_packing(store, cnn)[2] == 0  # no CPU packs
    record = store.get_run(packable)
    assert (record.pack_key, record.pack_batch, record.pack_on_cpu) == (key, grouping.MAX_PACKED_RUNS, True)


def test_a_worker_claims_a_pack_without_loading_a_dataset_or_building_a_model(runner, no_data_no_models):
    store = runner.store
    lesson = mlp_config()
    ids = [runner.submit(replace(lesson, seed=seed), owner=f"student {seed}") for seed in range(3)]
    lone = runner.submit(mlp_config(**{"weighting.method": "uncertainty"}), owner="erin")
    no_data_no_models()

    lead = store.claim_next("w")
    assert lead.id == ids[0]
    partners = claim_partners(store, "w", lead, device="cpu")
    assert sorted(r.id for r in partners) == sorted(ids[1:])
    assert [r.id for r in store.queued_runs()] == [lone]
    assert claim_partners(store, "w", store.claim_next("w"), device="cpu") == []  # it trains alone


def test_the_device_question_is_answered_from_the_stored_pack_at_claim(runner, no_data_no_models):
    store = runner.store
    for seed in range(3):
        runner.submit(cnn_config(seed=seed, device="auto"), owner=f"p{seed}")  # the worker's device decides
    no_data_no_models()

    lead = store.claim_next("w")
    assert claim_partners(store, "w", lead, device="cpu") == []  # a grouped convolution is slower on a CPU
    assert len(claim_partners(store, "w", lead, device="cuda:0")) == 2  # a GPU worker stacks them


def test_a_pack_is_cut_into_equal_parts_of_at_most_its_stored_batch(runner, monkeypatch):
    assert (part_size(36, 24), part_size(24, 24), part_size(5, 3), part_size(1, 24)) == (18, 24, 3, 1)
    monkeypatch.setattr(grouping, "MAX_PACKED_RUNS", 3)  # read when each run is queued
    store = runner.store
    for seed in range(5):
        runner.submit(mlp_config(seed=seed), owner=f"p{seed}")
    sizes = []
    while (lead := store.claim_next("w")) is not None:
        sizes.append(1 + len(claim_partners(store, "w", lead, device="cpu")))
    assert sizes == [3, 2]


def test_packing_off_queues_a_studys_members_one_at_a_time(runner, monkeypatch):
    configs = [mlp_config(seed=seed) for seed in range(4)]
    assert runner.next_batch(configs) == [0, 1, 2, 3]
    monkeypatch.setenv("MTL_PACKING", "0")
    assert runner.next_batch(configs) == [0]


def test_a_setting_only_another_architecture_reads_does_not_keep_runs_apart():
    # A study matching parameter budgets sets MMoE's expert count on its hard-sharing model too.
    hard = mlp_config(**{"model.num_experts": 8})
    baseline = mlp_config(**{"model.arch": "single", "tasks": "task_a"})
    assert pack_key(hard) == pack_key(baseline) is not None
    mmoe = mlp_config(**{"model.arch": "mmoe"})
    assert pack_key(mmoe) != pack_key(mlp_config(**{"model.arch": "mmoe", "model.num_experts": 8}))  # MMoE reads it
