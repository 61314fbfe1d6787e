"""Studies: the runs a study plans, how it shares and cancels them, and its arithmetic.

Store tests queue runs in a real store but never train them: a test plays
the worker by writing each run's ending (``finish``), so bookkeeping is
checked in milliseconds. One end-to-end command-line run trains for real.
"""
import argparse
import json
from dataclasses import replace

import pytest

from mtlcore import ConfigError, ExperimentConfig
from mtlcore.cli import study as study_cli
from mtlcore.cli.common import run_guarded
from mtlcore.compare import baseline_config
from mtlcore.runs import NotOwnerError, Runner, RunStore
from mtlcore.studies import (
    KINDS, Outcome, StudyError, StudySpec, StudyStore, build_result, clearly_different, default_base, format_result,
    mean_std, pareto_front, plan, transfer_matrix,
)
from mtlcore.studies.results import affinity_matrix, gain

HIGHER = {"shape": True, "size": False}


def spec_of(kind: str, **options) -> StudySpec:
    """A study of ``kind`` on its default base, with flat settings ``set__x`` style kept out of the way."""
    settings = options.pop("settings", {})
    return StudySpec(kind, ExperimentConfig.from_flat(settings, default_base(kind)), **options)


# ----- plans -----------------------------------------------------------------------

def groups_of(members) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for m in members:
        found.setdefault(m.group, []).append(m.seed)
    return found


def test_stl_vs_mtl_plans_each_tasks_baseline_and_the_shared_model_for_every_seed():
    spec = spec_of("stl-vs-mtl", seeds=2, settings={"tasks": "shape,color,size", "seed": 5})
    members = plan(spec)
    assert groups_of(members) == {"stl:shape": [5, 6], "stl:color": [5, 6], "stl:size": [5, 6], "mtl": [5, 6]}
    stl = next(m for m in members if m.group == "stl:size" and m.seed == 6)
    assert stl.config == baseline_config(replace(spec.base, seed=6), "size")
    mtl = next(m for m in members if m.group == "mtl" and m.seed == 5)
    assert mtl.config.tasks == ("shape", "color", "size") and mtl.config.model.arch == "hard"


def test_pairs_plans_every_pair_and_the_all_task_model_that_measures_affinity():
    spec = spec_of("pairs", seeds=1, settings={"tasks": "shape,color,size"})
    groups = groups_of(plan(spec))
    assert set(groups) == {"stl:shape", "stl:color", "stl:size", "group:shape+color", "group:shape+size",
                           "group:color+size", "group:shape+color+size"}
    everything = [m for m in plan(spec) if m.group == "group:shape+color+size"]
    assert [m.needs_diagnostics for m in everything] == [True]
    assert everything[0].config.train.diagnostics_every > 0
    # Only that member pays for diagnostics.
    assert all(m.config.train.diagnostics_every == 0 for m in plan(spec) if not m.needs_diagnostics)
    # Groups of up to three of four tasks, when asked: 6 pairs + 4 triples + all four.
    four = spec_of("pairs", seeds=1, max_subset=3, settings={"tasks": "shape,color,size,background"})
    assert len([g for g in groups_of(plan(four)) if g.startswith("group:")]) == 6 + 4 + 1


def test_sweep_plans_weights_from_zero_to_one_and_the_automatic_methods():
    spec = spec_of("sweep", seeds=1, steps=5, methods=("equal", "dwa"), settings={"tasks": "shape,size"})
    members = plan(spec)
    weights = [m.config.loss.weights for m in members if m.group.startswith("weight:")]
    assert weights == [{"shape": 0.0, "size": 1.0}, {"shape": 0.25, "size": 0.75}, {"shape": 0.5, "size": 0.5},
                       {"shape": 0.75, "size": 0.25}, {"shape": 1.0, "size": 0.0}]
    methods = [m.config.weighting.method for m in members if m.group.startswith("method:")]
    assert methods == ["equal", "dwa"]
    # Without a choice: the default methods that exist and fit the config.
    default = [m.group for m in plan(spec_of("sweep", seeds=1)) if m.group.startswith("method:")]
    assert default == ["method:equal", "method:uncertainty", "method:dwa", "method:upgrad"]
    soft = [m.group for m in plan(spec_of("sweep", seeds=1, settings={"model.arch": "soft"}))
            if m.group.startswith("method:")]
    assert "method:upgrad" not in soft  # a gradient method needs shared parameters


