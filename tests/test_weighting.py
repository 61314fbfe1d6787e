"""Weighting methods: hand-worked numbers, and one contract over every method."""
import functools
import math

import pytest
import torch

from mtlcore import ConfigError, ExperimentConfig, load_dataset, validate
from mtlcore.engine import TrainingRun
from mtlcore.weighting import WEIGHTINGS, create_weighting
from mtlcore.weighting.dwa import dwa_weights
from mtlcore.weighting.gradnorm import gradnorm_loss
from mtlcore.weighting.jacobian import jacobian_rows, jacobian_rows_by_loop

TASKS = ("shape", "color", "size")


def tiny_model():
    torch.manual_seed(0)
    return torch.nn.Linear(2, 2)


# ----- loss weighting by hand ---------------------------------------------------

def test_dwa_weights_follow_the_ratio_of_the_last_two_epoch_losses():
    # r = (0.5/1, 1/1); w = 2 * softmax(r / 2) -> w_a = 2 / (1 + e^0.25)
    w = dwa_weights({"a": 0.5, "b": 1.0}, {"a": 1.0, "b": 1.0}, temperature=2.0)
    assert w["a"] == pytest.approx(2 / (1 + math.exp(0.25)))  # 0.87563
    assert w["b"] == pytest.approx(2 - 2 / (1 + math.exp(0.25)))  # 1.124353: b fell less, weighs more


def test_dwa_uses_weight_one_for_two_epochs_then_the_formula():
    dwa = create_weighting("dwa", temperature=2.0)
    dwa.setup(["a", "b"], {}, tiny_model())
    assert dwa.weights({}) == {"a": 1.0, "b": 1.0}
    dwa.end_epoch(1, {"a": 1.0, "b": 1.0})
    assert dwa.weights({}) == {"a": 1.0, "b": 1.0}  # epoch 2: only one past epoch
    dwa.end_epoch(2, {"a": 0.5, "b": 1.0})
    assert dwa.weights({})["a"] == pytest.approx(0.875647, abs=1e-6)  # epoch 3
    dwa.end_epoch(3, {"a": 0.5, "b": 0.25})  # now b fell more (ratio 0.25 vs 1)
    assert dwa.weights({})["a"] > 1 > dwa.weights({})["b"]


def test_uncertainty_loss_and_its_gradient_in_the_log_variances():
    uw = create_weighting("uncertainty")
    uw.setup(["a", "b"], {}, tiny_model())
    with torch.no_grad():
        uw.log_variance.copy_(torch.tensor([0.0, math.log(4.0)]))
    losses = {"a": torch.tensor(2.0), "b": torch.tensor(2.0)}
    total = uw.objective(losses, uw.weights(losses), torch.zeros(()))
    # 0.5 e^0 * 2 + 0 = 1;  0.5 * (1/4) * 2 + 0.5 ln 4 = 0.25 + 0.693147
    assert total.item() == pytest.approx(1.0 + 0.25 + 0.5 * math.log(4.0))
    total.backward()
    # d/ds (0.5 e^-s L + 0.5 s) = -0.5 e^-s L + 0.5  ->  -0.5 and +0.25
    assert uw.log_variance.grad.tolist() == pytest.approx([-0.5, 0.25])


def test_uncertainty_reports_its_effective_weights():
    model = tiny_model()
    uw = create_weighting("uncertainty")
    uw.setup(["a", "b"], {"b": 2.0}, model)
    out = model(torch.ones(1, 2))
    weights = uw.backward({"a": out[0, 0] ** 2, "b": out[0, 1] ** 2}, model, torch.zeros(()))
    assert weights == pytest.approx({"a": 0.5, "b": 1.0})  # u_t * 0.5 * exp(-0)


def test_gradnorm_raises_the_weight_of_the_task_that_trains_slowest():
    # Equal gradient norms 1, weights 1; loss ratios L/L0 = (0.5, 1.0): task b made no progress.
    w = torch.ones(2, requires_grad=True)
    balance = gradnorm_loss(w, torch.ones(2), torch.tensor([0.5, 1.0]), alpha=1.5)
    # r = (2/3, 4/3); targets = 1 * r^1.5 = (0.5443, 1.5396)
    assert balance.item() == pytest.approx(abs(1 - (2 / 3) ** 1.5) + abs(1 - (4 / 3) ** 1.5))
    (grad,) = torch.autograd.grad(balance, w)
    # d|w n - target|/dw = sign(w n - target) * n: descent lowers a's weight and raises b's.
    assert grad.tolist() == pytest.approx([1.0, -1.0])


def test_gradnorm_keeps_its_weights_summing_to_the_number_of_tasks():
    run = make_run("gradnorm")
    x, y = batch(run)
    for _ in range(3):
        _, _, weights = run.train_step(x, y)
        assert sum(weights.values()) == pytest.approx(3.0, rel=1e-5)
        assert all(w > 0 for w in weights.values())


