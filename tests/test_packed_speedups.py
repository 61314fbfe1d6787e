"""Packing by grouped layers changes how fast a study trains, never what its members learn (no timings here)."""
import pytest
import torch
from torch import nn

from mtlcore import ExperimentConfig, fit, load_dataset
from mtlcore.models import build_model
from mtlcore.packed import GroupedBatchNorm, GroupedLinear, can_group, fit_many, fit_packed, pack_groups


def config(**flat):
    return ExperimentConfig.from_flat({"device": "cpu", "dataset.name": "synthetic", "dataset.n_samples": 600,
                                       "tasks": "task_a,task_b", "train.epochs": 2, **flat})


def assert_same_results(packed, alone, tolerance=0.02):
    for p, a in zip(packed, alone):
        assert p.status == a.status == "finished"
        assert p.summary["steps"] == a.summary["steps"]
        for task, metrics in a.summary["test"].items():
            for name, value in metrics.items():
                assert p.summary["test"][task][name] == pytest.approx(value, rel=tolerance, abs=tolerance), (task, name)


# ----- the grouped layers ------------------------------------------------------------------

def test_a_grouped_linear_layer_sends_each_members_rows_through_its_own_weights():
    torch.manual_seed(0)
    layers = [nn.Linear(5, 3) for _ in range(4)]
    grouped = GroupedLinear(torch.stack([l.weight.detach() for l in layers]),
                            torch.stack([l.bias.detach() for l in layers]))
    x = torch.randn(4, 6, 2, 5)  # 4 members, 6 rows each, a middle dimension (MMoE's experts)
    expected = torch.stack([layer(rows) for layer, rows in zip(layers, x)])
    assert torch.allclose(grouped(x.flatten(0, 1)), expected.flatten(0, 1), atol=1e-6)


@pytest.mark.parametrize("training", [True, False])
def test_a_grouped_batchnorm_keeps_each_members_statistics_apart(training):
    torch.manual_seed(0)
    layers = [nn.BatchNorm1d(3) for _ in range(4)]
    for k, layer in enumerate(layers):  # different affine maps and running averages
        with torch.no_grad():
            layer.weight.uniform_(0.5, 2.0)
            layer.bias.uniform_(-1.0, 1.0)
            layer.running_mean.fill_(k)
            layer.running_var.fill_(k + 1.0)
    state = {n: torch.stack([l.state_dict()[n] for l in layers]) for n in layers[0].state_dict()}
    grouped = GroupedBatchNorm(layers[0], 4, state)
    grouped.train(training)
    for layer in layers:
        layer.train(training)
    x = torch.randn(4, 8, 3) * torch.arange(1.0, 5.0).view(4, 1, 1)  # each member's rows on their own scale
    expected = torch.stack([layer(rows) for layer, rows in zip(layers, x)])
    assert torch.allclose(grouped(x.flatten(0, 1)), expected.flatten(0, 1), atol=1e-5)
    assert torch.allclose(grouped.running_mean, torch.stack([l.running_mean for l in layers]), atol=1e-6)
    assert torch.allclose(grouped.running_var, torch.stack([l.running_var for l in layers]), atol=1e-6)


def test_mlps_are_grouped_and_convolutions_and_cross_stitch_units_are_vmapped():
    synthetic, digits = load_dataset("synthetic", n_samples=600), load_dataset("digits")

    def model(data, **flat):
        cfg = config(**flat)
        return build_model(cfg, [data.tasks[t] for t in cfg.tasks], data.input_kind, data.input_shape)

    assert can_group(model(synthetic, **{"model.arch": "hard"}))
    assert can_group(model(synthetic, **{"model.arch": "mmoe"}))
    assert not can_group(model(synthetic, **{"model.arch": "cross_stitch"}))
    assert not can_group(model(digits, **{"dataset.name": "digits", "tasks": "digit,parity"}))


# ----- whole runs -------------------------------------------------------------------------------

def relatedness(arch, correlations=(0.9, -0.5), seeds=(0, 1)):
    """Baselines and one multi-task model per correlation and seed, as the relatedness study plans them."""
    configs = []
    for p in correlations:
        for seed in seeds:
            flat = {"dataset.correlation": p, "seed": seed}
            configs += [config(**flat, tasks=t, **{"model.arch": "single"}) for t in ("task_a", "task_b")]
            configs.append(config(**flat, **{"model.arch": arch}))
    return configs


