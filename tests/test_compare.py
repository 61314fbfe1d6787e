"""Multi-task against single-task: the arithmetic a practitioner's conclusion rests on.

Every expected number below is worked out by hand in the comment beside it.
"""
import csv
import io
from types import SimpleNamespace

import pytest

from mtlcore import ExperimentConfig, validate
from mtlcore.compare import (
    baseline_config, compare_to_baselines, delta_m, find_baseline, improvement, relative_change,
    relative_changes, results_table, rows_to_csv, task_scoring, verdict,
)

HIGHER = {"shape": True, "size": False}


def test_relative_change_follows_the_paper_sign_negative_means_multi_task_is_better():
    # accuracy 0.9 (MTL) vs 0.8 (STL), higher is better: -(0.9 - 0.8) / 0.8 * 100 = -12.5
    assert relative_change(0.9, 0.8, higher_is_better=True) == pytest.approx(-12.5)
    # MAE 2.0 (MTL) vs 2.5 (STL), lower is better: +(2.0 - 2.5) / 2.5 * 100 = -20
    assert relative_change(2.0, 2.5, higher_is_better=False) == pytest.approx(-20.0)
    # and the other way round, sharing hurt: MAE 2.8 vs 2.5 -> +12; accuracy 0.75 vs 0.8 -> +6.25
    assert relative_change(2.8, 2.5, higher_is_better=False) == pytest.approx(12.0)
    assert relative_change(0.75, 0.8, higher_is_better=True) == pytest.approx(6.25)


def test_improvement_is_the_opposite_sign_positive_means_sharing_helped():
    assert improvement(0.9, 0.8, True) == pytest.approx(12.5)
    assert improvement(2.8, 2.5, False) == pytest.approx(-12.0)


def test_delta_m_is_the_mean_of_the_per_task_terms():
    # both better: (-12.5 + -20) / 2 = -16.25
    assert delta_m({"shape": 0.9, "size": 2.0}, {"shape": 0.8, "size": 2.5}, HIGHER) == pytest.approx(-16.25)
    # both worse: (6.25 + 12) / 2 = 9.125
    assert delta_m({"shape": 0.75, "size": 2.8}, {"shape": 0.8, "size": 2.5}, HIGHER) == pytest.approx(9.125)
    # mixed: (-12.5 + 12) / 2 = -0.25 (a little better on average although one task got worse)
    assert delta_m({"shape": 0.9, "size": 2.8}, {"shape": 0.8, "size": 2.5}, HIGHER) == pytest.approx(-0.25)
    # one task: the term itself
    assert delta_m({"size": 2.0}, {"size": 2.5}, HIGHER) == pytest.approx(-20.0)
    assert relative_changes({"shape": 0.9, "size": 2.0}, {"shape": 0.8, "size": 2.5}, HIGHER) == pytest.approx(
        {"shape": -12.5, "size": -20.0})


def test_delta_m_refuses_what_it_cannot_compute_with_a_sentence_naming_the_task():
    with pytest.raises(ValueError, match="'size' has no single-task value"):
        delta_m({"shape": 0.9, "size": 2.0}, {"shape": 0.8}, HIGHER)
    with pytest.raises(ValueError, match="'shape'.*single-task value is 0"):
        delta_m({"shape": 0.9}, {"shape": 0.0}, HIGHER)
    with pytest.raises(ValueError, match="No tasks"):
        delta_m({}, {}, {})
    with pytest.raises(ValueError, match="finite"):
        relative_change(float("nan"), 0.8, True)


def test_verdicts_say_in_plain_words_whether_sharing_helped():
    assert verdict(0.832, 0.8, True, "accuracy") == ("sharing helped: +3.2 points accuracy", True)
    assert verdict(0.75, 0.8, True, "accuracy") == ("negative transfer: -5.0 points accuracy", False)
    assert verdict(2.8, 2.5, False, "mae") == ("negative transfer: MAE 12.0% worse", False)
    assert verdict(2.0, 2.5, False, "mae") == ("sharing helped: MAE 20.0% better", True)
    text, helped = verdict(0.8, 0.8, True, "accuracy")
    assert helped is None and text.startswith("no difference")


def mtl_config(**flat) -> ExperimentConfig:
    settings = {"dataset.name": "shapes", "dataset.n_samples": 300, "tasks": "shape,size", "model.arch": "hard",
                "loss.weights.shape": 2, "weighting.method": "dwa", "weighting.temperature": 3.0,
                "optim.name": "sgd", "optim.lr": 0.05, "train.epochs": 3, "reg.weight_decay": 1e-4,
                "reg.dropout": 0.1, "seed": 7, **flat}
    return ExperimentConfig.from_flat(settings)


