"""A study's result as text tables, for the command line."""
from __future__ import annotations

from typing import Any, Sequence

from ..verdicts import RULE


def format_result(kind: str, result: dict[str, Any]) -> str:
    """The table ``python -m mtlcore study KIND`` prints."""
    return {"stl-vs-mtl": _stl_vs_mtl, "pairs": _pairs, "sweep": _sweep, "relatedness": _relatedness,
            "mtl-vs-ensemble": _mtl_vs_ensemble}[kind](result)


def _spread(value: dict[str, Any] | None) -> str:
    if value is None:
        return "-"
    return f"{value['mean']:.4f} ± {value['std']:.4f}"


def _number(value: float | None, fmt: str = "{:+.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def _grid(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned first column, right-aligned others, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _yes_no(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "-"}[value]


def _stl_vs_mtl(result: dict[str, Any]) -> str:
    rows = [("task", "metric", "STL mean ± std", "MTL mean ± std", "gain %", "beyond spread")]
    for row in result["tasks"]:
        rows.append((row["task"], row["metric"] or "-", _spread(row["stl"]), _spread(row["mtl"]),
                     _number(row["gain"]), _yes_no(row["clear"])))
    lines = [_grid(rows), ""]
    if result["delta_m"] is not None:
        lines.append(f"Delta_m = {result['delta_m']:+.2f}% (paper sign: negative = multi-task better); "
                     f"mean gain {result['mean_gain']:+.2f}%.")
    if result.get("verdict"):
        lines.append(f"Verdict: {result['verdict']['sentence']}")
    lines.append(result["rule"])
    lines.append("gain % = change of the test metric, multi-task against single-task, positive = better.")
    return "\n".join(lines)


def _matrix(tasks: Sequence[str], matrix: list[list[float | None]], fmt: str, corner: str) -> str:
    rows = [(corner, *tasks)]
    for task, values in zip(tasks, matrix):
        rows.append((task, *("." if v is None else fmt.format(v) for v in values)))
    return _grid(rows)


def _pairs(result: dict[str, Any]) -> str:
    tasks = [t["task"] for t in result["tasks"]]
    lines = ["Transfer: gain % of the column's task when trained with the row's task (positive = helps).",
             _matrix(tasks, result["transfer"], "{:+.1f}", "with \\ task"), ""]
    if result["affinity"] is not None:
        lines += ["Lookahead affinity Z(row -> column) of the all-task model, mean over epochs and seeds "
                  "(positive = a step on the row's task lowers the column's loss).",
                  _matrix(tasks, result["affinity"], "{:+.4f}", "step on \\ task"), ""]
    else:
        lines += [result["affinity_note"], ""]
    rows = [("tasks trained together", "mean gain %", "gains %")]
    ranked = sorted(result["subsets"], key=lambda s: -1e9 if s["mean_gain"] is None else -s["mean_gain"])
    for subset in ranked:
        gains = ", ".join(f"{t} {_number(g)}" for t, g in subset["gains"].items())
        rows.append(("+".join(subset["tasks"]), _number(subset["mean_gain"]), gains))
    lines.append(_grid(rows))
    return "\n".join(lines)


def _sweep(result: dict[str, Any]) -> str:
    a, b = (f"{t['task']} {t['metric'] or ''}".strip() for t in result["tasks"])
    ta, tb = (t["task"] for t in result["tasks"])
    rows = [("point", a, b, "on Pareto front")]
    for point in result["points"]:
        rows.append((point["label"], _spread(point["values"][ta]), _spread(point["values"][tb]),
                     _yes_no(point["on_front"])))
    return _grid(rows) + "\nw = loss weight of the first task (the second gets 1 - w); means ± std over seeds."


def _relatedness(result: dict[str, Any]) -> str:
    tasks = [t["task"] for t in result["tasks"]]
    rows = [("correlation", "arch", "benefit % (mean ± std)", "verdict", *(f"{t} gain %" for t in tasks))]
    for row in result["rows"]:
        b = row["benefit"]
        benefit = "-" if b is None else f"{b['mean']:+.2f} ± {b['std']:.2f}"
        verdict = (row.get("verdict") or {}).get("verdict", "-")
        rows.append((f"{row['correlation']:g}", row["arch"], benefit, verdict,
                     *(_number(row["gains"][t]) for t in tasks)))
    return _grid(rows) + "\n" + result["benefit_rule"] + ".\n" + RULE


def _mtl_vs_ensemble(result: dict[str, Any]) -> str:
    rows = [("task", "metric", "MTL", "STL", "ensemble (average)", "ensemble (vote)", "one member",
             "ensemble vs MTL %", "beyond spread")]
    for row in result["tasks"]:
        rows.append((row["task"], row["metric"] or "-", _spread(row["mtl"]), _spread(row["stl"]),
                     _spread(row["ensemble"]), _spread(row["vote"]), _spread(row["member"]),
                     _number(row["ensemble_vs_mtl"]), _yes_no(row["clear"])))
    budget = [("model", "runs", "parameters", "training s (mean ± std)")]
    for row in result["budgets"]:
        seconds = row["seconds"]
        budget.append((row["model"], str(row["runs"]), "-" if row["parameters"] is None else f"{row['parameters']:,}",
                       "-" if seconds is None else f"{seconds['mean']:.1f} ± {seconds['std']:.1f}"))
    return "\n".join([
        _grid(rows), "",
        _grid(budget), "",
        f"Means ± std over seeds; the ensemble has {result['ensemble']} bagged members per task "
        "(bootstrap samples; average of probabilities, or majority vote). Packed runs count their share of "
        "the pack's time.",
        "ensemble vs MTL % = change of the test metric, ensemble against the multi-task model, positive = "
        "ensemble better.",
        result["rule"],
    ])