def test_relatedness_plans_each_correlation_with_its_baselines_and_architectures():
    spec = spec_of("relatedness", seeds=2, correlations=(1.0, 0.0), archs=("hard", "mmoe"))
    members = plan(spec)
    assert len(members) == 2 * 2 * (2 + 2)  # correlations x seeds x (2 baselines + 2 architectures)
    mmoe = [m for m in members if m.group == "mmoe@0"]
    assert [m.config.dataset.options["correlation"] for m in mmoe] == [0.0, 0.0]
    assert all(m.config.model.arch == "mmoe" for m in mmoe)
    assert {m.config.model.arch for m in members if m.group.startswith("stl:task_a@")} == {"single"}


@pytest.mark.parametrize("kind, options, settings, message", [
    ("sweep", {}, {"tasks": "shape,color,size"}, "exactly two tasks"),
    ("relatedness", {}, {"dataset.name": "shapes", "tasks": "shape,color"}, "synthetic"),
    ("stl-vs-mtl", {}, {"model.arch": "single", "tasks": "shape"}, "multi-task architecture"),
    ("stl-vs-mtl", {"seeds": 0}, {}, "seeds must be between 1"),
    ("sweep", {"methods": ("nonsense",)}, {}, "Unknown weighting method 'nonsense'"),
    ("relatedness", {"correlations": (2.0,)}, {}, "between -1 and 1"),
    ("pairs", {"max_subset": 5}, {}, "2, 3 or 4"),
])
def test_an_impossible_study_says_what_is_wrong_before_training(kind, options, settings, message):
    with pytest.raises(StudyError, match=message):
        plan(spec_of(kind, settings=settings, **options))


def test_an_impossible_setting_names_the_member_and_the_setting():
    with pytest.raises(ConfigError, match="tasks"):
        plan(spec_of("stl-vs-mtl", settings={"tasks": "shape,nonsense"}))


def test_a_spec_round_trips_through_json():
    spec = spec_of("sweep", seeds=4, steps=3, methods=("dwa",), settings={"train.epochs": 2})
    assert StudySpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


# ----- arithmetic on known numbers --------------------------------------------------

def test_mean_and_sample_std_over_seeds():
    spread = mean_std([0.8, 0.9, 1.0])
    assert spread.mean == pytest.approx(0.9) and spread.n == 3
    assert spread.std == pytest.approx(0.1)  # sqrt((0.01 + 0 + 0.01) / (3 - 1))
    assert mean_std([0.5]).std == 0.0
    assert mean_std([]) is None and mean_std([None]) is None


def test_a_difference_counts_only_when_larger_than_the_spread_of_both_sides():
    a, b = mean_std([0.80, 0.82]), mean_std([0.90, 0.92])  # stds 0.01414 each; gap 0.1
    assert clearly_different(a, b) is True
    c = mean_std([0.80, 0.90])  # std 0.0707; gap to b's 0.91 is 0.06 < 0.0707 + 0.0141
    assert clearly_different(c, b) is False
    assert clearly_different(mean_std([0.8]), b) is None  # one seed: no spread to compare with


def test_gain_is_positive_when_the_metric_got_better_in_its_own_direction():
    assert gain(0.9, 0.8, True) == pytest.approx(12.5)  # accuracy up
    assert gain(2.0, 2.5, False) == pytest.approx(20.0)  # MAE down
    assert gain(2.8, 2.5, False) == pytest.approx(-12.0)
    assert gain(0.5, 0.0, True) is None and gain(None, 0.8, True) is None