def test_rlw_weights_are_positive_sum_to_the_number_of_tasks_and_change():
    rlw = create_weighting("rlw")
    rlw.setup(["a", "b", "c"], {}, tiny_model())
    draws = [rlw.weights({}) for _ in range(5)]
    for w in draws:
        assert all(v > 0 for v in w.values())
        assert sum(w.values()) == pytest.approx(3.0)
    assert draws[0] != draws[1]


def test_famo_weights_are_c_z_over_l_and_follow_the_slower_task():
    model = tiny_model()
    famo = create_weighting("famo")
    famo.setup(["a", "b"], {}, model)

    def losses(a, b):  # losses of given values that still reach the model
        out = model(torch.ones(1, 2))
        return {"a": out[0, 0] * 0 + a, "b": out[0, 1] * 0 + b}

    # z = (1/2, 1/2), L = (1, 2): c = 1 / (0.5/1 + 0.5/2) = 4/3; weights c z / L = (2/3, 1/3)
    assert famo.backward(losses(1.0, 2.0), model, torch.zeros(())) == pytest.approx({"a": 2 / 3, "b": 1 / 3})
    # Next step: a's loss halved, b's stayed: z moves towards b.
    famo.backward(losses(0.5, 2.0), model, torch.zeros(()))
    z = torch.softmax(famo.logits, dim=0)
    assert z[1] > 0.5 > z[0]


# ----- the audit against the papers and the authors' code -------------------------

def test_uncertainty_gives_each_task_the_papers_form_for_its_kind():
    # Kendall et al. 2018: 1/sigma^2 L for classification, 1/(2 sigma^2) L for regression; s = 0 at the start.
    run = make_run("uncertainty")  # shape and color classify, size regresses
    x, y = batch(run)
    _, _, weights = run.train_step(x, y)
    assert weights == pytest.approx({"shape": 1.0, "color": 1.0, "size": 0.5})
    libmtl = make_run("uncertainty", **{"weighting.form": "libmtl"})  # LibMTL's: the regression form for all
    _, _, weights = libmtl.train_step(x, y)
    assert weights == pytest.approx({"shape": 0.5, "color": 0.5, "size": 0.5})


@pytest.mark.parametrize("form, sigma2_classification", [("paper", 4.0), ("libmtl", 2.0)])
def test_uncertainty_learns_sigma_squared_l_for_regression_and_2l_for_classification(form, sigma2_classification):
    uw = create_weighting("uncertainty", form=form)
    uw.setup(["label", "value"], {}, tiny_model(), kinds={"label": "classification", "value": "regression"})
    optimizer = torch.optim.SGD(uw.parameters(), lr=0.5)
    losses = {"label": torch.tensor(2.0), "value": torch.tensor(2.0)}  # a fixed L = 2 for both
    for _ in range(300):
        optimizer.zero_grad()
        uw.objective(losses, uw.weights(losses), torch.zeros(())).backward()
        optimizer.step()
    sigma2 = uw.log_variance.detach().exp().tolist()
    assert sigma2 == pytest.approx([sigma2_classification, 2.0], rel=1e-3)
    # Either way the weight at the optimum is 1 / (2 L).
    assert [float(w.detach()) for w in uw.weights(losses).values()] == pytest.approx([0.25, 0.25], rel=1e-3)


def test_an_unknown_uncertainty_form_is_one_clear_sentence():
    with pytest.raises(ConfigError, match="form must be one of paper, libmtl, got 'kendall'"):
        validate(config("uncertainty", **{"weighting.form": "kendall"}))


def test_gradnorm_balances_the_last_layer_of_every_expert_and_of_every_column():
    from mtlcore.weighting.gradnorm import gradnorm_layer

    mmoe = make_run("gradnorm", "mmoe", **{"model.num_experts": 3}).model
    layer = {id(p) for p in gradnorm_layer(mmoe, "last")}
    assert all(layer & {id(p) for p in expert.parameters()} for expert in mmoe.experts)
    stitch = make_run("gradnorm", "cross_stitch").model
    layer = {id(p) for p in gradnorm_layer(stitch, "last")}
    assert all(layer & {id(p) for p in column.parameters()} for column in stitch.columns.values())
    assert not layer & {id(p) for p in stitch.stitches.parameters()}  # not the T x T mixing units


def test_famo_defaults_are_the_authors():
    famo = create_weighting("famo")
    assert (famo.lr, famo.weight_decay, famo.max_norm) == (0.025, 0.001, 1.0)


