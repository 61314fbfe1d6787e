"""One checkpoint format (mtlcore.checkpoint): every writer and reader of a run's checkpoint agrees on it.

A background run (the store's worker), a foreground run (``python -m mtlcore
train``'s run files) and a Ray task (its bytes, written by the dispatcher)
all write the same format; Predict and a fork read it back, including the
weighting method's state, and files from before the format had a number
still load.
"""
import pytest
import torch

from mtlcore.callbacks import RunFiles
from mtlcore.checkpoint import (
    FORMAT, CheckpointError, checkpoint_bytes, load_checkpoint, restore_training_state, save_checkpoint,
)
from mtlcore.config import ExperimentConfig
from mtlcore.engine import TrainingRun, fit
from mtlcore.predict import load_model
from mtlcore.runs import Runner, RunStore, StoreError, run_worker
from mtlcore.runs import load_checkpoint as store_load_checkpoint
from mtlcore.runs.checkpoints import write_checkpoint_bytes_while_held
from mtlcore.runs.errors import ClaimLost

KEYS = {"format", "config", "model", "weighting", "tasks", "target_stats", "input_kind", "input_shape", "epoch",
        "step", "temperatures"}


def tiny_config(**settings) -> ExperimentConfig:
    flat = {"dataset.name": "shapes", "dataset.n_samples": 200, "tasks": "shape,size", "train.epochs": 1,
            "train.max_samples": 120, "weighting.method": "uncertainty", "device": "cpu", **settings}
    return ExperimentConfig.from_flat(flat)


@pytest.fixture(autouse=True)
def keep_torch_threads():
    threads = torch.get_num_threads()  # run_worker lowers torch's threads; undo it for other tests
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory):
    """A finished background run with uncertainty weighting: (store, run id)."""
    store = RunStore(tmp_path_factory.mktemp("home"))
    run_id = Runner(store, max_workers=1).submit(tiny_config(), label="checkpointed")
    assert run_worker(store.home, once=True) == 1
    assert store.get_run(run_id).state == "finished"
    return store, run_id


def test_a_background_run_and_a_foreground_run_write_the_same_format(stored_run, tmp_path):
    store, run_id = stored_run
    background = load_checkpoint(store.checkpoint_path(run_id))
    fit(tiny_config(), callbacks=[RunFiles(tmp_path / "out")])
    foreground = load_checkpoint(tmp_path / "out" / "checkpoint.pt")
    for payload in (background, foreground):
        assert set(payload) == KEYS and payload["format"] == FORMAT
        # The weighting's own state is saved: uncertainty's learned log-variances, one per task.
        assert len(payload["weighting"]["log_variance"]) == 2
    assert set(background["model"]) == set(foreground["model"])
    assert not list(tmp_path.glob("**/*.tmp")) and not list(store.run_dir(run_id).glob("*.tmp"))


def test_predict_loads_the_weights_the_worker_saved(stored_run):
    store, run_id = stored_run
    saved = load_checkpoint(store.checkpoint_path(run_id))
    loaded = load_model(store.checkpoint_path(run_id))
    for name, value in loaded.model.state_dict().items():
        assert torch.equal(value, saved["model"][name]), name
    assert loaded.epoch == saved["epoch"] == 1 and set(loaded.temperatures) == {"shape"}


def test_a_run_continued_from_a_checkpoint_keeps_the_weights_and_the_weighting_state(stored_run):
    store, run_id = stored_run
    saved = load_checkpoint(store.checkpoint_path(run_id))
    learned = saved["weighting"]["log_variance"]
    assert any(abs(v) > 1e-6 for v in learned)  # trained away from the initial 0

    same = TrainingRun.create(tiny_config(), device="cpu")
    assert restore_training_state(same, saved)
    assert same.weighting.state_dict()["log_variance"] == pytest.approx(learned)
    for name, value in same.model.state_dict().items():
        assert torch.equal(value, saved["model"][name]), name

    other = TrainingRun.create(tiny_config(**{"weighting.method": "equal"}), device="cpu")
    assert not restore_training_state(other, saved)  # another method starts its weighting afresh
    assert torch.equal(next(iter(other.model.state_dict().values())), next(iter(saved["model"].values())))


def test_a_checkpoint_from_before_the_format_had_a_number_still_predicts(stored_run, tmp_path):
    store, run_id = stored_run
    old = load_checkpoint(store.checkpoint_path(run_id))
    for key in ("format", "step", "temperatures", "weighting"):
        del old[key]
    torch.save(old, tmp_path / "checkpoint.pt")
    loaded = load_model(tmp_path / "checkpoint.pt")
    assert loaded.temperatures == {} and loaded.epoch == 1
    assert load_checkpoint(tmp_path / "checkpoint.pt")["format"] == 0


def test_a_newer_or_foreign_file_says_so_in_one_sentence(stored_run, tmp_path):
    store, run_id = stored_run
    newer = load_checkpoint(store.checkpoint_path(run_id))
    newer["format"] = FORMAT + 1
    torch.save(newer, tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match="newer than this MTL Lab reads"):
        load_checkpoint(tmp_path / "newer.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(StoreError, match="not an MTL Lab checkpoint"):  # the store speaks its own error
        store_load_checkpoint(tmp_path / "foreign.pt")


def test_a_ray_tasks_bytes_become_the_same_file_and_a_lost_claim_keeps_the_old_one(stored_run, tmp_path):
    store, run_id = stored_run
    saved = load_checkpoint(store.checkpoint_path(run_id))
    path = tmp_path / "run" / "checkpoint.pt"
    write_checkpoint_bytes_while_held(checkpoint_bytes(saved), path, lambda: None)
    assert load_checkpoint(path)["step"] == saved["step"]

    later = dict(saved, step=saved["step"] + 1)

    def taken_away():
        raise ClaimLost("Run x was marked interrupted meanwhile.")

    with pytest.raises(ClaimLost):
        write_checkpoint_bytes_while_held(checkpoint_bytes(later), path, taken_away)
    assert load_checkpoint(path)["step"] == saved["step"]  # the old checkpoint stays, whole
    assert not list(path.parent.glob("*.tmp"))
    save_checkpoint(path, later)
    assert load_checkpoint(path)["step"] == saved["step"] + 1