def test_baseline_config_keeps_every_setting_but_the_task_the_architecture_and_the_weighting():
    config = mtl_config()
    base = baseline_config(config, "size")
    assert base.tasks == ("size",)
    assert base.model.arch == "single"
    assert base.loss.weights == {}
    assert base.weighting.method == "static" and base.weighting.options == {}
    # same data, optimiser, epochs, regularisers and seed
    assert base.dataset == config.dataset
    assert base.optim == config.optim
    assert base.train == config.train
    assert base.reg.weight_decay == 1e-4 and base.reg.dropout == 0.1
    assert base.seed == 7 and base.model.width == config.model.width
    validate(base)  # a baseline is a config the engine accepts
    with pytest.raises(ValueError, match="not one of this run's tasks"):
        baseline_config(config, "color")


def test_architectures_share_one_baseline():
    hard = baseline_config(mtl_config(), "shape")
    for arch in ("soft", "mmoe", "cross_stitch"):
        other = mtl_config(**{"model.arch": arch, "reg.soft_lambda": 0.5, "model.num_experts": 8})
        assert baseline_config(other, "shape") == hard


def record(config, state="finished", created_at=1.0, run_id="r", summary=None, label=""):
    return SimpleNamespace(id=run_id, config=config, state=state, created_at=created_at, summary=summary,
                           label=label, owner="alice")


def test_find_baseline_matches_finished_runs_with_the_same_settings_only():
    config = mtl_config()
    base = baseline_config(config, "shape")
    runs = [
        record(config, run_id="the-mtl-run"),
        record(base, state="running", run_id="still-training", created_at=9.0),
        record(base.with_updates(seed=8), run_id="other-seed", created_at=8.0),
        record(baseline_config(config, "size"), run_id="other-task", created_at=7.0),
        record(base, run_id="old", created_at=2.0),
        record(base.with_updates(device="cpu"), run_id="new-on-cpu", created_at=3.0),
    ]
    found = find_baseline(runs, config, "shape")
    assert found.id == "new-on-cpu"  # newest finished match; the device does not matter
    assert find_baseline(runs, config, "shape", states=("queued", "running")).id == "still-training"
    assert find_baseline(runs[:4], config, "shape") is None
    assert find_baseline([], config, "size") is None


def test_compare_to_baselines_and_results_table_read_the_test_metrics():
    config = mtl_config()
    mtl = record(config, run_id="m", summary={"test": {"shape": {"accuracy": 0.9, "loss": 0.3},
                                                         "size": {"mae": 2.0, "r2": 0.5, "loss": 0.1}}})
    stl_shape = record(baseline_config(config, "shape"), run_id="s1", summary={"test": {"shape": {"accuracy": 0.8}}})
    rows = compare_to_baselines(mtl, [mtl, stl_shape])
    assert [(c.task, c.metric, c.mtl, c.stl, c.baseline_id) for c in rows] == [
        ("shape", "accuracy", 0.9, 0.8, "s1"), ("size", "mae", 2.0, None, None)]
    assert rows[0].change == pytest.approx(-12.5)
    assert rows[1].change is None and rows[1].verdict[0] == "no single-task baseline yet"

    table = results_table([mtl, stl_shape])
    assert table[0]["shape accuracy"] == 0.9 and table[0]["size mae"] == 2.0
    assert table[1]["shape accuracy"] == 0.8 and "size mae" not in table[1]
    parsed = list(csv.DictReader(io.StringIO(rows_to_csv(table))))
    assert parsed[0]["run"] == "m" and parsed[1]["size mae"] == ""  # every column present, blanks for missing


def test_task_scoring_comes_from_the_dataset_else_from_what_the_run_recorded():
    config = mtl_config()
    assert task_scoring(config, "shape") == ("accuracy", True)
    assert task_scoring(config, "size") == ("mae", False)
    gone = config.with_updates(dataset=config.dataset.__class__(name="deleted-import"), tasks=("age",))
    recorded = {"tasks": {"age": {"metric": "mae", "higher_is_better": False}}}
    assert task_scoring(gone, "age", recorded) == ("mae", False)
    with pytest.raises(ValueError, match="'age'.*unknown"):
        task_scoring(gone, "age")