def test_famo_moves_its_logits_by_the_same_batchs_loss_decrease_right_after_the_step():
    run = make_run("famo")
    x, y = batch(run)
    _, before, _ = run.train_step(x, y)
    after = run.losses_after_step(x, y)  # the same batch at the updated parameters
    delta = torch.stack([before[t].detach().log() - after[t].log() for t in TASKS])
    # From xi = 0, Adam's first step is lr * sign(gradient); the gradient J_softmax^T delta = (delta - mean) / T.
    expected = -0.025 * torch.sign(delta - delta.mean())
    assert run.weighting.logits.detach().tolist() == pytest.approx(expected.tolist(), abs=1e-4)


def test_famo_clips_the_shared_parameters_gradient_to_max_norm():
    run = make_run("famo", **{"weighting.max_norm": 0.01})
    x, y = batch(run)
    run.train_step(x, y)
    norm = torch.cat([p.grad.flatten() for p in run.model.shared_parameters() if p.grad is not None]).norm()
    assert float(norm) == pytest.approx(0.01, rel=1e-3)


def test_rlw_weights_are_t_times_the_softmax_of_standard_normal_draws():
    rlw = create_weighting("rlw")
    rlw.setup(["a", "b", "c"], {}, tiny_model())
    torch.manual_seed(3)
    drawn = rlw.weights({})
    torch.manual_seed(3)
    expected = 3 * torch.softmax(torch.randn(3), dim=0)  # Lin et al. 2022: softmax of N(0, I), times T here
    assert list(drawn.values()) == pytest.approx(expected.tolist())
    torch.manual_seed(0)
    mean = torch.stack([torch.tensor(list(rlw.weights({}).values())) for _ in range(2000)]).mean(0)
    assert mean.tolist() == pytest.approx([1.0, 1.0, 1.0], abs=0.05)  # on average equal weighting's 1


# ----- one backward pass for all task gradients -----------------------------------

def test_batched_jacobian_equals_one_backward_per_task():
    run = make_run("static")
    x, y = batch(run)
    _, losses = run.task_losses(x, y)
    params = run.model.shared_parameters()
    batched = jacobian_rows(list(losses.values()), params, batched=True)
    looped = jacobian_rows_by_loop(list(losses.values()), params)
    for b, l in zip(batched, looped):
        assert torch.allclose(b, l, atol=1e-6)


# ----- the contract: every registered method --------------------------------------

def config(method, arch="hard", tasks=TASKS, **flat):
    return ExperimentConfig.from_flat({
        "dataset.n_samples": 100, "dataset.image_size": 16, "model.width": 8, "model.arch": arch,
        "weighting.method": method, "tasks": ",".join(tasks), "optim.lr": 0.01, "device": "cpu",
        "reg.l1": 1e-4, **flat,
    })


@functools.cache
def shapes():
    return load_dataset("shapes", n_samples=100, image_size=16)


def make_run(method, arch="hard", tasks=TASKS, **flat):
    return TrainingRun(config(method, arch, tasks, **flat), shapes(), torch.device("cpu"))


def batch(run, n=32):
    split = run.splits["train"]
    return split.x[:n], {t: v[:n] for t, v in split.y.items()}


def assert_finite_gradients(run):
    grads = [p.grad for p in run.model.parameters() if p.grad is not None]
    assert grads, "backward filled no gradient"
    assert all(torch.isfinite(g).all() for g in grads)
    assert all(torch.isfinite(p).all() for p in run.weighting.parameters())


@pytest.mark.parametrize("method", WEIGHTINGS.names())
def test_every_method_lowers_the_loss_of_a_tiny_model(method):
    run = make_run(method)
    x, y = batch(run)
    totals = []
    for _ in range(6):
        _, losses, weights = run.train_step(x, y)
        assert_finite_gradients(run)
        assert set(weights) == set(TASKS) and all(math.isfinite(w) for w in weights.values())
        totals.append(sum(v.item() for v in losses.values()))
    assert totals[-1] < totals[0]
    assert repr(run.weighting).startswith(type(run.weighting).__name__ + "(")
    assert WEIGHTINGS.get(method).summary


@pytest.mark.parametrize("arch", ["cross_stitch", "mmoe", "soft"])
@pytest.mark.parametrize("method", WEIGHTINGS.names())
def test_every_method_works_with_every_architecture(method, arch):
    problem = WEIGHTINGS.get(method).incompatibility(config(method, arch))
    if problem:
        assert arch == "soft" and WEIGHTINGS.get(method).needs_shared_parameters
        return
    run = make_run(method, arch)
    x, y = batch(run, 16)
    for _ in range(2):
        _, losses, _ = run.train_step(x, y)
        assert all(torch.isfinite(v) for v in losses.values())
        assert_finite_gradients(run)


def test_sliders_still_scale_the_tasks_in_gradient_combination():
    run = make_run("pcgrad", **{"loss.weights.size": 0.0})
    x, y = batch(run)
    _, _, weights = run.train_step(x, y)
    assert weights["size"] == 0.0 and weights["shape"] > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in run.model.task_parameters("size"))


