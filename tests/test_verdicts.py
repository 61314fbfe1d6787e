"""The one verdict rule (mtlcore.verdicts): one seed, a clear gap over seeds, a gap within noise."""
from mtlcore.verdicts import (
    HELPS, HURTS, NO_DATA, ONE_SEED, WITHIN_NOISE, bootstrap_interval, classify, delta_m_verdict, verdict_of_values,
)

HIGHER = {"shape": True, "size": False}  # accuracy: higher is better; MAE: lower is better


def test_one_seed_is_not_enough_to_tell_however_large_the_difference():
    verdict = delta_m_verdict({0: {"shape": 0.5, "size": 3.0}}, {0: {"shape": 0.9, "size": 1.0}}, HIGHER)
    assert verdict.label == ONE_SEED
    assert verdict.per_seed[0] > 50  # a huge difference, still no verdict
    assert verdict.interval is None and not verdict.decided and verdict.helped is None
    assert "one seed: not enough to tell" in verdict.sentence().lower()


def test_several_seeds_with_a_clear_gap_say_helps_or_hurts():
    # Multi-task 10 points better on shape and 20 % better on size, seed after seed.
    better = {s: {"shape": 0.80 + 0.01 * s, "size": 0.80} for s in range(5)}
    alone = {s: {"shape": 0.70 + 0.01 * s, "size": 1.00 + 0.01 * s} for s in range(5)}
    helps = delta_m_verdict(better, alone, HIGHER)
    assert helps.label == HELPS and helps.helped is True
    low, high = helps.interval
    assert low <= helps.delta_m.mean <= high < 0  # Delta_m's sign: negative = multi-task better
    assert helps.tasks["shape"]["mtl"].n == 5 and abs(helps.tasks["size"]["stl"].mean - 1.02) < 1e-9
    hurts = delta_m_verdict(alone, better, HIGHER)  # the same numbers the other way round
    assert hurts.label == HURTS and hurts.interval[0] > 0
    assert "negative transfer" in hurts.sentence()


def test_several_seeds_whose_differences_change_sign_are_within_noise():
    mtl = {0: {"shape": 0.81, "size": 1.0}, 1: {"shape": 0.75, "size": 1.0}, 2: {"shape": 0.79, "size": 1.0},
           3: {"shape": 0.76, "size": 1.0}}
    stl = {0: {"shape": 0.78, "size": 1.0}, 1: {"shape": 0.78, "size": 1.0}, 2: {"shape": 0.77, "size": 1.0},
           3: {"shape": 0.78, "size": 1.0}}
    verdict = delta_m_verdict(mtl, stl, HIGHER)
    assert verdict.label == WITHIN_NOISE
    low, high = verdict.interval
    assert low < 0 < high
    assert verdict.seeds == (0, 1, 2, 3)


def test_seeds_pair_up_only_when_both_sides_have_every_task():
    mtl = {0: {"shape": 0.8, "size": 1.0}, 1: {"shape": 0.8, "size": 1.0}, 7: {"shape": 0.8, "size": 1.0}}
    stl = {0: {"shape": 0.7, "size": 1.2}, 1: {"shape": 0.7, "size": None}}  # seed 1 lacks a baseline
    verdict = delta_m_verdict(mtl, stl, HIGHER)
    assert verdict.label == ONE_SEED and verdict.seeds == (0,)
    assert delta_m_verdict({}, {}, HIGHER).label == NO_DATA


def test_the_interval_and_the_rule_themselves():
    low, high = bootstrap_interval([1.0, 2.0, 3.0, 4.0])
    assert 1.0 <= low < 2.5 < high <= 4.0
    assert bootstrap_interval([1.0, 2.0, 3.0]) == bootstrap_interval([1.0, 2.0, 3.0])  # reproducible
    assert (classify(-3, -1), classify(1, 3), classify(-1, 1)) == (HELPS, HURTS, WITHIN_NOISE)
    assert verdict_of_values({3: -2.0, 4: -2.5, 5: -1.5}).label == HELPS
