"""The gradient playground's toy problem (Liu et al., CAGrad, NeurIPS 2021, as FAMO and Nash-MTL run it)."""
import math

import numpy as np
import pytest
import torch

from mtlcore.toy import STARTS, ToyComparison, ToyOptimisation, pareto_set, task_gradients, update_directions
from mtlcore.toy.figures import gradients_figure, improving_cone, trajectories_figure
from mtlcore.toy.problem import distance_to_pareto_set, objectives_at, toy_losses, toy_objectives
from mtlcore.toy.trajectories import losses_and_jacobians


def test_the_losses_are_the_authors_with_the_first_scaled_by_a_tenth():
    # At x = (7, -8) the quadratic bowl of loss 1 bottoms out: ((0)^2 + 0.1 * 0) / 10 - 20 = -20, gated by tanh(4).
    f1, f2 = objectives_at([(7.0, -8.0)])[0]
    gate = math.tanh(4.0)
    assert f1 == pytest.approx(0.1 * -20 * gate)
    assert f2 == pytest.approx((14 ** 2 / 10 - 20) * gate)
    # What the methods see is shifted above FAMO's floor (-2.1, -21): positive, same gradients.
    x = torch.tensor([[7.0, -8.0], [-3.0, 4.0]], requires_grad=True)
    assert (toy_losses(x) > 0).all()
    g_shifted = torch.autograd.grad(toy_losses(x).sum(), x)[0]
    g_plain = torch.autograd.grad(toy_objectives(x).sum(), x)[0]
    assert torch.allclose(g_shifted, g_plain)


def test_the_closed_form_losses_and_gradients_are_autograds_everywhere_and_at_the_kinks():
    # Every step uses the closed form (losses_and_jacobians): it must be the authors' losses and their
    # gradients, at random points, at the five starts, on the gates' bound x2 = 0 (the start (0, 0)) and on
    # the log valleys' floors, where |a| < LOWER clamps.
    rng = np.random.default_rng(0)
    valley = [(2 * math.tanh(1.0) - 7, 1.0), (7 - 2 * math.tanh(1.0), 1.0)]  # a = 0, then b = 0
    points = np.concatenate([rng.uniform(-11, 11, (500, 2)), STARTS, [(3.0, 0.0)], valley])
    x = torch.tensor(points, dtype=torch.float64, requires_grad=True)
    losses = toy_losses(x)
    expected = torch.stack([torch.autograd.grad(losses[:, t].sum(), x, retain_graph=True)[0] for t in range(2)])
    closed_losses, closed_gradients = losses_and_jacobians(x)
    assert torch.allclose(closed_losses, losses, rtol=0, atol=1e-12)
    assert torch.allclose(closed_gradients, expected, rtol=0, atol=1e-9)
    # The losses stay differentiable, as GradNorm needs: their backward is the same Jacobian.
    again = torch.autograd.grad(closed_losses[:, 1].sum(), x)[0]
    assert torch.allclose(again, expected[1], rtol=0, atol=1e-9)


def test_the_start_at_the_origin_has_gradients_as_in_the_authors_pytorch():
    # (0, 0) sits on the gates' bound tanh(x2/2) = 0; with torch.clamp's newer zero subgradient nothing would move.
    g = task_gradients([(0.0, 0.0)])[0]
    assert np.linalg.norm(g[0]) > 0.1 and np.linalg.norm(g[1]) > 1.0


def test_the_pareto_set_is_where_the_two_gradients_point_apart():
    arc = pareto_set(29)
    assert arc[0, 0] == -7 and arc[-1, 0] == 7
    assert -8.44 < arc[:, 1].min() and arc[:, 1].max() < -8.35  # the authors draw it at x2 = -8.3552
    g = task_gradients(arc[1:-1])
    cosines = (g[:, 0] * g[:, 1]).sum(1) / np.linalg.norm(g[:, 0], axis=1) / np.linalg.norm(g[:, 1], axis=1)
    assert (cosines < -0.999).all()
    assert distance_to_pareto_set([(0.0, -8.3551), (0.0, 0.0)]).round(3).tolist() == [0.0, 8.355]


