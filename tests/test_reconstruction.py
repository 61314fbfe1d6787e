"""The reconstruction task (an autoencoder on the shared trunk) and few labels (train.label_fraction)."""
import pytest
import torch

from mtlcore import ConfigError, ExperimentConfig, fit, validate
from mtlcore.data import dataset_info, load_dataset
from mtlcore.engine import LABELLED, Callback, TrainingRun
from mtlcore.predict import load_model, predict_tensor


def digits(**flat) -> ExperimentConfig:
    settings = {"dataset.name": "digits", "tasks": "digit,reconstruction", "train.epochs": 3,
                "train.max_samples": 300, "device": "cpu", **flat}
    return ExperimentConfig.from_flat({k: str(v) for k, v in settings.items()})


class EpochLosses(Callback):
    def __init__(self):
        self.train = []

    def on_epoch_end(self, run, logs):
        self.train.append(logs["train"])


def test_every_image_dataset_offers_reconstruction_and_vector_datasets_do_not():
    for name in ("shapes", "digits", "multidigits"):
        spec = dataset_info(name).task("reconstruction")
        assert spec.kind == "reconstruction" and spec.metric == "mse" and not spec.needs_labels
        assert "reconstruction" not in dataset_info(name).default_tasks  # pages preselect the real tasks
    assert "reconstruction" not in [t.name for t in dataset_info("synthetic").tasks]
    data = load_dataset("digits")
    assert data.train.y["reconstruction"] is data.train.x  # its target is the input, not a copy


def test_the_reconstruction_loss_falls_during_training_and_predict_returns_the_rebuilt_picture(tmp_path):
    losses = EpochLosses()
    result = fit(digits(**{"tasks": "reconstruction", "train.epochs": 4}), [losses])
    first, last = losses.train[0]["reconstruction"]["mse"], losses.train[-1]["reconstruction"]["mse"]
    assert last < 0.8 * first
    assert result.summary["test"]["reconstruction"]["mse"] < first

    torch.save(result.run.checkpoint(), tmp_path / "model.pt")
    loaded = load_model(tmp_path / "model.pt")
    x = load_dataset("digits").test.x[0]
    prediction = predict_tensor(loaded, x)["reconstruction"]
    assert torch.tensor(prediction["image"]).shape == x.shape == torch.tensor(prediction["input"]).shape


def test_label_fraction_gives_the_supervised_gradient_of_training_on_the_labelled_samples_alone():
    # No BatchNorm: a batch's statistics would otherwise tie the labelled rows to the others.
    run = TrainingRun.create(digits(**{"train.label_fraction": 0.1, "reg.batchnorm": "false"}))
    train = run.splits["train"]
    labelled = train.y[LABELLED]
    assert int(labelled.sum()) == 30  # 10 % of the 300 training samples keep their labels
    y = {t: v for t, v in train.y.items()}
    _, losses = run.task_losses(train.x, y)
    masked = torch.autograd.grad(losses["digit"], run.trainable, allow_unused=True)

    outputs = run.model(train.x[labelled])
    alone = torch.nn.functional.cross_entropy(outputs["digit"], train.y["digit"][labelled])
    expected = torch.autograd.grad(alone, run.trainable, allow_unused=True)
    for got, want in zip(masked, expected):
        if want is None:
            assert got is None or not got.any()
        else:
            torch.testing.assert_close(got, want)
    # The reconstruction task needs no labels: it still sees every image.
    assert torch.isclose(losses["reconstruction"],
                         torch.nn.functional.mse_loss(run.model(train.x)["reconstruction"], train.x.flatten(1)))


def test_a_label_fraction_outside_its_range_is_one_sentence():
    with pytest.raises(ConfigError, match=r"train.label_fraction must be a number from 0.05 to 1"):
        validate(digits(**{"train.label_fraction": 0.01}))
