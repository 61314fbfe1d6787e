"""Speed choices change how fast, never what is learned (behaviour only: no timings here)."""
import copy
import math

import pytest
import torch

from mtlcore import Callback, ExperimentConfig, fit, load_dataset
from mtlcore.engine import TrainingRun
from mtlcore.models import build_model
from mtlcore.packed import fit_many, fit_packed, pack_groups, pack_key
from mtlcore.predict import load_model
from mtlcore.speed import Speed, choose_speed, forward_flops, native_bfloat16, stacking_pays


def config(**flat):
    return ExperimentConfig.from_flat({"device": "cpu", **flat})


def shapes_model(**flat):
    cfg = config(**{"dataset.n_samples": 100, "tasks": "shape,color,size", **flat})
    data = load_dataset("shapes", n_samples=100)
    torch.manual_seed(0)
    return build_model(cfg, [data.tasks[t] for t in cfg.tasks], "image", data.input_shape), data


# ----- the choices ----------------------------------------------------------------------

def test_auto_precision_is_float32_for_a_tiny_model_and_explicit_choices_are_obeyed():
    model, data = shapes_model(**{"model.width": 4})
    cpu = torch.device("cpu")
    assert choose_speed("auto", cpu, model, data.input_shape, 8).precision == "float32"
    assert choose_speed("float32", cpu, model, data.input_shape, 8).precision == "float32"
    assert choose_speed("bfloat16", cpu, model, data.input_shape, 8).precision == "bfloat16"
    with pytest.raises(ValueError, match="auto, float32, bfloat16"):
        choose_speed("half", cpu, model, data.input_shape, 8)


def test_auto_precision_picks_bfloat16_only_where_it_is_native():
    model, data = shapes_model(**{"model.width": 32})
    speed = choose_speed("auto", torch.device("cpu"), model, data.input_shape, 4096)
    assert speed.precision == ("bfloat16" if native_bfloat16(torch.device("cpu")) else "float32")
    assert not native_bfloat16(torch.device("meta"))


def test_the_flop_count_matches_torchs_own_counter():
    from torch.utils.flop_counter import FlopCounterMode

    model, data = shapes_model()
    x = torch.zeros(1, *data.input_shape)
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    assert forward_flops(model, x) == counter.get_total_flops()


def test_config_rejects_an_unknown_precision():
    from mtlcore import ConfigError, validate

    with pytest.raises(ConfigError, match="train.precision"):
        validate(config(**{"train.precision": "fp8"}))


def test_channels_last_computes_the_same_outputs():
    model, data = shapes_model()
    model.eval()
    x = data.train.x[:16]
    speed = Speed("cpu", None, channels_last=True, fused_optimizer=False)
    fast = speed.prepare_model(copy.deepcopy(model))
    with torch.no_grad():
        plain, last = model(x), fast(speed.prepare_inputs(x))
    assert all(torch.allclose(plain[t], last[t], atol=1e-5) for t in plain)


def test_a_checkpoint_trained_channels_last_loads_into_a_plain_model(tmp_path):
    from mtlcore.callbacks import RunFiles

    cfg = config(**{"dataset.n_samples": 100, "dataset.image_size": 16, "model.width": 8, "train.epochs": 1})
    result = fit(cfg, [RunFiles(tmp_path)])
    assert result.run.speed.channels_last
    loaded = load_model(tmp_path / "checkpoint.pt")
    x = result.run.splits["test"].x[:8]
    result.run.model.eval()
    with torch.no_grad():
        a, b = result.run.model(x), loaded.model(x.contiguous())
    assert all(torch.allclose(a[t], b[t], atol=1e-5) for t in a)


def test_bfloat16_learns_as_well_as_float32():
    # Mixed precision keeps float32 weights, gradients and losses: after the
    # same epochs the accuracy is within seed noise of float32's.
    flat = {"dataset.n_samples": 800, "dataset.image_size": 16, "model.width": 16, "tasks": "shape,color,size",
            "train.epochs": 4}
    test = {p: fit(config(**flat, **{"train.precision": p})).summary["test"] for p in ("float32", "bfloat16")}
    for task in ("shape", "color"):
        assert test["bfloat16"][task]["accuracy"] > 0.35  # chance 0.25
        assert abs(test["bfloat16"][task]["accuracy"] - test["float32"][task]["accuracy"]) < 0.12
    assert abs(test["bfloat16"]["size"]["r2"] - test["float32"]["size"]["r2"]) < 0.1