def test_transfer_matrix_from_per_run_metrics():
    alone = {"shape": 0.8, "size": 2.5, "color": 0.5}
    together = {
        frozenset(("shape", "size")): {"shape": 0.88, "size": 3.0},  # shape +10 %, size -20 %
        frozenset(("shape", "color")): {"shape": 0.72, "color": 0.55},  # shape -10 %, color +10 %
        # color+size not trained yet
    }
    higher = {"shape": True, "size": False, "color": True}
    matrix = transfer_matrix(["shape", "size", "color"], alone, together, higher)
    # row = partner, column = task measured
    assert matrix[0] == [None, pytest.approx(-20.0), pytest.approx(10.0)]
    assert matrix[1] == [pytest.approx(10.0), None, None]
    assert matrix[2] == [pytest.approx(-10.0), None, None]


def test_affinity_matrix_is_the_mean_of_the_epoch_logs():
    logs = [{"a->b": 0.1, "b->a": -0.2, "a->a": 0.3}, {"a->b": 0.3, "b->a": 0.0, "a->a": 0.1}]
    assert affinity_matrix(["a", "b"], logs) == [[pytest.approx(0.2), pytest.approx(0.2)],
                                                  [pytest.approx(-0.1), None]]
    assert affinity_matrix(["a", "b"], [{}, {}]) is None


def test_pareto_front_respects_each_metrics_direction():
    points = [
        {"shape": 0.90, "size": 3.0},  # 0: best shape
        {"shape": 0.80, "size": 2.0},  # 1: best size
        {"shape": 0.85, "size": 2.5},  # 2: in between, on the front
        {"shape": 0.80, "size": 2.6},  # 3: beaten by 2 on both
        {"shape": 0.90, "size": 3.0},  # 4: a tie with 0: both stay
    ]
    assert pareto_front(points, {"shape": True, "size": False}) == [0, 1, 2, 4]
    # Maximising both instead: high MAE now counts as good.
    assert pareto_front(points, {"shape": True, "size": True}) == [0, 4]


def outcome(group: str, seed: int, **values) -> Outcome:
    tasks = {t: {"metric": "accuracy" if HIGHER[t] else "mae", "higher_is_better": HIGHER[t]} for t in values}
    test = {t: {tasks[t]["metric"]: v} for t, v in values.items()}
    return Outcome(group, seed, test, tasks)


def test_stl_vs_mtl_result_on_known_numbers():
    spec = spec_of("stl-vs-mtl", seeds=2, settings={"tasks": "shape,size"})
    outcomes = [
        outcome("stl:shape", 0, shape=0.78), outcome("stl:shape", 1, shape=0.82),  # mean 0.80, std 0.0283
        outcome("stl:size", 0, size=2.4), outcome("stl:size", 1, size=2.6),  # mean 2.5, std 0.141
        outcome("mtl", 0, shape=0.89, size=1.9), outcome("mtl", 1, shape=0.91, size=2.1),  # 0.90 and 2.0
    ]
    result = build_result(spec, [m.group for m in plan(spec)], outcomes)
    shape, size = result["tasks"]
    assert shape["stl"]["mean"] == pytest.approx(0.80) and shape["mtl"]["mean"] == pytest.approx(0.90)
    assert shape["gain"] == pytest.approx(12.5) and size["gain"] == pytest.approx(20.0)
    assert shape["clear"] is True  # gap 0.1 > 0.028 + 0.014
    assert size["clear"] is True  # gap 0.5 > 0.141 + 0.141
    assert result["delta_m"] == pytest.approx(-16.25)  # paper sign: (-12.5 - 20) / 2
    assert result["mean_gain"] == pytest.approx(16.25)
    assert "shape" in format_result("stl-vs-mtl", result)
    # Halfway through, what is known is shown and the rest is None.
    partial = build_result(spec, [m.group for m in plan(spec)], outcomes[:3])
    assert partial["tasks"][0]["mtl"] is None and partial["delta_m"] is None