def test_five_starts_stepped_together_match_each_start_alone():
    together = ToyOptimisation("famo")
    paths = together.run(30, record_every=10)
    assert paths.shape == (3, 5, 2)
    for i, start in enumerate(STARTS):
        alone = ToyOptimisation("famo", [start])
        alone.run(30)
        assert np.allclose(alone.positions()[0], together.positions()[i], atol=1e-5)


@pytest.mark.parametrize("method, options", [
    ("famo", {}), ("famo", {"max_norm": 1.0}), ("uncertainty", {}), ("rlw", {}),  # loss weighting, with state
    ("pcgrad", {}), ("mgda", {}), ("nash_mtl", {}),  # gradient methods (PCGrad draws, Nash-MTL keeps a solver)
])
def test_one_weighting_for_all_five_starts_gives_the_paths_of_one_per_start(method, options):
    batched = ToyOptimisation(method, options=options)  # seeds the generator: RLW and PCGrad draw
    a = batched.run(25, record_every=5)
    per_start = ToyOptimisation(method, options=options, batched=False)
    b = per_start.run(25, record_every=5)
    assert batched.batched and len(batched.weightings) == 1 and len(per_start.weightings) == 5
    assert a.shape == b.shape == (5, 5, 2)
    assert np.allclose(a, b, atol=1e-6)
    assert (np.linalg.norm(batched.positions() - a[0], axis=1) > 0.01).all()  # every start moved


def test_a_batched_method_is_called_once_per_step_for_every_start():
    run = ToyOptimisation("famo")
    calls = []
    original = run.weighting.backward
    run.weighting.backward = lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs)
    run.run(7)
    assert len(calls) == 7  # not 7 x 5


def test_a_method_that_cannot_batch_falls_back_to_one_weighting_per_start():
    run = ToyOptimisation("gradnorm")  # its W-gradient norms are not split per start
    assert not run.batched and len(run.weightings) == len(STARTS)
    with pytest.raises(ValueError, match="cannot take the starts as one batch"):
        ToyOptimisation("gradnorm", batched=True)


@pytest.mark.parametrize("method", ["equal", "famo", "uncertainty", "gradnorm", "pcgrad", "upgrad", "imtl_g"])
def test_each_method_moves_every_start_through_the_engines_weighting(method):
    run = ToyOptimisation(method)
    before = run.positions()
    run.run(20)
    moved = np.linalg.norm(run.positions() - before, axis=1)
    assert (moved > 0.005).all() and (moved < 0.05).all()  # Adam at lr 1e-3: about 1e-3 per step


def test_a_live_comparison_grows_and_reports_its_cost():
    comparison = ToyComparison(["equal", "pcgrad"], steps=300).start()
    assert comparison.wait(timeout=120)
    runs = comparison.snapshot()
    assert set(runs) == {"equal", "pcgrad"} and not comparison.errors
    for run in runs.values():
        assert run.finished and run.steps == 300 and run.points.shape[0] == 5 and run.seconds_per_step > 0
        assert not run.reached().any()  # 300 steps are far too few to get there
    with pytest.raises(ValueError, match="at least one"):
        ToyComparison([])
    assert comparison.seconds_left() == 0.0  # ended: nothing left to wait for


def test_the_paths_hold_a_point_every_few_steps_however_the_run_is_cut_into_chunks(monkeypatch):
    from mtlcore.toy import live

    monkeypatch.setattr(live, "MAX_POINTS", 20)  # 200 steps: a point every 10

    def paths(publish_seconds):
        monkeypatch.setattr(live, "PUBLISH_SECONDS", publish_seconds)
        comparison = ToyComparison(["equal", "famo"], steps=200).start()
        assert comparison.wait(timeout=120)
        return comparison.snapshot()

    cut, whole = paths(0.0), paths(1e9)  # a chunk per step (a slow page), or chunks of up to 2,000 steps
    for method in ("equal", "famo"):
        assert cut[method].points.shape == (5, 21, 2)  # steps 0, 10, ..., 190, and where it ended
        assert np.allclose(cut[method].points, whole[method].points)