def test_bfloat16_runs_are_reproducible_and_report_their_precision():
    flat = {"dataset.name": "digits", "tasks": "digit,ink", "train.epochs": 1, "train.max_samples": 200,
            "train.precision": "bfloat16"}
    a, b = fit(config(**flat)).summary, fit(config(**flat)).summary
    assert a["test"] == b["test"]
    assert a["speed"]["precision"] == "bfloat16"


def test_divergence_is_caught_even_when_no_step_is_logged(tiny):
    result = fit(config(**{**tiny, "optim.name": "sgd", "optim.lr": "9", "optim.momentum": "0.99",
                           "reg.batchnorm": "false", "train.epochs": "3", "train.log_every": "1000"}))
    assert result.status == "diverged"


# ----- packed training ---------------------------------------------------------------------

def study(dataset="synthetic", seeds=(0, 1), **flat):
    tasks = {"synthetic": ("task_a", "task_b"), "digits": ("digit", "parity")}[dataset]
    base = {"dataset.name": dataset, "train.epochs": 2, **flat}
    if dataset == "synthetic":
        base.update({"dataset.n_samples": 600})
    else:
        base.update({"dataset.n_samples": 400, "model.width": 8})
    configs = []
    for seed in seeds:
        for task in tasks:
            configs.append(config(**base, tasks=task, **{"model.arch": "single", "seed": seed}))
        configs.append(config(**base, tasks=",".join(tasks), **{"model.arch": "hard", "seed": seed,
                                                                  "loss.weights." + tasks[0]: 2.0}))
    return configs


def assert_same_results(packed, alone, tolerance):
    for p, a in zip(packed, alone):
        assert p.status == a.status == "finished"
        assert p.summary["steps"] == a.summary["steps"]
        assert set(p.summary["test"]) == set(a.summary["test"])
        for task, metrics in a.summary["test"].items():
            for name, value in metrics.items():
                assert p.summary["test"][task][name] == pytest.approx(value, rel=tolerance, abs=tolerance), (task, name)


def test_packed_members_learn_what_they_learn_alone():
    configs = study()
    assert pack_groups(configs) == [list(range(len(configs)))]  # baselines and MTL model, both seeds: one pack
    assert_same_results(fit_packed(configs), [fit(c) for c in configs], tolerance=0.02)


def test_packed_convolutional_members_learn_what_they_learn_alone():
    configs = study("digits", seeds=(0,))
    assert_same_results(fit_packed(configs), [fit(c) for c in configs], tolerance=0.05)


def test_members_with_different_data_options_pack_together():
    configs = [config(**{"dataset.name": "synthetic", "dataset.n_samples": 600, "dataset.correlation": p,
                         "tasks": "task_a,task_b", "train.epochs": 1}) for p in (0.9, -0.9)]
    assert pack_groups(configs) == [[0, 1]]
    assert_same_results(fit_packed(configs), [fit(c) for c in configs], tolerance=0.02)


class Recorder(Callback):
    def __init__(self):
        self.steps, self.epochs, self.ended = [], [], None

    def on_step_end(self, run, logs):
        self.steps.append(logs)

    def on_epoch_end(self, run, logs):
        self.epochs.append(logs)

    def on_fit_end(self, run, result):
        self.ended = result.status


def test_packed_members_report_to_their_callbacks_as_fit_does():
    configs = study(seeds=(0,), **{"train.log_every": 3})
    alone, packed = Recorder(), [Recorder() for _ in configs]
    fit(configs[2], [alone])
    fit_packed(configs, [[r] for r in packed])
    mtl = packed[2]
    assert [s["step"] for s in mtl.steps] == [s["step"] for s in alone.steps]
    assert mtl.steps[0]["weight"] == alone.steps[0]["weight"] == {"task_a": 2.0, "task_b": 1.0}
    assert len(mtl.epochs) == len(alone.epochs) == 2
    assert set(mtl.epochs[-1]["val"]) == {"task_a", "task_b"}
    assert set(packed[0].epochs[-1]["val"]) == {"task_a"}  # a baseline logs its own task only
    assert all(r.ended == "finished" for r in packed)


def test_a_cancelled_member_stops_and_the_others_finish():
    class StopAfter(Recorder):
        def should_stop(self):
            return len(self.steps) >= 2

    configs = study(seeds=(0,))
    recorders = [Recorder(), StopAfter(), Recorder()]
    results = fit_packed(configs, [[r] for r in recorders])
    assert [r.status for r in results] == ["finished", "cancelled", "finished"]
    assert results[1].summary["steps"] == 2 and "test" in results[1].summary


