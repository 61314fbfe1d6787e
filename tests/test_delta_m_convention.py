"""Delta_m's sign: the lab says which convention it uses wherever Delta_m is shown or taught.

Maninis et al. (CVPR 2019) defined Delta_m with positive = multi-task better;
Nash-MTL (ICML 2022) flipped the sign, and this lab uses Nash-MTL's. LibMTL
and Auto-Lambda report the original sign, and LibMTL's default baseline is
the run after its first epoch: a student comparing numbers must be told.
"""
from mtlcore.compare import SIGN_CONVENTION, delta_m
from ui.texts import SECTIONS

from test_app_compare_predict import COMPARE, filled_home, run_page, texts, use_home  # noqa: F401  (fixtures)


def test_delta_m_is_negative_when_multi_task_is_better_as_in_nash_mtl():
    assert delta_m({"acc": 0.9}, {"acc": 0.8}, {"acc": True}) < 0
    assert delta_m({"mae": 2.0}, {"mae": 2.5}, {"mae": False}) < 0


def test_the_learn_page_says_who_defined_delta_m_and_whose_sign_it_uses():
    text = SECTIONS["negative_transfer"].body
    assert "Maninis" in text and "opposite sign" in text and "Nash-MTL" in text
    assert "LibMTL" in text and "Auto-Lambda" in text and "first epoch" in text


def test_the_compare_page_shows_which_sign_convention_delta_m_uses(filled_home, use_home):  # noqa: F811
    home, _ = filled_home
    use_home(home)
    at = run_page(COMPARE)
    metric = at.metric[0]
    assert "Nash-MTL" in metric.label and "negative = multi-task better" in metric.label
    assert SIGN_CONVENTION in texts(at.caption)
    assert "opposite sign" in SIGN_CONVENTION and "LibMTL" in SIGN_CONVENTION and "first epoch" in SIGN_CONVENTION
