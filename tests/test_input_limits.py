"""Bounded inputs (issue 14): absurd settings, configs too large for the machine, unreadable config files.

Each of these used to be accepted: the run then trained, overflowed and
"diverged" with a hint blaming the learning rate, or the worker ran out of
memory, or the command line printed a traceback.
"""
import pytest

from mtlcore.budget import BUDGET_VARIABLE, estimate, machine_memory, memory_budget
from mtlcore.cli import main
from mtlcore.config import ConfigError, ExperimentConfig, validate
from mtlcore.engine import diverged_message

SYNTHETIC = {"dataset.name": "synthetic", "tasks": "task_a,task_b"}


@pytest.mark.parametrize("flat, words", [
    ({**SYNTHETIC, "dataset.scale": "inf"}, "dataset.scale must be a finite number"),
    ({**SYNTHETIC, "dataset.scale": "1e300"}, "scale must be above 0 and at most 1000"),
    ({**SYNTHETIC, "dataset.n_samples": "inf"}, "dataset.n_samples must be a finite number"),
    ({**SYNTHETIC, "dataset.n_samples": "1e308"}, "n_samples must be between 20 and 1000000"),
    ({"loss.weights.shape": "1e308"}, "loss.weights.shape must be a number from 0 to 1000"),
    ({"reg.weight_decay": "1e308"}, "reg.weight_decay must be at most 1"),
    ({"reg.l1": "5"}, "reg.l1 must be at most 1"),
    ({"loss.focal_gamma": "1e308"}, "loss.focal_gamma must be from 0 to 10"),
    ({"weighting.method": "gradnorm", "weighting.alpha": "nan"}, "weighting.alpha must be a finite number"),
    ({"weighting.method": "dwa", "weighting.temperature": "1e300"}, "weighting.temperature must be a finite number"),
    ({"weighting.method": "gradnorm", "weighting.alpha": "-1"}, "weighting.method=gradnorm.*alpha must be 0 or more"),
    ({"seed": "99999999999999"}, "seed must be a whole number from 0 to 4294967295"),
    ({"dataset.seed": "4294967296"}, "dataset.seed must be a whole number from 0 to 4294967295"),
])
def test_absurd_values_are_refused_before_training_naming_the_setting(flat, words):
    with pytest.raises(ConfigError, match=words):
        validate(ExperimentConfig.from_flat(flat))


def test_a_boolean_is_not_a_number_of_epochs():
    with pytest.raises(ConfigError, match="'train.epochs' must be an int, got True"):
        ExperimentConfig.from_json('{"train": {"epochs": true}}')
    with pytest.raises(ConfigError, match="'optim.lr' must be a float"):
        ExperimentConfig.from_dict({"optim": {"lr": False}})


def test_a_dataset_too_large_for_the_machine_is_refused_with_its_estimate(monkeypatch):
    monkeypatch.setenv(BUDGET_VARIABLE, "8")
    huge = ExperimentConfig.from_flat({**SYNTHETIC, "dataset.n_samples": "1000000", "dataset.dim": "10000"})
    needed = estimate(huge)
    assert 100 * 2**30 < needed.total < 130 * 2**30  # 10^10 values, built at 12 bytes a value
    with pytest.raises(ConfigError, match=r"needs about 11\d\.\d GB of memory.*more than the 8\.0 GB set by "
                                          r"MTL_MEMORY_BUDGET_GB.*dataset\.n_samples, dataset\.dim"):
        validate(huge)
    validate(ExperimentConfig.from_flat(SYNTHETIC))  # the default size fits


def test_a_huge_batch_of_wide_activations_counts_too(monkeypatch):
    monkeypatch.setenv(BUDGET_VARIABLE, "8")
    wide = ExperimentConfig.from_flat({"dataset.image_size": "64", "model.width": "1024", "train.batch_size": "65536"})
    assert estimate(wide).model > 8 * 2**30
    with pytest.raises(ConfigError, match="needs about .* GB of memory.*model.width, train.batch_size"):
        validate(wide)


def test_the_budget_is_half_of_this_machine_unless_set(monkeypatch):
    monkeypatch.delenv(BUDGET_VARIABLE, raising=False)
    assert memory_budget() == machine_memory() // 2
    assert machine_memory() > 2**28  # a real number of bytes, not a default
    monkeypatch.setenv(BUDGET_VARIABLE, "0.5")
    assert memory_budget() == 2**29


def test_the_divergence_hint_names_the_extreme_setting():
    weighted = ExperimentConfig.from_flat({"loss.weights.shape": "500"})
    message = diverged_message(weighted, "shape", float("nan"), 12)
    assert "loss.weights.shape=500" in message and "likely cause" in message
    decayed = ExperimentConfig.from_flat({"reg.weight_decay": "0.5", "optim.lr": "0.01"})
    assert "reg.weight_decay=0.5" in diverged_message(decayed, "shape", float("inf"), 3)
    plain = ExperimentConfig.from_flat({"optim.lr": "5"})
    assert "lower learning rate (optim.lr, e.g. 0.5)" in diverged_message(plain, "shape", float("nan"), 3)


def test_a_config_file_with_bad_utf8_or_absurd_nesting_is_one_sentence(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"seed": "\xff\xfe"}')
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    for path, words in ((bad, "is not UTF-8 text"), (deep, "nested too deeply")):
        assert main(["train", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
