"""``python -m mtlcore reproduce``: the framework, --list, and the toy reproduction on few steps."""
import json

import pytest

from mtlcore.cli import main
from mtlcore.reproduce import (
    INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, REPRODUCTIONS, ClaimRow, ReproductionResult, run_reproduction,
    stored_results,
)
from mtlcore.reproduce.base import claim_verdict
from mtlcore.reproduce.toy import ToyReproduction
from mtlcore.toy import STARTS


def test_list_names_every_reproduction_with_its_claim(capsys):
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    for name in REPRODUCTIONS.names():
        assert out.count(name) >= 1
    assert "toy" in out and "claim:" in out


@pytest.mark.parametrize("argv, message", [
    (["reproduce"], "--list"),
    (["reproduce", "nonsense"], "Unknown reproduction 'nonsense'; choose one of: "),
    (["reproduce", "toy", "--steps", "0"], "--steps must be 1 or more"),
    (["reproduce", "toy", "--methods", "equal,bogus", "--steps", "5"], "Unknown weighting method(s) bogus"),
    (["reproduce", "toy", "--quick", "--full"], "--quick and --full ask for opposite sizes"),
    (["reproduce", "toy", "--starts", "nine", "--steps", "5"], "--starts takes start numbers 0-4"),
    (["reproduce", "toy", "--starts", "7", "--steps", "5", "--workers", "1"], "Starts are numbered 0 to 4"),
    (["reproduce", "toy", "--beyond", "-5", "--steps", "5"], "--beyond must be 0 or more steps"),
])
def test_bad_input_gets_one_sentence_and_exit_code_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_HOME", str(tmp_path))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_the_toy_writes_its_table_and_result_where_the_app_finds_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("mtlcore.reproduce.toy.COST_SECONDS", 0.2)
    result = run_reproduction("toy", steps=60, methods=("equal", "famo"), workers=1, cost_methods=("equal", "famo"))
    table = result.table()
    assert "paper:   4/5" in table and "ours:    0/5" in table
    assert "only 60 of the paper's 50,000 steps" in table  # too few steps: no verdict on reaching the set
    path = tmp_path / "home" / "reproductions" / "toy" / "result.json"
    document = json.loads(path.read_text())
    assert document["name"] == "toy" and document["settings"]["steps"] == 60
    assert set(document["details"]["trajectories"]) == {"equal", "famo"}
    assert document["details"]["relative_cost"]["equal"] == 1.0
    assert any(row["claim"].startswith("FAMO's cost") for row in document["rows"])
    # By default the starts that missed are followed 40 % further (60 -> 24 more steps), and the table says so.
    assert document["settings"]["beyond"] == 24
    assert document["details"]["trajectories"]["equal"]["later"]["until"] == 84
    assert "still after 84 steps" in table
    assert stored_results(tmp_path / "home")["toy"].rows[0].claim.startswith("Equal-weight Adam")


def test_toy_verdicts_follow_what_the_runs_found():
    reached = {"equal": [True, True, False, True, True], "famo": [True] * 5, "pcgrad": [True, False, True, True, True]}
    runs = {m: {"reached": r} for m, r in reached.items()}
    rows = {r.claim.split(" ")[0]: r for r in ToyReproduction.rows(runs, {"equal": 1.0, "famo": 3.0, "nash_mtl": 40.0},
                                                                    50_000, STARTS)}
    assert rows["Equal-weight"].verdict == REPRODUCED and "stalls from (9, 9)" in rows["Equal-weight"].ours
    assert rows["FAMO"].verdict == REPRODUCED
    assert rows["PCGrad"].verdict == NOT_REPRODUCED  # a miss is shown, not hidden
    assert rows["MGDA"].verdict == INCONCLUSIVE and rows["MGDA"].ours == "not run"
    by_claim = {r.claim: r for r in ToyReproduction.rows(runs, {"equal": 1.0, "famo": 3.0, "nash_mtl": 40.0},
                                                          50_000, STARTS)}
    famo_cost = next(r for c, r in by_claim.items() if c.startswith("FAMO's cost"))
    nash_cost = next(r for c, r in by_claim.items() if c.startswith("Nash-MTL's cost"))
    assert famo_cost.verdict == NOT_REPRODUCED and famo_cost.ours.startswith("3.00x")
    assert nash_cost.verdict == REPRODUCED


def test_a_method_cut_short_of_50000_steps_gets_no_verdict_on_reaching_the_pareto_set():
    runs = {"equal": {"reached": [True, True, False, True, True], "steps": 50_000},
            "mgda": {"reached": [True, False, True, True, True], "steps": 12_500}}
    rows = {r.claim.split(" ")[0]: r for r in ToyReproduction.rows(runs, {}, 50_000, STARTS)}
    assert rows["Equal-weight"].verdict == REPRODUCED
    assert rows["MGDA"].verdict == INCONCLUSIVE and "only 12,500 of the paper's 50,000 steps" in rows["MGDA"].note


def test_results_round_trip_and_the_overall_verdict():
    rows = [ClaimRow("a", "1", "1", REPRODUCED), ClaimRow("b", "2", "?", INCONCLUSIVE)]
    result = ReproductionResult("x", "X", "paper", rows, seeds=5)
    assert result.verdict == INCONCLUSIVE
    again = ReproductionResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.rows == rows and again.verdict == INCONCLUSIVE
    with pytest.raises(ValueError, match="verdict is one of"):
        ClaimRow("c", "", "", "maybe")
    assert (claim_verdict("helps", "helps"), claim_verdict("hurts", "helps"),
            claim_verdict("within noise", "helps")) == (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)


def test_a_start_that_misses_is_followed_beyond_the_steps_and_the_table_tells_a_stall_from_a_slower_path():
    from mtlcore.reproduce.toy import _trajectory_job

    document = _trajectory_job("equal", 20, 0, beyond=30, start_indices=[2])  # (9, 9): nowhere near in 50 steps
    assert document["start_indices"] == [2] and len(document["reached"]) == 1
    assert document["later"] == {"until": 50, "reached_at": {"2": None}}
    runs = {"equal": {"reached": [True, True, False, True, True], "later": {"until": 100_000, "reached_at": {"2": None}}},
            "pcgrad": {"reached": [True, True, False, True, True], "later": {"until": 75_000, "reached_at": {"2": 65_000}}},
            "nash_mtl": {"reached": [True], "start_indices": [2]}}
    rows = {r.claim.split(" ")[0]: r for r in ToyReproduction.rows(runs, {}, 50_000, STARTS)}
    assert "stalls from (9, 9), still after 100,000 steps" in rows["Equal-weight"].ours
    assert rows["PCGrad"].verdict == NOT_REPRODUCED  # the paper's 50,000 steps are the claim
    assert "from (9, 9) it gets there at step 65,000" in rows["PCGrad"].ours
    assert rows["Nash-MTL"].verdict == INCONCLUSIVE and "1 of the 5 starts" in rows["Nash-MTL"].note
    assert rows["Nash-MTL"].ours.startswith("1/1 of the 1 start(s) run, (9, 9)")