# ----- methods that need shared parameters say so -------------------------------

@pytest.mark.parametrize("method", [m for m in WEIGHTINGS.names() if WEIGHTINGS.get(m).needs_shared_parameters])
def test_soft_sharing_is_refused_by_methods_that_need_shared_parameters(method):
    with pytest.raises(ConfigError, match=f"{method} needs the tasks' gradients on shared parameters, and soft sharing .* has none; choose hard"):
        validate(config(method, "soft"))


def test_one_task_is_refused_by_gradient_combination():
    with pytest.raises(ConfigError, match="pcgrad balances the gradients of several tasks"):
        validate(config("pcgrad", "single", tasks=("shape",)))


def test_loss_weighting_accepts_soft_sharing():
    assert validate(config("uncertainty", "soft"))


def test_an_unknown_or_bad_option_is_one_clear_sentence():
    with pytest.raises(ConfigError, match="dwa has no option 'temp' .* its options are: temperature"):
        validate(config("dwa", **{"weighting.temp": 2}))
    with pytest.raises(ConfigError, match="temperature must be above 0"):
        validate(config("dwa", **{"weighting.temperature": 0}))


# ----- torchjd loads when a run needs it ----------------------------------------------

def test_a_method_whose_solver_is_missing_is_not_offered():
    from mtlcore.weighting.aggregated import AggregatedGradient
    from mtlcore.weighting.aggregators import register_if_available

    @register_if_available("needs_a_missing_solver", solvers=("no_such_solver_package",))
    class NeedsMissingSolver(AggregatedGradient):
        pass

    assert "needs_a_missing_solver" not in WEIGHTINGS
    assert "upgrad" in WEIGHTINGS  # its solvers are in requirements.txt


def test_torchjd_is_imported_by_the_first_run_that_uses_it_not_by_import_mtlcore():
    # A worker starts faster: torchjd.aggregation brings cvxpy, about a second.
    import subprocess
    import sys

    script = (
        "import sys, mtlcore\n"
        "from mtlcore.weighting import WEIGHTINGS\n"
        "assert 'upgrad' in WEIGHTINGS and 'torchjd' not in sys.modules, 'torchjd imported at start'\n"
        "from mtlcore import ExperimentConfig\n"
        "from mtlcore.engine import TrainingRun\n"
        "TrainingRun.create(ExperimentConfig.from_flat({'device': 'cpu', 'weighting.method': 'upgrad',"
        " 'dataset.n_samples': 40, 'dataset.image_size': 16}))\n"
        "assert 'torchjd' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_famo_refuses_a_loss_that_can_be_negative_in_one_sentence():
    # log L of a Gaussian NLL below 0 is NaN: the run would "diverge" and blame the learning rate.
    with pytest.raises(ConfigError, match="famo takes the logarithm of every task's loss.*gaussian_nll"):
        validate(config("famo", **{"loss.regression": "gaussian_nll"}))
    assert validate(config("famo", tasks=("shape", "color"), **{"loss.regression": "gaussian_nll"}))  # no regression


def _cagrad_direction(jacobian: torch.Tensor) -> torch.Tensor:
    from mtlcore.toy.trajectories import ToyPoint

    if "cagrad" not in WEIGHTINGS.names():
        pytest.skip("CAGrad's solver (cvxpy) is not installed")
    weighting = create_weighting("cagrad")
    weighting.setup(["a", "b"], {"a": 1.0, "b": 1.0}, ToyPoint((0.0, 0.0)))
    direction, _ = weighting.combine(jacobian)
    return direction


def test_cagrad_follows_the_paper_where_one_gradient_is_tiny_or_all_are_small():
    """d = g0 + (sqrt(phi) / ||g_w||) g_w (Liu et al. 2021, Alg. 1): never zero while g0 is not.

    torchjd's default cut-off (norm_eps = 1e-4) returned d = 0 in both cases: CAGrad stopped dead on
    the toy from (9, 9), and would on a network whose gradients have ||J||^2 < 1e-4.
    """
    g1, g2 = torch.tensor([1e-5, 0.0]), torch.tensor([0.0, 1.0])
    d = _cagrad_direction(torch.stack([g1, g2]))
    g0 = (g1 + g2) / 2
    # w = (1, 0) (the worst-off task is the tiny one): d points along g0 + c ||g0|| g1 / ||g1||, c = 0.4.
    expected = g0 + 0.4 * g0.norm() * g1 / g1.norm()
    assert torch.allclose(d / d.norm(), expected / expected.norm(), atol=1e-3)
    small = _cagrad_direction(1e-3 * torch.eye(2))  # ||J||^2 = 2e-6
    assert small.norm() > 0 and (small > 0).all()  # both tasks improve
