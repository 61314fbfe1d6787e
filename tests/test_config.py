"""The experiment config: JSON and flat-key round trips, and clear errors."""
import pytest

from mtlcore.config import ConfigError, ExperimentConfig, parse_assignment, set_key, validate


def test_json_round_trip_keeps_every_setting():
    config = ExperimentConfig.from_flat({
        "dataset.name": "synthetic", "dataset.correlation": "0.25", "tasks": "task_a,task_b",
        "model.arch": "mmoe", "model.num_experts": "6", "loss.weights.task_a": "2.5",
        "optim.lr": "0.01", "reg.batchnorm": "false", "seed": "7",
    })
    again = ExperimentConfig.from_json(config.to_json())
    assert again == config
    assert again.dataset.options == {"correlation": 0.25}
    assert again.loss.weights == {"task_a": 2.5}
    assert again.reg.batchnorm is False and again.seed == 7


def test_flat_keys_round_trip_like_a_url():
    config = ExperimentConfig.from_flat({"tasks": "shape,color", "loss.weights.color": "0.5", "dataset.n_samples": "500"})
    flat = config.to_flat()
    assert flat["tasks"] == "shape,color"
    assert flat["loss.weights.color"] == "0.5"
    assert flat["dataset.n_samples"] == "500"
    assert ExperimentConfig.from_flat(flat) == config
    # Defaults are left out, so a shared link stays short.
    assert "model.arch" not in flat


def test_set_key_converts_text_to_the_field_type():
    config = set_key(ExperimentConfig(), "train.epochs", "3")
    assert config.train.epochs == 3
    config = set_key(config, "reg.batchnorm", "off")
    assert config.reg.batchnorm is False
    assert parse_assignment("optim.lr = 0.1") == ("optim.lr", "0.1")


@pytest.mark.parametrize("key, value, words", [
    ("optim.lr", "fast", "must be a float"),
    ("train.epoch", "3", "Unknown setting 'train.epoch'"),
    ("colour", "red", "Unknown setting 'colour'"),
    ("train.epochs", "2.5", "must be an int"),
])
def test_bad_keys_and_values_name_the_setting(key, value, words):
    with pytest.raises(ConfigError, match=words):
        set_key(ExperimentConfig(), key, value)


def test_malformed_json_is_one_sentence():
    with pytest.raises(ConfigError, match="not valid JSON"):
        ExperimentConfig.from_json("{not json")
    with pytest.raises(ConfigError, match="Unknown setting 'optim.speed'"):
        ExperimentConfig.from_json('{"optim": {"speed": 1}}')


@pytest.mark.parametrize("flat, words", [
    ({"tasks": "shape,flavour"}, "has no task 'flavour'"),
    ({"tasks": ""}, "at least one task"),
    ({"optim.lr": "-0.1"}, "learning rate must be above 0"),
    ({"loss.weights.shape": "0", "loss.weights.color": "0", "loss.weights.size": "0"}, "All loss weights are zero"),
    ({"dataset.name": "imagenet"}, "Unknown dataset 'imagenet'"),
    ({"dataset.name": "digits", "tasks": "shape"}, "'digits' has no task 'shape'"),
    ({"model.arch": "tower"}, "Unknown architecture 'tower'"),
    ({"model.arch": "single"}, "exactly one task"),
    ({"weighting.method": "magic"}, "Unknown weighting method 'magic'"),
    ({"dataset.flavour": "1"}, "no option 'flavour'"),
    ({"reg.dropout": "1.5"}, "reg.dropout"),
    ({"optim.name": "lbfgs"}, "Unknown optimiser"),
])
def test_validation_names_what_is_wrong_and_what_is_allowed(flat, words):
    with pytest.raises(ConfigError, match=words):
        validate(ExperimentConfig.from_flat(flat))


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ConfigError) as error:
        validate(ExperimentConfig.from_flat({"model.arch": "tower"}))
    for name in ("hard", "soft", "cross_stitch", "mmoe", "single"):
        assert name in str(error.value)


def test_default_config_is_valid():
    assert validate(ExperimentConfig()) == ExperimentConfig()


def test_a_stored_config_from_another_version_still_loads_leniently():
    text = ExperimentConfig().to_json().replace('"seed": 0', '"seed": 0, "old_setting": 1')
    with pytest.raises(ConfigError, match="old_setting"):
        ExperimentConfig.from_json(text)
    assert ExperimentConfig.from_json(text, strict=False) == ExperimentConfig()


@pytest.mark.parametrize("flat, words", [
    ({"train.batch_size": "1"}, "between 2 and 65536"),
    ({"device": "cudax"}, "Unknown device 'cudax'"),
])
def test_impossible_batch_sizes_and_devices(flat, words):
    with pytest.raises(ConfigError, match=words):
        validate(ExperimentConfig.from_flat(flat))


def test_a_weight_that_is_not_a_number_is_one_sentence():
    with pytest.raises(ConfigError, match="loss.weights.shape"):
        ExperimentConfig.from_json('{"loss": {"weights": {"shape": "abc"}}}')
