"""Studies print the same three-way verdict as Compare (mtlcore.verdicts), paired by seed."""
from mtlcore import ExperimentConfig
from mtlcore.studies import Outcome, StudySpec, build_result, default_base, format_result, plan

HIGHER = {"shape": True, "size": False}


def outcome(group: str, seed: int, **values) -> Outcome:
    tasks = {t: {"metric": "accuracy" if HIGHER[t] else "mae", "higher_is_better": HIGHER[t]} for t in values}
    return Outcome(group, seed, {t: {tasks[t]["metric"]: v} for t, v in values.items()}, tasks)


def stl_vs_mtl(seeds: int, mtl: list[tuple[float, float]], stl: list[tuple[float, float]]) -> dict:
    spec = StudySpec("stl-vs-mtl", ExperimentConfig.from_flat({"tasks": "shape,size"}, default_base("stl-vs-mtl")),
                     seeds=seeds)
    outcomes = []
    for seed, ((m_acc, m_mae), (s_acc, s_mae)) in enumerate(zip(mtl, stl)):
        outcomes += [outcome("mtl", seed, shape=m_acc, size=m_mae), outcome("stl:shape", seed, shape=s_acc),
                     outcome("stl:size", seed, size=s_mae)]
    return build_result(spec, [m.group for m in plan(spec)], outcomes)


def test_stl_vs_mtl_with_one_seed_prints_no_verdict():
    result = stl_vs_mtl(1, [(0.5, 3.0)], [(0.9, 1.0)])
    assert result["verdict"]["verdict"] == "one seed: not enough to tell"
    assert "One seed: not enough to tell" in format_result("stl-vs-mtl", result)


def test_stl_vs_mtl_with_a_clear_gap_over_seeds_says_helps():
    result = stl_vs_mtl(3, [(0.90, 2.0), (0.91, 2.1), (0.89, 1.9)], [(0.80, 2.5), (0.81, 2.6), (0.79, 2.4)])
    assert result["verdict"]["verdict"] == "helps"
    low, high = result["verdict"]["interval"]
    assert low <= result["delta_m"] <= high < 0
    assert "Verdict: Sharing helps" in format_result("stl-vs-mtl", result)


def test_stl_vs_mtl_within_noise_when_the_seeds_disagree():
    result = stl_vs_mtl(3, [(0.82, 2.0), (0.76, 2.0), (0.80, 2.0)], [(0.79, 2.0), (0.79, 2.0), (0.78, 2.0)])
    assert result["verdict"]["verdict"] == "within noise"
