"""Probabilistic regression: loss.regression=gaussian_nll (Kendall & Gal, NeurIPS 2017)."""
import math

import pytest
import torch

from mtlcore.config import ConfigError, ExperimentConfig, validate
from mtlcore.engine import fit
from mtlcore.losses import make_loss
from mtlcore.packed import pack_key
from mtlcore.predict import load_model, predict_tensor


def gaussian(**flat):
    base = {"dataset.name": "synthetic", "tasks": "task_a", "model.arch": "single", "dataset.n_samples": 2000,
            "train.epochs": 5, "model.width": 16, "device": "cpu", "loss.regression": "gaussian_nll"}
    return ExperimentConfig.from_flat({**base, **flat})


def test_the_loss_is_half_the_squared_error_over_the_variance_plus_the_log_variance():
    loss = make_loss(_spec(), gaussian().loss)
    output = torch.tensor([[1.0, math.log(4.0)], [0.0, 0.0]])  # (mu, log sigma^2)
    target = torch.tensor([3.0, 1.0])
    expected = 0.5 * ((2.0 ** 2 / 4.0 + math.log(4.0)) + (1.0 + 0.0)) / 2
    assert float(loss(output, target)) == pytest.approx(expected)
    assert loss.output_size == 2


def _spec():
    from mtlcore.data import dataset_info

    return dataset_info("synthetic").task("task_a")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from mtlcore.callbacks import RunFiles

    out = tmp_path_factory.mktemp("gaussian")
    return fit(gaussian(), [RunFiles(out)]), out


def test_the_90_percent_interval_covers_about_90_percent_of_test_points(trained):
    result, _ = trained
    test = result.summary["test"]["task_a"]
    assert 0.80 <= test["coverage90"] <= 0.97
    assert math.isfinite(test["nll"]) and "mae" in test


def test_point_losses_report_no_likelihood():
    result = fit(gaussian(**{"loss.regression": "mse", "train.epochs": 1, "dataset.n_samples": 300}))
    assert "coverage90" not in result.summary["test"]["task_a"] and "mae" in result.summary["test"]["task_a"]


def test_predict_gives_a_mean_and_a_standard_deviation(trained):
    result, out = trained
    loaded = load_model(out / "checkpoint.pt")
    prediction = predict_tensor(loaded, result.run.splits["test"].x[0].cpu())["task_a"]
    assert prediction["std"] > 0 and math.isfinite(prediction["value"])


def test_gaussian_runs_train_alone_not_packed():
    assert pack_key(gaussian()) is None
    assert pack_key(gaussian(**{"loss.regression": "mse"})) is not None


def test_an_unknown_regression_loss_names_gaussian_nll_among_the_choices():
    with pytest.raises(ConfigError, match="gaussian_nll"):
        validate(gaussian(**{"loss.regression": "laplace"}))


def test_the_config_lists_the_same_regression_losses_as_the_loss_registry():
    from mtlcore.config import REGRESSION_LOSSES
    from mtlcore.losses import REGRESSION_LOSS_NAMES

    assert REGRESSION_LOSSES == REGRESSION_LOSS_NAMES