def test_sweep_result_marks_the_pareto_front_among_the_means():
    spec = spec_of("sweep", seeds=1, steps=3, methods=("equal",), settings={"tasks": "shape,size"})
    groups = [m.group for m in plan(spec)]
    assert groups == ["weight:0", "weight:0.5", "weight:1", "method:equal"]
    outcomes = [outcome("weight:0", 0, shape=0.25, size=1.0), outcome("weight:0.5", 0, shape=0.8, size=1.5),
                outcome("weight:1", 0, shape=0.9, size=4.0), outcome("method:equal", 0, shape=0.7, size=1.6)]
    points = build_result(spec, groups, outcomes)["points"]
    assert [p["on_front"] for p in points] == [True, True, True, False]
    assert points[3]["label"] == "equal" and points[1]["weight"] == 0.5


def test_relatedness_benefit_pairs_each_seed_with_its_baselines():
    spec = spec_of("relatedness", seeds=2, correlations=(0.5,), archs=("hard",))
    higher = {"task_a": False, "task_b": False}

    def regression(group, seed, a, b):
        tasks = {t: {"metric": "mae", "higher_is_better": False} for t in higher}
        return Outcome(group, seed, {"task_a": {"mae": a}, "task_b": {"mae": b}}, tasks)

    def single(task, seed, value):
        return Outcome(f"stl:{task}@0.5", seed, {task: {"mae": value}}, {task: {"metric": "mae", "higher_is_better": False}})

    outcomes = [single("task_a", 0, 1.0), single("task_b", 0, 1.0), single("task_a", 1, 2.0), single("task_b", 1, 2.0),
                regression("hard@0.5", 0, 0.9, 0.7),  # gains +10 %, +30 % -> +20 %
                regression("hard@0.5", 1, 2.0, 2.0)]  # gains 0, 0 -> 0 %
    row = build_result(spec, [m.group for m in plan(spec)], outcomes)["rows"][0]
    assert row["benefit"]["mean"] == pytest.approx(10.0)
    assert row["benefit"]["std"] == pytest.approx(14.142, abs=1e-3)


# ----- studies in the store ------------------------------------------------------------

@pytest.fixture
def runner(tmp_path):
    # No worker: tests play the worker with ``finish``.
    return Runner(RunStore(tmp_path / "home"), max_workers=0, queue_cap_per_owner=100)


def finish(store: RunStore, run_id: str, value: float = 0.5) -> None:
    """End a queued run as a worker would, with the same test value for each of its tasks."""
    record = store.get_run(run_id)
    tasks = {}
    for task in record.config.tasks:
        higher = task not in ("size", "x", "y", "task_a", "task_b")
        tasks[task] = {"metric": "accuracy" if higher else "mae", "higher_is_better": higher}
    test = {t: {info["metric"]: value} for t, info in tasks.items()}
    store.finish_run(run_id, "finished", "Finished.", {"test": test, "tasks": tasks})


def small_stl_vs_mtl() -> StudySpec:
    return spec_of("stl-vs-mtl", seeds=2, settings={"tasks": "shape,color", "device": "cpu"})


def test_a_study_is_one_object_whose_progress_and_result_follow_its_runs(runner):
    studies = StudyStore(runner.store)
    record = studies.start(small_stl_vs_mtl(), runner, owner="alice")
    assert record.total == 6 and record.progress_text == "0 of 6 runs done" and record.state == "running"
    runs = runner.store.list_runs(study_id=record.id)
    assert len(runs) == 6 and all(r.state == "queued" and r.owner == "alice" for r in runs)
    for run in runs[:4]:
        finish(runner.store, run.id)
    assert studies.get(record.id).progress_text == "4 of 6 runs done"
    for run in runs[4:]:
        finish(runner.store, run.id, 0.6)
    done = studies.get(record.id)
    assert done.state == "finished" and done.progress_text == "6 of 6 runs done"
    result = studies.result(record.id)
    assert result["progress"] == {"done": 6, "total": 6, "with_result": 6}
    assert result["result"]["delta_m"] is not None
    assert [s.id for s in studies.list(owner="alice")] == [record.id]