def test_what_cannot_be_packed_trains_alone():
    base = {"dataset.name": "synthetic", "tasks": "task_a,task_b"}
    assert pack_key(config(**base, **{"weighting.method": "upgrad"})) is None  # combines gradients
    assert pack_key(config(**base, **{"weighting.method": "uncertainty"})) is None  # learns its weights
    assert pack_key(config(**base, **{"train.patience": 2})) is None
    assert pack_key(config(**base, **{"train.diagnostics_every": 5})) is None
    assert pack_key(config(**base, **{"model.arch": "soft"})) is None  # a penalty ties its columns
    assert pack_key(config(**base, **{"weighting.method": "dwa"})) is not None
    hard, mmoe = config(**base), config(**base, **{"model.arch": "mmoe"})
    assert pack_key(hard) != pack_key(mmoe)


def test_convolutional_members_are_not_stacked_on_a_cpu():
    configs = study("digits", seeds=(0,))
    model, _ = shapes_model()
    assert not stacking_pays(torch.device("cpu"), model)
    assert pack_groups(configs) == [[0], [1], [2]]
    assert pack_groups(configs, force=True) == [[0, 1, 2]]
    results = fit_many(configs[:1])
    assert results[0].status == "finished" and "packed" not in results[0].summary


def test_fit_many_keeps_the_order_of_its_configs():
    configs = study(seeds=(0,)) + [config(**{"dataset.name": "synthetic", "dataset.n_samples": 600,
                                              "tasks": "task_a,task_b", "train.epochs": 1,
                                              "weighting.method": "upgrad"})]
    results = fit_many(configs)
    assert [tuple(r.summary["test"]) for r in results] == [tuple(c.tasks) for c in configs]
    assert [r.summary.get("packed", 1) for r in results] == [3, 3, 3, 1]
    assert all(math.isfinite(m["loss"]) for r in results for m in r.summary["test"].values())


# ----- the cheap cosine ------------------------------------------------------------------

def synthetic_run(correlation, cosine):
    run = TrainingRun.create(config(**{
        "dataset.name": "synthetic", "dataset.correlation": correlation, "dataset.n_samples": 400,
        "tasks": "task_a,task_b", "model.width": 16, "train.diagnostics_cosine": cosine}))
    with torch.no_grad():  # tie the heads, so that opposed tasks must fight over the trunk
        for p_a, p_b in zip(run.model.task_parameters("task_a"), run.model.task_parameters("task_b")):
            p_b.copy_(p_a)
    split = run.splits["train"]
    return run, split.x[:64], {t: v[:64] for t, v in split.y.items()}


@pytest.mark.parametrize("correlation", [-1.0, 1.0])
def test_the_features_cosine_sees_the_conflict_the_exact_one_sees(correlation):
    signs = []
    for cosine in ("exact", "features"):
        run, x, y = synthetic_run(correlation, cosine)
        logs = run.diagnostics.after_step(run, x, y)
        signs.append(math.copysign(1, logs["cosine"]["task_a|task_b"]))
        assert "affinity" in logs  # the first measured step also takes the lookahead
    assert signs[0] == signs[1] == math.copysign(1, correlation)


def test_the_features_cosine_falls_back_to_exact_without_one_shared_representation():
    cfg = {"dataset.n_samples": 100, "dataset.image_size": 16, "model.width": 8, "tasks": "shape,color",
           "model.arch": "mmoe"}
    logs = []
    for cosine in ("exact", "features"):
        run = TrainingRun.create(config(**cfg, **{"train.diagnostics_cosine": cosine}))
        split = run.splits["train"]
        logs.append(run.diagnostics.after_step(run, split.x[:16], {t: v[:16] for t, v in split.y.items()}))
    assert logs[0]["cosine"] == pytest.approx(logs[1]["cosine"])


def test_a_lookahead_is_taken_once_per_gap_and_on_each_epochs_first_measured_step():
    from mtlcore.diagnostics import LOOKAHEAD_GAP

    class Steps(Callback):
        def __init__(self):
            self.steps = []

        def on_step_end(self, run, logs):
            self.steps.append(logs)

    recorder = Steps()
    fit(config(**{"dataset.name": "synthetic", "dataset.n_samples": 600, "tasks": "task_a,task_b",
                  "train.epochs": 2, "train.batch_size": 16, "train.diagnostics_every": 1}), [recorder])
    per_epoch = len(recorder.steps) // 2
    with_affinity = [s["step"] for s in recorder.steps if "affinity" in s["diagnostics"]]
    first_epoch = [1 + k * LOOKAHEAD_GAP for k in range((per_epoch - 1) // LOOKAHEAD_GAP + 1)]
    assert with_affinity[:len(first_epoch)] == first_epoch
    assert per_epoch + 1 in with_affinity  # the second epoch starts with one
    assert all("cosine" in s["diagnostics"] for s in recorder.steps)
