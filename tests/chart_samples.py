"""Plain data for every figure builder of ``mtlcore.charts``: one sample figure each.

Used by tests/test_chart_layout.py (every builder's layout) and by
benchmarks/chart_gallery.py (drawn in Chromium at the widths a 1024 px screen gives them). A new ``*_figure``
in the charts package needs a line here, or the layout test says which
builder has none.
"""
from __future__ import annotations

import math

TASKS = ["shape", "color", "size", "background"]
# Drawn across the whole main area (about 700 px at 1024 px), not in a narrow column.
FULL_WIDTH = {"class_board.class_board_figure", "class_board.answers_figure"}
PAIRS = [f"{a}|{b}" for i, a in enumerate(TASKS) for b in TASKS[i + 1:]]


def steps(n: int = 200, extreme: bool = False) -> list[dict]:
    out = []
    for i in range(1, n + 1):
        diag = {"cosine": {p: math.cos(i / 20 + k) for k, p in enumerate(PAIRS)}} if i % 10 == 0 else {}
        out.append({"step": i, "loss": {t: 2.0 / (1 + i / 30) + 0.1 * k for k, t in enumerate(TASKS)},
                    "weight": {t: (3.7e10 if extreme and t == "color" and i > 100 else 1.0 + 0.3 * math.sin(i / 15 + k))
                               for k, t in enumerate(TASKS)},
                    "diagnostics": diag})
    return out


def epochs(n: int = 6) -> list[dict]:
    out = []
    for e in range(1, n + 1):
        split = {t: {"loss": 1.5 / e, "accuracy": 0.5 + 0.07 * e} for t in TASKS}
        out.append({"epoch": e, "train": split, "val": split, "diagnostics": {
            "cosine_mean": {p: -0.25 + 0.1 * k for k, p in enumerate(PAIRS)},
            "conflict_fraction": {p: 0.67 for p in PAIRS},
            "affinity": {f"{a}->{b}": 0.012 * (k - 6) for k, (a, b) in
                         enumerate((a, b) for a in TASKS for b in TASKS if a != b)}}})
    return out


def calibration() -> dict:
    bins = [{"lower": k / 10, "upper": (k + 1) / 10, "confidence": k / 10 + 0.05, "accuracy": k / 12, "count": 5 + k}
            for k in range(3, 10)]
    return {"temperature": 1.7, "bins": bins,
            "bins_calibrated": [dict(b, accuracy=min(1.0, b["confidence"] + 0.02)) for b in bins]}


def study_tasks() -> list[dict]:
    def value(mean):
        return {"mean": mean, "std": 0.02, "n": 3}
    return [{"task": t, "metric": "accuracy", "higher_is_better": True, "stl": value(0.8), "mtl": value(0.78),
             "ensemble": value(0.82), "vote": value(0.81), "member": value(0.75)} for t in TASKS[:3]]


def sweep_result() -> dict:
    a, b = study_tasks()[:2]
    points = [{"kind": "weight", "label": f"w={w / 4:.2f}", "on_front": w in (0, 2, 4),
               "values": {a["task"]: {"mean": 0.6 + 0.08 * w, "std": 0.01}, b["task"]: {"mean": 0.9 - 0.07 * w, "std": 0.01}}}
              for w in range(5)]
    points.append({"kind": "method", "label": "uncertainty", "on_front": False,
                   "values": {a["task"]: {"mean": 0.7, "std": 0.02}, b["task"]: {"mean": 0.7, "std": 0.02}}})
    return {"tasks": [a, b], "points": points}


def relatedness_result() -> dict:
    return {"archs": ["hard", "mmoe"], "rows": [
        {"arch": arch, "correlation": c, "benefit": {"mean": (c - 0.5) * (4 if arch == "hard" else 2), "std": 0.5}}
        for arch in ("hard", "mmoe") for c in (0.0, 0.5, 0.9, 1.0)]}


def relatedness_details() -> dict:
    """A reproduction's details (``mtlcore.reproduce.mmoe_relatedness``): loss by model and correlation."""
    loss = {arch: {f"{p:g}": {"mean": base + (1 - p) * 0.006, "std": 0.003, "n": 5} for p in (1.0, 0.9, 0.5)}
            for arch, base in (("hard", 0.046), ("mmoe", 0.040))}
    return {"correlations": [1.0, 0.9, 0.5], "loss": loss}


