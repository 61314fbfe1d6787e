"""Training: models learn, runs are reproducible, bad runs end cleanly."""
import math

import pytest
import torch

from mtlcore import Callback, ExperimentConfig, fit


def config(**flat):
    return ExperimentConfig.from_flat({"device": "cpu", **flat})


def test_a_short_run_beats_chance_on_every_shapes_task():
    result = fit(config(**{
        "dataset.name": "shapes", "dataset.n_samples": "3000", "tasks": "shape,color,size,background",
        "train.epochs": "8", "model.width": "16",
    }))
    test = result.summary["test"]
    assert result.status == "finished"
    assert test["shape"]["accuracy"] > 0.45  # chance 0.25
    assert test["color"]["accuracy"] > 0.6  # chance 0.25
    assert test["background"]["accuracy"] > 0.45  # chance 0.25
    # Predicting the mean size would give r2 = 0.
    assert test["size"]["r2"] > 0.3


def test_a_short_run_beats_chance_on_every_digits_task():
    result = fit(config(**{
        "dataset.name": "digits", "tasks": "digit,parity,big,ink", "train.epochs": "5",
    }))
    test = result.summary["test"]
    assert test["digit"]["accuracy"] > 0.5  # chance 0.1
    assert test["parity"]["accuracy"] > 0.7  # chance 0.5
    assert test["big"]["accuracy"] > 0.7  # chance 0.5
    assert test["ink"]["r2"] > 0.3


@pytest.mark.parametrize("arch", ["soft", "cross_stitch", "mmoe"])
def test_other_architectures_learn_too(arch):
    result = fit(config(**{
        "dataset.name": "digits", "tasks": "digit,parity", "train.epochs": "3", "model.arch": arch,
        "model.width": "16",
    }))
    assert result.summary["test"]["digit"]["accuracy"] > 0.4
    assert result.summary["test"]["parity"]["accuracy"] > 0.6


def test_same_seed_same_result_on_cpu():
    flat = {"dataset.name": "digits", "tasks": "digit,ink", "train.epochs": "1", "train.max_samples": "300"}
    a = fit(config(**flat)).summary["test"]
    b = fit(config(**flat)).summary["test"]
    c = fit(config(**flat, seed="1")).summary["test"]
    assert a == b
    assert a != c


class Recorder(Callback):
    def __init__(self, stop_after=None):
        self.steps, self.epochs, self.stop_after = [], [], stop_after

    def on_step_end(self, run, logs):
        self.steps.append(logs)

    def on_epoch_end(self, run, logs):
        self.epochs.append(logs)

    def should_stop(self):
        return self.stop_after is not None and len(self.steps) >= self.stop_after


def test_callbacks_receive_per_task_step_and_epoch_metrics(tiny):
    recorder = Recorder()
    fit(config(**{**tiny, "tasks": "shape,size", "train.epochs": "2"}), [recorder])
    assert recorder.steps and len(recorder.epochs) == 2
    assert set(recorder.steps[0]["loss"]) == {"shape", "size"}
    epoch = recorder.epochs[-1]
    assert set(epoch["val"]["shape"]) >= {"loss", "accuracy"}
    assert set(epoch["val"]["size"]) >= {"loss", "mae", "r2"}
    assert set(epoch["train"]) == {"shape", "size"}


def test_a_cancelled_run_stops_and_keeps_its_metrics(tiny):
    recorder = Recorder(stop_after=3)
    result = fit(config(**{**tiny, "train.epochs": "5"}), [recorder])
    assert result.status == "cancelled"
    assert len(recorder.steps) == 3
    assert "test" in result.summary


def test_a_diverging_run_is_reported_as_diverged_not_a_crash(tiny):
    result = fit(config(**{**tiny, "optim.name": "sgd", "optim.lr": "9", "optim.momentum": "0.99",
                                   "reg.batchnorm": "false", "train.epochs": "3"}))
    assert result.status == "diverged"
    assert "lower learning rate" in result.message
    assert "test" not in result.summary


def test_early_stopping_keeps_the_best_epoch_not_the_last():
    recorder = Recorder()
    result = fit(config(**{"dataset.name": "digits", "tasks": "digit", "model.arch": "single",
                           "train.epochs": "40", "train.patience": "2", "optim.lr": "0.05"}), [recorder])
    assert result.status == "finished"
    assert result.summary["epochs"] < 40
    assert "Stopped early" in result.message
    val_losses = [e["val"]["digit"]["loss"] for e in recorder.epochs]
    best = min(range(len(val_losses)), key=val_losses.__getitem__)
    assert result.summary["best_epoch"] == best + 1
    # The model that is kept is the best epoch's, not the last one's.
    assert result.summary["val"]["digit"]["loss"] == pytest.approx(val_losses[best], rel=1e-5)
    assert result.summary["val"]["digit"]["loss"] < val_losses[-1]


def test_regression_error_is_reported_in_original_units():
    result = fit(config(**{"dataset.name": "shapes", "dataset.n_samples": "400", "tasks": "x",
                           "model.arch": "single", "train.epochs": "1"}))
    run = result.run
    mean, std = run.target_stats["x"]
    test = run.splits["test"]
    run.model.eval()
    with torch.no_grad():
        standardised_error = (run.model(test.x)["x"].squeeze(-1) - test.y["x"]).abs().mean().item()
    assert std > 1  # positions spread over pixels, so units matter
    assert result.summary["test"]["x"]["mae"] == pytest.approx(standardised_error * std, rel=1e-4)


@pytest.mark.parametrize("flat", [
    {"optim.name": "sgd", "optim.schedule": "cosine"},
    {"optim.name": "adamw", "optim.schedule": "step", "optim.step_size": "1"},
    {"optim.name": "rmsprop", "optim.lr": "0.001"},
    {"optim.name": "adagrad", "reg.weight_decay": "0.001", "reg.l1": "0.0001"},
    {"loss.label_smoothing": "0.1", "loss.regression": "huber"},
    {"loss.focal_gamma": "2", "loss.regression": "l1"},
])
def test_optimisers_schedules_losses_and_regularisers_run(tiny, flat):
    result = fit(config(**{**tiny, "tasks": "shape,size", **flat}))
    assert result.status == "finished"
    assert all(math.isfinite(m["loss"]) for m in result.summary["test"].values())


def test_max_samples_limits_the_training_set(tiny):
    result = fit(config(**{**tiny, "train.max_samples": "64", "train.batch_size": "32"}))
    assert result.summary["steps"] == 2
