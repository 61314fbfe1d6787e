"""One validate, at the boundaries; every registry checks its own part and lists its own choices."""
from __future__ import annotations

import pytest

import mtlcore.validation as validation
from mtlcore import ConfigError, ExperimentConfig
from mtlcore.losses import REGRESSION_LOSSES
from mtlcore.models import ARCHITECTURES, TRUNKS
from mtlcore.models.trunks import TrunkChoice
from mtlcore.optim import OPTIMIZERS, SCHEDULES, OptimizerChoice
from mtlcore.runs import Runner, RunStore, run_worker
from mtlcore.validation import validate

TINY = {"tasks": "shape,color", "dataset.n_samples": "300", "train.epochs": "1", "train.max_samples": "100",
        "device": "cpu"}


def config(**settings) -> ExperimentConfig:
    return ExperimentConfig.from_flat({**TINY, **settings})


@pytest.mark.parametrize("key, registry", [
    ("optim.name", OPTIMIZERS), ("optim.schedule", SCHEDULES), ("model.trunk", TRUNKS),
    ("model.arch", ARCHITECTURES), ("loss.regression", REGRESSION_LOSSES),
])
def test_an_unknown_name_is_refused_in_one_sentence_listing_every_registered_choice(key, registry):
    with pytest.raises(ConfigError) as error:
        validate(config(**{key: "nonsense"}))
    message = str(error.value)
    assert "'nonsense'" in message and f"({key})" in message
    assert all(name in message for name in registry)


def test_a_newly_registered_optimiser_and_trunk_are_accepted_and_listed_with_no_second_list(monkeypatch):
    monkeypatch.setitem(OPTIMIZERS._entries, "sgd_again", OptimizerChoice(OPTIMIZERS.get("sgd").factory, True))
    monkeypatch.setitem(TRUNKS._entries, "cnn_again", TrunkChoice(TRUNKS.get("cnn").build, ("image",)))
    assert validate(config(**{"optim.name": "sgd_again", "model.trunk": "cnn_again"}))
    with pytest.raises(ConfigError, match="sgd_again"):
        validate(config(**{"optim.name": "nonsense"}))


def test_each_architecture_checks_its_own_part():
    with pytest.raises(ConfigError, match="model.arch=single trains one task"):
        validate(config(**{"model.arch": "single"}))
    assert validate(config(**{"model.arch": "single", "tasks": "shape"}))


def test_a_trunk_says_which_inputs_it_takes():
    vectors = {"dataset.name": "synthetic", "tasks": "task_a,task_b", "dataset.n_samples": "300"}
    with pytest.raises(ConfigError, match="vector inputs; model.trunk must be auto or mlp"):
        validate(config(**vectors, **{"model.trunk": "cnn"}))
    with pytest.raises(ConfigError, match="shape the MLP trunk"):
        validate(config(**{"model.layers": "3"}))  # shapes: images, a CNN by default


def test_a_run_is_validated_once_when_queued_and_the_worker_trusts_the_stored_config(tmp_path, monkeypatch):
    asked = []
    checked = validation.problem
    monkeypatch.setattr(validation, "problem", lambda c: asked.append(c) or checked(c))
    runner = Runner(RunStore(tmp_path / "home"), max_workers=0)
    run_id = runner.submit(config(), label="once", owner="alice")
    assert len(asked) == 1
    with pytest.raises(ConfigError, match="learning rate"):
        runner.submit(config(**{"optim.lr": "0"}), owner="alice")  # the boundary still refuses in a sentence
    assert run_worker(tmp_path / "home", once=True) == 1
    assert runner.store.get_run(run_id).state == "finished"
    assert len(asked) == 2  # the two submits; training asked nothing
