"""Diagnostics: gradient conflict and task affinity, without changing training."""
import json

import pytest
import torch

from mtlcore import Callback, ExperimentConfig, fit
from mtlcore.diagnostics import Diagnostics, cosine_matrix
from mtlcore.engine import TrainingRun


def config(**flat):
    return ExperimentConfig.from_flat({"device": "cpu", **flat})


def synthetic(correlation, **flat):
    return config(**{
        "dataset.name": "synthetic", "dataset.correlation": correlation, "dataset.n_samples": 400,
        "tasks": "task_a,task_b", "model.arch": "hard", "model.width": 16, "train.epochs": 1,
        "train.max_samples": 256, **flat,
    })


def tiny_shapes(**flat):
    return config(**{
        "dataset.n_samples": 100, "dataset.image_size": 16, "model.width": 8, "tasks": "shape,color,size",
        "train.max_samples": 64, "train.batch_size": 16, "train.epochs": 1, **flat,
    })


class Recorder(Callback):
    def __init__(self):
        self.steps, self.epochs = [], []

    def on_step_end(self, run, logs):
        self.steps.append(logs.get("diagnostics"))

    def on_epoch_end(self, run, logs):
        self.epochs.append(logs.get("diagnostics"))


def epoch_diagnostics(cfg):
    recorder = Recorder()
    fit(cfg, [recorder])
    return recorder


def test_cosine_matrix_by_hand():
    grads = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    expected = torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 1.0]])
    assert torch.allclose(cosine_matrix(grads), expected)


def first_batch_diagnostics(correlation):
    """Conflict and affinity on the first batch, with task_b's head a copy of task_a's.

    Why tie the heads: a linear head can flip a sign, so two tasks with
    correlation -1 need not fight over the trunk once their heads differ in
    sign (hard sharing learns exactly that within a few dozen steps). With
    equal heads the trunk must serve y_b = -y_a and y_b = y_a directly.
    """
    run = TrainingRun.create(synthetic(correlation))
    with torch.no_grad():
        for p_a, p_b in zip(run.model.task_parameters("task_a"), run.model.task_parameters("task_b")):
            p_b.copy_(p_a)
    split = run.splits["train"]
    x, y = split.x[:64], {t: v[:64] for t, v in split.y.items()}
    diagnostics = Diagnostics(1)
    step = diagnostics.after_step(run, x, y)
    return step, diagnostics.end_epoch(run)


def test_opposed_tasks_conflict_and_aligned_tasks_agree():
    opposed, opposed_epoch = first_batch_diagnostics(-1.0)
    aligned, aligned_epoch = first_batch_diagnostics(1.0)
    assert opposed["cosine"]["task_a|task_b"] < -0.5
    assert aligned["cosine"]["task_a|task_b"] > 0.5
    assert opposed_epoch["conflict_fraction"] == {"task_a|task_b": 1.0}
    assert aligned_epoch["conflict_fraction"] == {"task_a|task_b": 0.0}
    # A step on task_a hurts the opposed task_b and helps the aligned one.
    assert opposed["affinity"]["task_a->task_b"] < 0 < aligned["affinity"]["task_a->task_b"]


def test_logs_are_json_with_one_entry_per_pair_and_per_ordered_pair():
    recorder = epoch_diagnostics(tiny_shapes(**{"train.diagnostics_every": 2}))
    tasks = ["shape", "color", "size"]
    measured = [s for s in recorder.steps if s is not None]
    assert len(measured) == 2  # 4 steps, every 2nd measured
    step = measured[0]
    assert set(step["cosine"]) == {"shape|color", "shape|size", "color|size"}
    assert all(-1 <= c <= 1 for c in step["cosine"].values())
    assert set(step["affinity"]) == {f"{i}->{j}" for i in tasks for j in tasks}
    epoch = recorder.epochs[-1]
    assert epoch["tasks"] == tasks and epoch["steps"] == 2
    assert all(0 <= f <= 1 for f in epoch["conflict_fraction"].values())
    # A small step on a task's own gradient lowers its own loss.
    assert all(epoch["affinity"][f"{t}->{t}"] > 0 for t in tasks)
    json.dumps(recorder.epochs)


@pytest.mark.parametrize("arch", ["cross_stitch", "mmoe"])
def test_other_shared_architectures_are_measured(arch):
    run = TrainingRun.create(tiny_shapes(**{"model.arch": arch}))
    split = run.splits["train"]
    logs = Diagnostics(1).after_step(run, split.x[:16], {t: v[:16] for t, v in split.y.items()})
    assert len(logs["cosine"]) == 3 and len(logs["affinity"]) == 9
    assert all(-1 <= c <= 1 for c in logs["cosine"].values())


def test_soft_sharing_has_nothing_to_measure():
    recorder = epoch_diagnostics(tiny_shapes(**{"model.arch": "soft", "train.diagnostics_every": 1}))
    assert all(s == {} for s in recorder.steps)
    assert recorder.epochs == [{}]


# equal, RLW, DWA and FAMO hand over their loss coefficients in closed form; uncertainty needs autograd.
@pytest.mark.parametrize("method", ["equal", "rlw", "dwa", "uncertainty", "famo", "upgrad"])
def test_diagnostics_do_not_change_training(method):
    # Dropout and BatchNorm are on: measuring must not draw random numbers
    # from training's stream nor move the running statistics, and the update
    # built from the measured per-task gradients (instead of one more
    # backward pass) is the plain step's, up to rounding, for the model and
    # for the method's own parameters (uncertainty's log-variances).
    flat = {"reg.dropout": 0.3, "reg.l1": 1e-3, "weighting.method": method}
    after = []
    for measure in (False, True):
        run = TrainingRun.create(tiny_shapes(**flat))
        split = run.splits["train"]
        torch.manual_seed(1)
        run.train_step(split.x[:16], {t: v[:16] for t, v in split.y.items()}, measure=measure)
        params = list(run.model.parameters()) + list(run.weighting.parameters())
        after.append((torch.random.get_rng_state(), dict(run.model.named_buffers()),
                      [p.grad for p in params], run.diagnostics.latest))
    (rng_plain, buffers_plain, grads_plain, _), (rng_measured, buffers_measured, grads_measured, logs) = after
    assert logs["cosine"] and logs["affinity"]  # it did measure
    assert torch.equal(rng_plain, rng_measured)
    assert all(torch.equal(buffers_plain[k], buffers_measured[k]) for k in buffers_plain)
    assert all((a - b).norm() <= 1e-4 * a.norm() + 1e-9 for a, b in zip(grads_plain, grads_measured))


def test_measuring_leaves_gradients_and_mode_alone():
    run = TrainingRun.create(tiny_shapes())
    split = run.splits["train"]
    x, y = split.x[:16], {t: v[:16] for t, v in split.y.items()}
    run.train_step(x, y)
    grads = {n: p.grad.clone() for n, p in run.model.named_parameters() if p.grad is not None}
    run.model.eval()
    logs = Diagnostics(1).after_step(run, x, y)
    assert logs["cosine"]
    assert not run.model.training
    assert all(torch.equal(p.grad, grads[n]) for n, p in run.model.named_parameters() if p.grad is not None)