def test_a_second_identical_study_reuses_the_first_ones_baselines_instead_of_retraining(runner):
    studies = StudyStore(runner.store)
    first = studies.start(small_stl_vs_mtl(), runner, owner="alice")
    for run in runner.store.list_runs(study_id=first.id):
        finish(runner.store, run.id)
    # Same settings, another architecture: only the shared model is new.
    other = replace(small_stl_vs_mtl(), base=replace(small_stl_vs_mtl().base, model=replace(
        small_stl_vs_mtl().base.model, arch="mmoe")))
    second = studies.start(other, runner, owner="bob")
    submitted = runner.store.list_runs(study_id=second.id)
    assert [r.config.model.arch for r in submitted] == ["mmoe", "mmoe"]  # one per seed; no baseline retrained
    baselines = [m for m in second.members if m.group.startswith("stl:")]
    assert len(baselines) == 4 and all(m.reused and m.state == "finished" for m in baselines)
    assert {m.run_id for m in baselines} <= {r.id for r in runner.store.list_runs(study_id=first.id)}
    assert studies.get(second.id).progress_text == "4 of 6 runs done"


def test_cancelling_a_study_cancels_its_unfinished_runs_and_keeps_finished_ones(runner):
    studies = StudyStore(runner.store)
    record = studies.start(small_stl_vs_mtl(), runner, owner="alice")
    runs = runner.store.list_runs(study_id=record.id)
    finish(runner.store, runs[0].id)
    with pytest.raises(NotOwnerError):
        studies.cancel(record.id, runner, owner="bob")
    message = studies.cancel(record.id, runner, owner="alice")
    assert "5 unfinished run(s) stopped" in message and "1 finished run(s) kept" in message
    states = sorted(r.state for r in runner.store.list_runs(study_id=record.id))
    assert states == ["cancelled"] * 5 + ["finished"]
    after = studies.get(record.id)
    assert after.state == "cancelled" and after.done == 6
    assert studies.advance(record.id, runner) == 0  # a cancelled study submits nothing more


def test_a_study_keeps_to_the_owners_queue_cap_and_moves_on_as_runs_finish(tmp_path):
    runner = Runner(RunStore(tmp_path / "home"), max_workers=0, queue_cap_per_owner=3)
    studies = StudyStore(runner.store)
    record = studies.start(small_stl_vs_mtl(), runner, owner="alice")
    assert len(runner.store.list_runs(study_id=record.id)) == 3
    assert sum(m.state == "pending" for m in studies.get(record.id).members) == 3
    for run in runner.store.list_runs(study_id=record.id)[:2]:
        finish(runner.store, run.id)
    assert studies.advance_all(runner, owner="alice") == 2
    assert len(runner.store.list_runs(study_id=record.id)) == 5
    # Cancelled while members wait: those are never submitted.
    studies.cancel(record.id, runner)
    assert [m.state for m in studies.get(record.id).members].count("cancelled") == 4  # 3 queued + 1 waiting


def test_a_reused_run_cancelled_by_its_own_study_is_trained_again_by_the_study_that_reused_it(runner):
    studies = StudyStore(runner.store)
    first = studies.start(small_stl_vs_mtl(), runner, owner="alice")
    second = studies.start(small_stl_vs_mtl(), runner, owner="bob")
    # Bob's members wait for Alice's queued runs instead of queueing duplicates.
    assert runner.store.list_runs(study_id=second.id) == []
    assert all(m.reused and m.state == "queued" for m in studies.get(second.id).members)
    studies.cancel(first.id, runner)
    assert studies.advance(second.id, runner) == 6
    assert all(not m.reused for m in studies.get(second.id).members)


# ----- the command line ------------------------------------------------------------

def test_the_command_line_kinds_are_the_studies_kinds():
    assert study_cli.KINDS == KINDS


def parse(argv):
    parser = argparse.ArgumentParser()
    study_cli.register(parser.add_subparsers())
    return parser.parse_args(argv)