def test_mmoe_members_packed_learn_what_they_learn_alone():
    configs = [c for c in relatedness("mmoe") if c.model.arch == "mmoe"]
    assert pack_groups(configs) == [[0, 1, 2, 3]]
    assert_same_results(fit_packed(configs), [fit(c) for c in configs])


def test_a_relatedness_study_packs_into_one_group_per_architecture_and_matches_lone_runs():
    configs = relatedness("hard") + [c for c in relatedness("mmoe") if c.model.arch == "mmoe"]
    hard = [i for i, c in enumerate(configs) if c.model.arch != "mmoe"]
    mmoe = [i for i, c in enumerate(configs) if c.model.arch == "mmoe"]
    assert pack_groups(configs) == [hard, mmoe]
    results = fit_many(configs)
    assert [r.summary["packed"] for r in results] == [len(hard)] * len(hard) + [len(mmoe)] * len(mmoe)
    assert_same_results(results, [fit(c) for c in configs])


def test_a_packed_members_batchnorm_averages_predict_as_its_lone_run_does():
    cfg = config(**{"model.arch": "hard", "dataset.correlation": 0.5})
    packed = fit_packed([cfg, config(**{"model.arch": "hard", "seed": 1})])[0].run
    alone = fit(cfg).run
    for name, value in alone.model.state_dict().items():
        if "running" in name:
            assert torch.allclose(packed.model.state_dict()[name], value, rtol=0.02, atol=0.02), name
    packed.model.eval()
    alone.model.eval()
    x = alone.splits["test"].x
    with torch.no_grad():
        a, b = packed.model(x), alone.model(x)
    assert all(torch.allclose(a[t], b[t], rtol=0.05, atol=0.05) for t in a)


def test_evaluation_in_several_passes_gives_the_same_metrics(monkeypatch):
    import mtlcore.packing.loop

    configs = [c for c in relatedness("hard", correlations=(0.9,)) if c.model.arch == "hard"]
    whole = fit_packed(configs)
    monkeypatch.setattr(mtlcore.packing.loop, "EVAL_ROWS", 100)  # val and test (90 rows) in 2 members x 50 rows
    in_parts = fit_packed(configs)
    for a, b in zip(whole, in_parts):
        for task, metrics in a.summary["test"].items():
            assert metrics == pytest.approx(b.summary["test"][task], rel=1e-5)


def test_vmapped_cross_stitch_members_still_learn_what_they_learn_alone():
    configs = [config(**{"model.arch": "cross_stitch", "seed": seed}) for seed in (0, 1)]
    assert pack_groups(configs, force=True) == [[0, 1]]
    assert_same_results(fit_packed(configs), [fit(c) for c in configs])


# ----- a member that stops while the others train on --------------------------------------

class StopAt:
    """Stops its member before step ``step`` of the pack (as a cancel does)."""

    def __init__(self, step: int):
        self.step = step
        self.run = None

    def on_fit_start(self, run):
        self.run = run

    def on_step_end(self, run, logs): ...

    def on_epoch_end(self, run, logs): ...

    def on_fit_end(self, run, result): ...

    def should_stop(self):
        return self.run.step >= self.step


def test_a_stopped_member_stays_frozen_and_reports_the_metrics_of_the_model_it_saved():
    # Adam (the default) with weight decay: its momentum and the decay would move a stopped member on zero gradients.
    configs = [config(**{"model.arch": "hard", "seed": seed, "train.epochs": 3, "reg.weight_decay": 0.01})
               for seed in range(3)]
    stopped, *others = fit_packed(configs, [[StopAt(5)], [], []])
    assert stopped.status == "cancelled" and stopped.summary["steps"] == 5
    assert all(r.status == "finished" and r.summary["steps"] > 5 for r in others)
    saved = stopped.run  # its model is what its checkpoint holds
    for split in ("val", "test"):
        for task, metrics in saved.evaluate(split).items():
            assert stopped.summary[split][task] == pytest.approx(metrics, rel=1e-6), (split, task)


def test_members_that_all_stop_before_an_epochs_first_step_still_each_get_a_result():
    configs = [config(**{"model.arch": "hard", "seed": seed}) for seed in range(2)]
    steps_per_epoch = fit_packed(configs)[0].run.steps_per_epoch()
    results = fit_packed(configs, [[StopAt(steps_per_epoch)], [StopAt(steps_per_epoch)]])
    assert [r.status for r in results] == ["cancelled", "cancelled"]
    assert all(r.summary["steps"] == steps_per_epoch and set(r.summary["test"]) == {"task_a", "task_b"}
               for r in results)