def test_a_running_comparison_says_how_long_is_left_at_its_pace_so_far():
    from mtlcore.toy.live import time_left

    assert ToyComparison(["equal"], steps=5000).seconds_left() is None  # not started: no pace yet
    assert time_left(1.0, 0, 5000) is None  # started, no step done yet
    assert time_left(10.0, 1000, 5000) == pytest.approx(40.0)  # 1,000 of 5,000 steps in 10 s: 40 s more
    assert time_left(10.0, 5000, 5000) == 0.0


def test_the_arrows_and_the_cone_of_directions_that_lower_both_losses():
    # Gradients 90 degrees apart: the cone is the quarter-turn between -g1 and -g2.
    a, b = improving_cone(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert b - a == pytest.approx(math.pi / 2)
    middle = (a + b) / 2
    assert (math.cos(middle), math.sin(middle)) == pytest.approx((-math.sqrt(0.5), -math.sqrt(0.5)))
    assert improving_cone(np.array([1.0, 0.0]), np.array([-2.0, 0.0])) is None  # opposite: the Pareto condition
    point = (-2.0, 2.0)
    directions = update_directions(point, ["equal", "mgda"])
    g = task_gradients([point])[0]
    assert np.allclose(directions["equal"], -(g[0] + g[1]), atol=1e-4)  # equal weights: minus the sum
    assert directions["mgda"] @ g[0] <= 1e-9 and directions["mgda"] @ g[1] <= 1e-9  # MGDA lowers both
    fig = gradients_figure(point, g, directions, {})
    assert {t.name for t in fig.data} >= {"task 1: -g1", "task 2: -g2", "equal", "mgda", "lowers both losses"}


def test_the_trajectories_figure_marks_finished_ends_on_the_pareto_set():
    comparison = ToyComparison(["equal"], steps=100, starts=[(0.0, -8.3551), (9.0, 9.0)]).start()
    comparison.wait(timeout=60)
    from mtlcore.toy import loss_grid
    fig = trajectories_figure(loss_grid(11), pareto_set(11), comparison.snapshot(), {"equal": "#000"},
                              starts=[(0.0, -8.3551), (9.0, 9.0)])
    ends = next(t for t in fig.data if t.name == "equal: end")
    assert list(ends.marker.symbol) == ["star", "x"]


def test_methods_stepped_together_take_the_paths_each_takes_alone():
    # One graph for every method's points; each method's own update, and its own random draws (RLW, PCGrad).
    methods = ["rlw", "pcgrad", "famo", "equal"]
    comparison = ToyComparison(methods, steps=40).start()
    assert comparison.wait(timeout=120) and not comparison.errors
    runs = comparison.snapshot()
    for method in methods:
        alone = ToyOptimisation(method)
        alone.run(40)
        assert runs[method].steps == 40
        assert np.allclose(runs[method].final_points, alone.positions(), atol=1e-5), method


def test_a_random_method_alone_takes_its_path_whatever_else_draws_random_numbers():
    # RLW draws its weights at every step: a page or a test drawing in between must not change its path.
    quiet, disturbed = ToyOptimisation("rlw"), ToyOptimisation("rlw")
    for _ in range(20):
        quiet.step()
        torch.rand(3)  # someone else's draw
        disturbed.step()
    assert np.allclose(quiet.positions(), disturbed.positions(), atol=1e-6)
    other_seed = ToyOptimisation("rlw", seed=1)
    other_seed.run(20)
    assert not np.allclose(quiet.positions(), other_seed.positions(), atol=1e-6)  # its draws do matter


def test_a_method_failing_mid_way_keeps_its_path_and_the_others_go_on(monkeypatch):
    from mtlcore.toy import live

    class FailsAtStepThree(ToyOptimisation):
        def fill_gradient(self, losses, jacobians):
            if self.method == "pcgrad" and self.steps_done == 3:
                raise RuntimeError("the solver gave up")
            super().fill_gradient(losses, jacobians)

    monkeypatch.setattr(live, "ToyOptimisation", FailsAtStepThree)
    comparison = ToyComparison(["equal", "pcgrad"], steps=30).start()
    assert comparison.wait(timeout=120)
    runs = comparison.snapshot()
    assert comparison.errors == {"pcgrad": "RuntimeError: the solver gave up"}
    assert runs["pcgrad"].steps == 3 and not runs["pcgrad"].finished and runs["pcgrad"].error
    assert runs["equal"].finished and runs["equal"].steps == 30
    three_steps = ToyOptimisation("pcgrad")
    three_steps.run(3)  # the failing step moved nothing (one Adam call steps every method: not this one)
    assert np.allclose(runs["pcgrad"].final_points, three_steps.positions(), rtol=0, atol=1e-7)


def test_a_comparison_in_processes_of_its_own_takes_the_same_paths_as_in_a_thread():
    methods = ["equal", "rlw", "pcgrad", "famo"]
    apart = ToyComparison(methods, steps=60, processes=2).start()
    assert apart.wait(timeout=120) and not apart.errors
    assert apart.groups and sorted(m for group in apart.groups for m in group) == sorted(methods)
    here = ToyComparison(methods, steps=60).start()
    assert here.wait(timeout=120) and not here.groups
    apart_runs, here_runs = apart.snapshot(), here.snapshot()
    for method in methods:
        assert apart_runs[method].finished and apart_runs[method].steps == 60
        assert np.array_equal(apart_runs[method].points, here_runs[method].points), method
        assert apart_runs[method].seconds_per_step > 0


def computing_processes():
    import multiprocessing

    return [p for p in multiprocessing.active_children() if p.name.startswith("toy-trajectories")]


def wait_for_paths(comparison, timeout=60):
    import time

    deadline = time.monotonic() + timeout
    while not comparison.snapshot() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert comparison.snapshot(), "no paths came"


def test_stop_ends_a_comparisons_processes_and_keeps_its_paths():
    comparison = ToyComparison(["equal", "famo"], steps=50_000, processes=2).start()
    wait_for_paths(comparison)
    comparison.stop()
    assert comparison.wait(timeout=60)
    runs = comparison.snapshot()
    assert not computing_processes()
    assert 0 < runs["equal"].steps < 50_000 and not runs["equal"].finished and not comparison.errors


def test_a_computing_process_that_dies_is_reported_and_its_paths_so_far_are_kept():
    import os
    import signal

    comparison = ToyComparison(["equal"], steps=50_000, processes=1).start()
    wait_for_paths(comparison)
    (process,) = computing_processes()
    os.kill(process.pid, signal.SIGKILL)
    assert comparison.wait(timeout=60)
    assert "ended unexpectedly" in comparison.errors["equal"]
    run = comparison.snapshot()["equal"]
    assert run.steps > 0 and not run.finished and run.error == comparison.errors["equal"]


def test_the_methods_are_dealt_among_processes_by_their_measured_cost_per_step(monkeypatch):
    from mtlcore.toy import live

    monkeypatch.setattr(live, "STEP_SECONDS", {"nash_mtl": 0.2, "mgda": 0.02, "equal": 0.001, "famo": 0.002})
    assert live.deal_methods(["equal", "famo", "nash_mtl", "mgda"], 2) == [["nash_mtl"], ["equal", "famo", "mgda"]]
    assert live.deal_methods(["equal", "famo"], 5) == [["famo"], ["equal"]]  # never an empty process
    # A method not measured counts as the dearest measured one.
    assert live.deal_methods(["cagrad", "nash_mtl", "equal"], 2) == [["cagrad", "equal"], ["nash_mtl"]]
    live.measure_step_costs(["equal", "upgrad", "no_such_method"])  # one that cannot start is left out
    assert set(live.STEP_SECONDS) >= {"equal", "upgrad"} and "no_such_method" not in live.STEP_SECONDS
    assert live.STEP_SECONDS["equal"] > 0 and live.STEP_SECONDS["upgrad"] > 0
