"""Lessons as data (#19 §2): the built-in lesson files, the loader's one-sentence errors, goals, the class
board's ranking, and the lesson's runs in the store (closed lessons, teacher-only controls, answers).

Fast: no training, no Streamlit; runs are queued in a store that no worker serves.
"""
from __future__ import annotations

import dataclasses

import pytest

from mtlcore import ExperimentConfig
from mtlcore.lessons import (LINK_PARAMS, GoalError, LessonClosed, LessonError, LessonRoom, answer_shares, axes,
                             board_lesson, board_rows, export_csv, lesson_from_dict, load_lesson, load_lessons,
                             pareto_front, parse_goal, share_params, student_points, table)
from mtlcore.owners import Owner
from mtlcore.runs import NotOwnerError, Runner, RunRecord, RunStore

SHAPES = {"dataset.name": "shapes", "dataset.n_samples": 300}


def lesson_data(**changes):
    data = {"id": "demo", "title": "Demo", "goal": "highest shape accuracy", "settings": dict(SHAPES),
            "steps": [{"text": "Train.", "settings": {"tasks": "shape,size"}, "hide": ["optim"],
                       "question": "Better?", "choices": ["yes", "no"]}]}
    data.update(changes)
    return data


# ----- the built-in lessons --------------------------------------------------------------------

def test_the_four_built_in_lessons_load_and_each_step_is_a_valid_train_link():
    lessons = {lesson.id: lesson for lesson in load_lessons()}
    assert {"sharing", "unrelated", "relatedness", "weights"} <= set(lessons)
    for lesson in lessons.values():
        assert lesson.measured and "PENDING" not in lesson.measured, lesson.id  # every claim was measured
        for number, step in enumerate(lesson.steps, 1):
            params = lesson.link_params(number)
            assert params["lesson"] == lesson.id and params["step"] == str(number)
            config = ExperimentConfig.from_flat({k: v for k, v in params.items() if k not in LINK_PARAMS})
            assert config == lesson.step_config(number)  # the link opens exactly the step's settings
            assert "PENDING" not in step.answer
    sharing = lessons["sharing"]
    assert sharing.step_config(1).tasks == ("shape",) and sharing.step_config(len(sharing.steps)).tasks == (
        "shape", "color", "size")
    assert "background" in lessons["unrelated"].step_config(2).tasks
    assert {lessons["relatedness"].step_config(n).model.arch for n in (1, 3)} == {"hard", "mmoe"}


def test_a_lesson_file_with_a_mistake_gets_one_sentence_naming_the_file_and_the_problem(tmp_path):
    cases = {
        'id = "x"\ntitle = "T"\ngoal = "highest shape accuracy"\ncolour = 1\n[[steps]]\ntext = "a"\n': "unknown key 'colour'",
        'id = "x"\ntitle = "T"\ngoal = "highest shape accuracy"\n[[steps]]\ntext = "a"\nsettings = { tasks = "shape,wings" }\n': "no task 'wings'",
        'id = "x"\ntitle = "T"\ngoal = "highest shape accuracy"\n[[steps]]\ntext = "a"\nsettings = { "optim.lr" = "fast" }\n': "optim.lr",
        'id = "x"\ntitle = "T"\ngoal = "fastest shape"\n[[steps]]\ntext = "a"\n': "write one of",
        'id = "x"\ntitle = "T"\ngoal = "highest shape accuracy"\n[[steps]]\ntext = "a"\nhide = ["optimiser"]\n': "not a setting",
        'id = "x"\ntitle = "T"\ngoal = "highest shape accuracy"\n[[steps]]\ntext = "a"\n[[steps]\n': "not valid TOML",
        'title = "T"\ngoal = "highest shape accuracy"\n[[steps]]\ntext = "a"\n': "'id' is missing",
    }
    for text, expected in cases.items():
        path = tmp_path / "bad.toml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(LessonError) as caught:
            load_lesson(path)
        message = str(caught.value)
        assert message.startswith("bad.toml") and expected in message, message
        assert "\n" not in message and "Traceback" not in message


def test_hidden_and_locked_controls_are_checked_against_the_settings():
    lesson = lesson_from_dict(lesson_data(steps=[{"text": "a", "settings": {"tasks": "shape,size"},
                                                  "hide": ["optim", "loss.weights.size", "tasks.shape"],
                                                  "lock": ["model.arch", "dataset.n_samples"]}]))
    assert lesson.steps[0].hide == ("optim", "loss.weights.size", "tasks.shape")
    with pytest.raises(LessonError, match="loss.weights.wings"):
        lesson_from_dict(lesson_data(steps=[{"text": "a", "hide": ["loss.weights.wings"]}]))