def test_study_on_the_command_line_prints_a_table_and_writes_result_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MTL_HOME", str(tmp_path / "no-store"))
    args = parse(["study", "stl-vs-mtl", "--set", "dataset.name=digits", "--set", "tasks=digit,parity",
                  "--set", "train.max_samples=200", "--set", "train.epochs=1", "--set", "device=cpu",
                  "--seeds", "2", "--out", str(tmp_path / "out")])
    assert run_guarded(args.func, args) == 0
    printed = capsys.readouterr().out
    assert "[6/6] MTL digit+parity, seed 1" in printed and "Delta_m" in printed
    document = json.loads((tmp_path / "out" / "result.json").read_text())
    assert document["kind"] == "stl-vs-mtl" and document["progress"]["with_result"] == 6
    digit = document["result"]["tasks"][0]
    assert digit["task"] == "digit" and digit["stl"]["n"] == 2 and digit["mtl"]["n"] == 2
    assert not (tmp_path / "no-store").exists()  # reusing from a store never creates one


def test_study_on_the_command_line_refuses_an_impossible_study_in_one_sentence(tmp_path, capsys):
    args = parse(["study", "sweep", "--set", "tasks=shape,color,size", "--out", str(tmp_path / "out")])
    assert run_guarded(args.func, args) == 2
    assert "exactly two tasks" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ----- figures and the page ------------------------------------------------------------

def test_each_kind_has_figures_that_draw_what_has_finished():
    from mtlcore.studies.figures import figures

    spec = spec_of("stl-vs-mtl", seeds=1, settings={"tasks": "shape,size"})
    result = build_result(spec, [m.group for m in plan(spec)],
                          [outcome("stl:shape", 0, shape=0.8), outcome("mtl", 0, shape=0.9, size=2.0)])
    (bars,) = figures("stl-vs-mtl", result)
    assert [t.y[0] for t in bars.data] == [0.8, 0.9, None, 2.0]  # size has no baseline yet
    sweep = spec_of("sweep", seeds=1, steps=3, methods=("equal",), settings={"tasks": "shape,size"})
    points = build_result(sweep, [m.group for m in plan(sweep)], [
        outcome("weight:0", 0, shape=0.25, size=1.0), outcome("weight:1", 0, shape=0.9, size=4.0),
        outcome("method:equal", 0, shape=0.5, size=3.0)])
    names = [t.name for t in figures("sweep", points)[0].data]
    assert names[0] == "Pareto front" and "automatic weighting" in names


@pytest.fixture
def page_home(tmp_path, monkeypatch):
    """The Studies page on an empty data folder, with a runner that starts no worker."""
    import sys
    from pathlib import Path

    import streamlit as st

    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)  # the page imports ui.session from the project root
    import ui.session

    home = tmp_path / "home"
    monkeypatch.setenv("MTL_HOME", str(home))
    st.cache_resource.clear()
    monkeypatch.setattr(ui.session, "get_runner", lambda: Runner(RunStore(home), max_workers=0))
    yield RunStore(home)
    st.cache_resource.clear()


def test_the_page_starts_a_study_and_draws_its_result_as_runs_finish(page_home):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "views" / "studies.py"), default_timeout=60)
    at.run()
    assert not at.exception
    assert any("12 runs" in c.value for c in at.caption)  # stl-vs-mtl, 3 tasks, 3 seeds
    at.button(key="studies_start").click().run()
    assert not at.exception
    queued = page_home.list_runs()
    assert len(queued) == 3  # the queue cap of one person: the rest wait
    for run in queued:
        finish(page_home, run.id)
    at.run()
    assert not at.exception
    assert "3 of 12 runs done" in at.get("progress")[0].proto.text
    assert len(page_home.list_runs(states=("queued",))) == 3  # looking at the page moved the study on
    for kind in ("pairs", "sweep", "relatedness"):
        at.radio(key="studies_kind").set_value(kind).run()
        assert not at.exception and not at.error
