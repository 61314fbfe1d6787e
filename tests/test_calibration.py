"""Calibration: expected calibration error and temperature scaling (Guo et al., ICML 2017)."""
import math

import pytest
import torch

from mtlcore.calibration import expected_calibration_error, fit_temperature, nll, reliability_bins, softmax
from mtlcore.config import ExperimentConfig
from mtlcore.engine import fit
from mtlcore.predict import load_model, predict_tensor


def overconfident_logits(n=3000, classes=4, sharpen=4.0, seed=0):
    """Labels drawn from softmax(z); the model reports z * sharpen: right argmax, far too sure."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, classes, generator=g) * 1.5
    labels = torch.multinomial(torch.softmax(z, dim=-1), 1, generator=g).squeeze(1)
    return z * sharpen, labels


def test_ece_is_the_weighted_gap_between_accuracy_and_confidence():
    # Two predictions at 90 % confidence, one right, one wrong: accuracy 0.5 in that bin, ECE 0.4.
    p = 0.9
    logit = math.log(p / (1 - p))
    logits = torch.tensor([[logit, 0.0], [logit, 0.0]])
    labels = torch.tensor([0, 1])
    assert expected_calibration_error(logits, labels) == pytest.approx(0.4, abs=1e-5)
    bins = reliability_bins(logits, labels)
    assert len(bins) == 15 and sum(b["count"] for b in bins) == 2
    (full,) = [b for b in bins if b["count"]]
    assert full["lower"] < 0.9 <= full["upper"] and full["accuracy"] == 0.5


def test_a_fitted_temperature_undoes_overconfidence_and_lowers_ece_and_nll():
    val_logits, val_labels = overconfident_logits(seed=1)
    test_logits, test_labels = overconfident_logits(seed=2)
    t = fit_temperature(val_logits, val_labels)
    assert t == pytest.approx(4.0, rel=0.15)  # the sharpening it has to undo
    assert expected_calibration_error(test_logits, test_labels, t) < 0.5 * expected_calibration_error(test_logits, test_labels)
    assert nll(test_logits, test_labels, t) < nll(test_logits, test_labels)
    # The argmax does not move: accuracy is unchanged by the temperature.
    assert torch.equal((test_logits / t).argmax(-1), test_logits.argmax(-1))


def test_softmax_sharpens_below_one_and_flattens_above():
    logits = [2.0, 1.0, 0.0]
    assert max(softmax(logits, 0.5)) > max(softmax(logits, 1.0)) > max(softmax(logits, 3.0))
    assert sum(softmax(logits, 7.0)) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from mtlcore.callbacks import RunFiles

    out = tmp_path_factory.mktemp("calibrated")
    config = ExperimentConfig.from_flat({"dataset.name": "digits", "tasks": "digit,ink", "train.epochs": 3,
                                         "train.max_samples": 600, "device": "cpu"})
    return fit(config, [RunFiles(out)]), out


def test_training_fits_a_temperature_on_validation_that_lowers_its_nll(trained):
    result, _ = trained
    val, test = result.summary["val"]["digit"], result.summary["test"]["digit"]
    assert val["nll_calibrated"] <= val["nll"] + 1e-6
    assert test["temperature"] > 0 and test["temperature"] != 1.0
    for key in ("accuracy", "ece", "ece_calibrated", "nll", "nll_calibrated"):
        assert key in test
    assert 0 <= test["ece"] <= 1
    assert "ece" not in result.summary["test"]["ink"]  # regression has no calibration error
    bins = result.summary["calibration"]["digit"]["bins"]
    assert sum(b["count"] for b in bins) == 270  # every test digit is in one bin


def test_predict_uses_the_temperature_stored_with_the_checkpoint(trained):
    result, out = trained
    loaded = load_model(out / "checkpoint.pt")
    t = result.summary["test"]["digit"]["temperature"]
    assert loaded.temperatures["digit"] == pytest.approx(t)
    x = result.run.splits["test"].x[0].cpu()
    prediction = predict_tensor(loaded, x)["digit"]
    assert prediction["temperature"] == pytest.approx(t)
    expected = softmax(prediction["logits"], t)
    assert list(prediction["probabilities"].values()) == pytest.approx(expected, abs=1e-5)