def test_a_goal_naming_a_task_the_lesson_does_not_train_is_refused():
    with pytest.raises(LessonError, match="does not train"):
        lesson_from_dict(lesson_data(goal="highest background accuracy"))
    with pytest.raises(LessonError, match="scored by MAE"):
        lesson_from_dict(lesson_data(goal="highest size accuracy"))


# ----- goals ----------------------------------------------------------------------------------------

def test_goal_phrases_are_read_and_a_bad_one_lists_the_forms():
    goal = parse_goal("highest shape accuracy with size MAE under 0.5 px")
    assert (goal.task, goal.metric, goal.higher_is_better) == ("shape", "accuracy", True)
    assert (goal.condition.task, goal.condition.metric, goal.condition.above, goal.condition.limit) == (
        "size", "mae", False, 0.5)
    assert parse_goal("lowest task_b MAE").higher_is_better is False
    assert parse_goal("best Delta_m").metric == "delta_m"
    with pytest.raises(GoalError, match="best Delta_m"):
        parse_goal("make it good")


def record(run_id, owner, values, state="finished", key=None, tasks=("shape", "size"), arch="hard", seed=0):
    config = ExperimentConfig.from_flat({**SHAPES, "tasks": ",".join(tasks), "model.arch": arch, "seed": seed})
    summary = {"test": {t: ({"accuracy": v} if t != "size" else {"mae": v}) for t, v in values.items()}}
    return RunRecord(id=run_id, label=f"{owner} run", owner=owner, state=state, message="", config=config,
                     device="cpu", created_at=float(len(run_id)), started_at=None, finished_at=None,
                     progress=1.0 if state == "finished" else 0.4, summary=summary if state == "finished" else None,
                     worker=None, owner_key=key)


def test_the_board_ranks_runs_that_meet_the_goals_condition_first_then_by_the_goal():
    goal = parse_goal("highest shape accuracy with size MAE under 0.5")
    runs = [record("r1", "ann", {"shape": 0.95, "size": 0.8}, key="a"),   # best shape, misses the condition
            record("r2", "bob", {"shape": 0.80, "size": 0.4}, key="b"),
            record("r3", "cat", {"shape": 0.90, "size": 0.3}, key="c"),
            record("r4", "dan", {}, state="running", key="d")]
    rows = board_rows(runs, goal)
    assert [r.run_id for r in rows] == ["r3", "r2", "r1", "r4"]
    shown = table(rows, goal, {"shape": "accuracy", "size": "mae"})
    assert [r["#"] for r in shown] == [1, 2, 3, None]
    assert shown[0]["shape accuracy %"] == 90.0 and shown[0]["size MAE under 0.5"] == "yes"
    assert shown[2]["size MAE under 0.5"] == "no" and shown[3]["State"] == "running 40%"
    csv = export_csv(rows, goal, {"shape": "accuracy", "size": "mae"})
    assert csv.splitlines()[0].startswith("rank,student,run,label,state,shape accuracy,size mae")
    assert len(csv.strip().splitlines()) == 5


def test_best_delta_m_ranks_multi_task_runs_against_their_single_task_baselines():
    goal = parse_goal("best Delta_m")
    baselines = [record("s1", "ann", {"shape": 0.90}, key="a", tasks=("shape",), arch="single"),
                 record("s2", "ann", {"size": 0.50}, key="a", tasks=("size",), arch="single")]
    runs = [record("m1", "ann", {"shape": 0.81, "size": 0.55}, key="a"),   # Δm = (10 % + 10 %) / 2 = +10 %
            record("m2", "bob", {"shape": 0.99, "size": 0.45}, key="b")]   # Δm = (-10 % - 10 %) / 2 = -10 %
    rows = board_rows(runs, goal, baselines)
    assert [r.run_id for r in rows] == ["m2", "m1"]
    assert rows[0].delta_m == pytest.approx(-10.0) and rows[1].delta_m == pytest.approx(10.0)


def test_one_point_per_student_on_the_chart_and_the_front_keeps_the_unbeaten():
    goal = parse_goal("highest shape accuracy")
    runs = [record("r1", "ann", {"shape": 0.9, "size": 0.6}, key="a"),
            record("r2", "ann", {"shape": 0.7, "size": 0.3}, key="a"),   # ann's second run: not a second point
            record("r3", "ann", {"shape": 0.8, "size": 0.4}, key="z"),   # another browser typed "ann": a student
            record("r4", "bob", {"shape": 0.6, "size": 0.7}, key="b")]
    rows = board_rows(runs, goal)
    assert axes(goal, ["shape", "size"]) == ("shape", "size")
    points = student_points(rows, "shape", "size")
    assert [p.run_id for p in points] == ["r1", "r3", "r4"]
    front = pareto_front([(p.value("shape"), p.value("size")) for p in points], True, False)
    assert front == [(0.8, 0.4), (0.9, 0.6)]  # bob's (0.6, 0.7) is beaten on both