def sweep_details() -> dict:
    """``mtlcore.reproduce.sweep_baseline``'s details: five static weights (one chosen) and five methods."""
    sweep = [{"label": f"w(digit)={w / 6:.6f}", "weight": round(w / 6, 6), "chosen": w == 1,
              "test": {"mean": 9.5 + 4 * w, "std": 10.0, "n": 5}} for w in range(1, 6)]
    methods = {m: {"test": {"mean": 7.0 + 4 * k, "std": 12.0, "n": 5}}
               for k, m in enumerate(("uncertainty", "dwa", "famo", "pcgrad", "upgrad"))}
    return {"tasks": ["digit", "ink"], "sweep": sweep, "methods": methods}


def samples() -> dict[str, object]:
    """{"module.builder": a function of no argument that returns its figure} for every builder."""
    from mtlcore import charts
    from mtlcore.charts import class_board, reproductions, studies

    n = len(TASKS)
    matrix = [[None if i == j else 0.3 * (i - j) for j in range(n)] for i in range(n)]
    result = {"tasks": study_tasks(), "transfer": matrix[:3][:3], "affinity": [r[:3] for r in matrix[:3]]}
    runs = [charts.Curve(f"run {k} · a long student label", [(e, 0.5 + 0.05 * e + 0.02 * k) for e in range(1, 9)],
                         charts.PALETTE[k]) for k in range(4)]
    return {
        "training.step_loss_figure": lambda: charts.step_loss_figure(steps(), TASKS),
        "training.epoch_figure": lambda: charts.epoch_figure(epochs(), "background", "accuracy", chance=0.25),
        "training.weights_figure": lambda: charts.weights_figure(steps(extreme=True), TASKS),
        "diagnostics.cosine_figure": lambda: charts.cosine_figure(steps(), epochs(), TASKS),
        "diagnostics.cosine_lines_figure": lambda: charts.cosine_lines_figure(steps(), TASKS),
        "diagnostics.affinity_figure": lambda: charts.affinity_figure(epochs(), TASKS),
        "architecture.architecture_figure": lambda: charts.architecture_figure(
            "soft", TASKS, title="Soft sharing: a network per task, tied by λ"),
        "calibration.reliability_figure": lambda: charts.reliability_figure(calibration(), "background"),
        "calibration.temperature_figure": lambda: charts.temperature_figure(
            [2.0, 0.5, -1.0, 0.1], ["circle", "square", "triangle", "star"], 1.0, fitted=1.7, task="shape"),
        "comparison.curves_figure": lambda: charts.curves_figure("background", "accuracy", runs,
                                                                 higher_is_better=True),
        "prediction.probability_figure": lambda: charts.probability_figure(
            {f"digit {k}": p for k, p in enumerate([0.02, 0.05, 0.61, 0.1, 0.02, 0.05, 0.05, 0.04, 0.03, 0.03])},
            best="digit 2"),
        "studies.stl_vs_mtl_figure": lambda: studies.stl_vs_mtl_figure(result),
        "studies.transfer_figure": lambda: studies.transfer_figure(result),
        "studies.affinity_figure": lambda: studies.affinity_figure(result),
        "studies.sweep_figure": lambda: studies.sweep_figure(sweep_result()),
        "studies.relatedness_figure": lambda: studies.relatedness_figure(relatedness_result()),
        "studies.ensemble_figure": lambda: studies.ensemble_figure(dict(result, ensemble=5)),
        "reproductions.relatedness_figure": lambda: reproductions.relatedness_figure(relatedness_details()),
        "reproductions.sweep_figure": lambda: reproductions.sweep_figure(sweep_details()),
        "reproductions.cost_figure": lambda: reproductions.cost_figure(
            {"relative_cost": {"equal": 1.0, "mgda": 9.9, "pcgrad": 2.1, "cagrad": 25.6, "nash_mtl": 115.0,
                               "famo": 1.5}}),
        "class_board.class_board_figure": lambda: class_board.class_board_figure(
            [(f"student {k}", 0.6 + 0.03 * k, 1.0 - 0.05 * k) for k in range(8)], ("shape", "accuracy"),
            ("size", "mae"), front=[(0.6, 1.0), (0.81, 0.65)]),
        "class_board.answers_figure": lambda: class_board.answers_figure(
            "Which task lost when trained together?", [("shape", 12), ("size", 5), ("neither", 3)]),
    }