def test_answers_are_counted_in_the_order_of_the_choices():
    assert answer_shares({"no": 2, "maybe": 1}, ["yes", "no"]) == [("yes", 0), ("no", 2), ("maybe", 1)]


# ----- the lesson in the store ----------------------------------------------------------------------

@pytest.fixture
def room(tmp_path):
    store = RunStore(tmp_path / "home")
    return LessonRoom(store), Runner(store, max_workers=0)


ALICE = Owner.from_key("alice", "a" * 24)
MALLORY_AS_ALICE = Owner.from_key("alice", "m" * 24)  # another browser that typed the same name
TEACHER = Owner("teacher", role="teacher")
TINY = ExperimentConfig.from_flat({**SHAPES, "tasks": "shape", "model.arch": "single", "train.max_samples": 50})


def test_runs_started_from_a_lesson_carry_its_id(room):
    room, runner = room
    run_id = runner.submit(TINY, label="mine", owner=ALICE, lesson="sharing")
    other = runner.submit(TINY, label="plain", owner=ALICE)
    assert room.lesson_of(run_id) == "sharing" and room.lesson_of(other) is None
    assert [r.id for r in room.runs("sharing")] == [run_id]


def test_a_closed_lesson_refuses_start_with_one_sentence_and_only_the_teacher_closes_it(room):
    room, runner = room
    with pytest.raises(NotOwnerError, match="Only the teacher"):
        room.close("sharing", by=ALICE)
    room.close("sharing", by=TEACHER)
    with pytest.raises(LessonClosed) as caught:
        runner.submit(TINY, owner=ALICE, lesson="sharing")
    assert "closed the lesson" in str(caught.value) and "\n" not in str(caught.value)
    assert room.runs("sharing") == []  # nothing was queued
    runner.submit(TINY, owner=ALICE, lesson="weights")  # other lessons are open
    room.reopen("sharing", by=TEACHER)
    runner.submit(TINY, owner=ALICE, lesson="sharing")


def test_the_teacher_stops_every_run_of_a_lesson_and_a_student_only_their_own(room):
    room, runner = room
    mine = runner.submit(TINY, label="same name", owner=ALICE, lesson="sharing")
    theirs = runner.submit(TINY, label="same name", owner=MALLORY_AS_ALICE, lesson="sharing")
    elsewhere = runner.submit(TINY, owner=ALICE, lesson="weights")
    with pytest.raises(NotOwnerError):
        runner.cancel(mine, by=MALLORY_AS_ALICE)  # same name, same lesson, another key
    with pytest.raises(NotOwnerError, match="Only the teacher"):
        room.stop_all("sharing", runner, by=ALICE)
    assert "Stopping 2 runs" in room.stop_all("sharing", runner, by=TEACHER)
    states = {r.id: r.state for r in runner.store.list_runs()}
    assert states[mine] == states[theirs] == "cancelled" and states[elsewhere] == "queued"


def test_answers_one_per_student_and_step_a_new_one_replaces_it(room):
    room, _ = room
    room.answer("sharing", 1, "yes", by=ALICE)
    room.answer("sharing", 1, "no", by=ALICE)
    room.answer("sharing", 1, "no", by=MALLORY_AS_ALICE)
    assert room.answers("sharing") == {1: {"no": 2}}
    assert room.my_answer("sharing", 1, by=ALICE) == "no"
    with pytest.raises(ValueError, match="Pick an answer"):
        room.answer("sharing", 2, "  ", by=ALICE)


def test_a_shared_lesson_link_carries_its_goal_to_the_board(room):
    room, _ = room
    config = ExperimentConfig.from_flat({**SHAPES, "tasks": "shape,size"})
    params = share_params(config, hide=["optim", "reg"], lock=["tasks", "optim"], explain=False)
    assert params["hide"] == "optim,reg" and params["lock"] == "tasks" and params["explain"] == "0"
    shared = room.share("Weights race", "highest shape accuracy with size MAE under 0.5", params, by=TEACHER)
    assert shared.link["lesson"] == shared.id and shared.id.startswith("weights-race-")
    lesson = board_lesson(shared.id, room, lessons=[])
    assert lesson.title == "Weights race" and lesson.goal.condition is not None
    assert list(lesson.tasks) == ["shape", "size"]
