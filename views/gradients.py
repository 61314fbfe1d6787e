"""Gradients: the classic two-task toy, where conflicting gradients become visible.

The two-objective problem of Liu et al. (CAGrad, NeurIPS 2021), as Nash-MTL
(Navon et al., ICML 2022) and FAMO (Liu et al., NeurIPS 2023) run it: pick
weighting methods, press Start, and watch each one's paths from the five
starts grow on the loss landscape; click a point to see the two task
gradients, their cosine, every method's update, and the cone of directions
that lower both losses. Thin page: the problem, the runs and the figures
live in ``mtlcore.toy``; the claims and their check in ``mtlcore.reproduce``.
"""
from __future__ import annotations

import os
import threading

import numpy as np
import pandas  # noqa: F401  before any figure: plotly imports pandas lazily, and a half-imported pandas was seen
import streamlit as st

from mtlcore.reproduce import REPRODUCTIONS, measured_results, stored_results
from mtlcore.runs.queue_order import duration_text
from mtlcore.toy import (
    STARTS, STEPS, ToyComparison, loss_grid, measure_step_costs, objectives_at, pareto_set, start_process_server,
    task_gradients, toy_methods, update_directions, warm_up,
)
from mtlcore.toy.figures import (
    gradients_figure, landscapes_figure, method_colours, trajectories_figure, warm_up_figures,
)
from ui.page import header

K = "gradients_"
DEFAULT_METHODS = ["equal", "famo", "pcgrad", "upgrad"]
STEP_CHOICES = [1_000, 2_000, 5_000, 10_000, 20_000, 50_000]
ss = st.session_state


def warm_up_page() -> None:
    """What the first Start would otherwise pay, what it needs soonest first: the first chart with paths (it
    computes the fine Pareto polyline that "reached" is measured against, and imports the Plotly validators
    of its traces); PyTorch loading much of itself at an optimiser's first step, and the wait for the server
    that forks the comparisons' processes (``process_server``); then each method's first step (its imports
    and solvers) and the time of its update, to share the methods fairly among those processes."""
    warm_up_figures(*landscape())
    warm_up(processes=True)
    measure_step_costs(toy_methods())  # last: a Start before it ends deals the methods not yet timed as dear ones


@st.cache_resource(show_spinner=False)
def process_server() -> bool:
    """Once per server, as the page opens: start the forkserver, which loads PyTorch and the methods in a
    process of its own while this page draws (the first comparison's processes wait for it)."""
    start_process_server()
    return True


@st.cache_resource(show_spinner=False)
def warming() -> threading.Thread:
    """Once per server, in a thread of its own, once the page is drawn. Run in the page's script, the warm-up
    (10-15 s on a server just started) could not be interrupted, and a Start pressed meanwhile waited for all
    of it (its callback runs in the next script run)."""
    thread = threading.Thread(target=warm_up_page, name="gradients-warm-up", daemon=True)
    thread.start()
    return thread


@st.cache_data(show_spinner=False)
def landscape():
    """The loss grid and the Pareto set: the same for everyone, computed once."""
    return loss_grid(121), pareto_set(141)


def pick_point(point) -> None:
    ss[f"{K}point"] = (round(float(point[0]), 2), round(float(point[1]), 2))
    ss[f"{K}x1"], ss[f"{K}x2"] = ss[f"{K}point"]


def on_chart_select() -> None:
    """A click on the trajectories chart picks the point under it."""
    event = ss.get(f"{K}chart")
    points = (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) else \
        getattr(getattr(event, "selection", None), "points", [])
    if points:
        pick_point((points[0]["x"], points[0]["y"]))


def on_sliders() -> None:
    ss[f"{K}point"] = (float(ss[f"{K}x1"]), float(ss[f"{K}x2"]))


def start(methods, steps) -> None:
    old = ss.get(f"{K}comparison")
    if old is not None:
        old.stop()
    # Processes of their own, on every core: in a thread of the server the comparison shared the interpreter
    # lock with every page's redraws, at half its pace alone.
    ss[f"{K}comparison"] = ToyComparison(methods, steps, processes=os.cpu_count() or 1).start()
    ss.pop(f"{K}drawn_final", None)


def stop() -> None:
    comparison = ss.get(f"{K}comparison")
    if comparison is not None:
        comparison.stop()


process_server()
header("Gradients: when tasks pull apart")
st.markdown(
    "Two losses over a point **x = (x1, x2)**: the toy problem of Liu et al. (CAGrad, NeurIPS 2021), with the "
    "first loss scaled by 0.1 as in Nash-MTL (Navon et al., ICML 2022) and FAMO (Liu et al., NeurIPS 2023). Each "
    "task wants to end in its own bowl (x1 = +7 or x1 = -7, x2 ≈ -8.4); the **Pareto set** between them (grey) "
    "is where no step lowers both. From five starts, Adam at learning rate 0.001 follows each method's update. "
    "Where the two gradients point apart (negative cosine), plain averaging can stall: that is a **conflict**."
)
grid, pareto = landscape()
with st.expander("The loss landscapes", expanded=False):
    st.plotly_chart(landscapes_figure(grid, pareto), key=f"{K}landscapes", config={"displaylogo": False})

methods_available = toy_methods()
# A link may choose the methods and steps: ?methods=equal,famo&steps=2000 (unknown names are ignored).
wanted = [m for m in st.query_params.get("methods", "").split(",") if m in methods_available]
steps_wanted = st.query_params.get("steps", "")
left, middle, right = st.columns([4, 2, 2])
methods = left.multiselect(
    "Methods", methods_available, default=wanted or [m for m in DEFAULT_METHODS if m in methods_available],
    key=f"{K}methods",
    help="Every weighting method of the engine, the very objects that train networks: equal weights (plain "
         "Adam on the sum), loss weighting (uncertainty, DWA, RLW, FAMO, GradNorm) and gradient combination "
         "(MGDA, PCGrad, UPGrad, CAGrad, IMTL-G, Aligned-MTL, GradDrop, Nash-MTL). The 2-D point is the shared "
         "parameter. MGDA, CAGrad and Nash-MTL solve a problem at every step and are much slower. DWA changes "
         "its weights once per epoch, and the toy has no epochs: here it stays at equal weights.",
)
steps = middle.select_slider(
    "Steps", STEP_CHOICES, value=int(steps_wanted) if steps_wanted in map(str, STEP_CHOICES) else STEPS,
    key=f"{K}steps",
    help="Adam steps from each start. The papers run 50,000; fewer show the start of the paths only.",
)
comparison: ToyComparison | None = ss.get(f"{K}comparison")
running = comparison is not None and comparison.running
right.button("▶ Start", key=f"{K}start", type="primary", disabled=not methods, on_click=start,
             args=(methods, steps), help="Compute every picked method's paths from the five starts; they draw as "
                                         "they grow.")
right.button("■ Stop", key=f"{K}stop", disabled=not running, on_click=stop,
             help="Stop after the current chunk of steps; what was computed stays drawn.")

ss.setdefault(f"{K}point", (-2.0, 2.0))
ss.setdefault(f"{K}x1", ss[f"{K}point"][0])
ss.setdefault(f"{K}x2", ss[f"{K}point"][1])
ss.setdefault(f"{K}inspected", ss[f"{K}point"])  # the point the arrows below were drawn for


def status_rows(runs, comparison) -> list[dict]:
    equal = runs.get("equal")
    base = equal.seconds_per_step if equal is not None and equal.steps else None
    rows = []
    for method in comparison.methods:
        run = runs.get(method)
        if run is None:
            rows.append({"method": method, "steps": 0, "reached Pareto set": "-", "ms per step (CPU)": None,
                         "cost vs equal": None, "note": comparison.errors.get(method, "waiting")})
            continue
        reached = run.reached()
        rows.append({
            "method": method, "steps": run.steps,
            "reached Pareto set": f"{int(reached.sum())}/{len(reached)}" + ("" if run.finished else " so far"),
            "ms per step (CPU)": round(run.seconds_per_step * 1e3, 2),
            "cost vs equal": None if base is None else round(run.seconds_per_step / base, 2),
            "note": comparison.errors.get(method, "done" if run.finished else "running"),
        })
    return rows


def claims_table(runs, comparison) -> None:
    """The papers' claims beside this run's numbers (the toy reproduction's own rows)."""
    toy = REPRODUCTIONS.get("toy")
    finished = {m: {"reached": r.reached().tolist()} for m, r in runs.items() if r.finished}
    costs = {m: r.seconds_per_step for m, r in runs.items() if r.steps}
    if "equal" not in finished:
        st.caption("The papers' claims are checked here once equal weights have finished (add it to the methods).")
        return
    rows = toy.rows(finished, costs, comparison.steps, STARTS)
    st.dataframe([{"claim": r.claim, "paper": r.paper, "this run": r.ours, "verdict": r.verdict, "note": r.note}
                  for r in rows], hide_index=True, key=f"{K}claims")


@st.fragment(run_every=1.0 if running else None)
def live() -> None:
    comparison: ToyComparison | None = ss.get(f"{K}comparison")
    runs = comparison.snapshot() if comparison is not None else {}
    colours = method_colours(comparison.methods if comparison is not None else methods)
    computing = comparison is not None and comparison.running
    # While it computes, no grid of invisible points to click: drawn anew every second, it took a third of
    # the browser's work, on the cores the comparison computes on.
    fig = trajectories_figure(grid, pareto, runs, colours, picked=ss[f"{K}point"], clickable=not computing)
    st.plotly_chart(fig, key=f"{K}chart", on_select=on_chart_select, selection_mode="points",
                    config={"displaylogo": False})
    if ss.get(f"{K}inspected") != ss[f"{K}point"]:
        ss[f"{K}inspected"] = ss[f"{K}point"]  # before the rerun, which runs this fragment again first
        st.rerun()  # a click picked a new point: redraw the arrows below (outside this fragment)
    if comparison is None:
        st.info("Pick methods and press Start: their paths from the five starts (black dots) draw here as they "
                "grow. Click anywhere on the chart to inspect the gradients at that point.")
    else:
        done = all(r.finished for r in runs.values()) and len(runs) == len(comparison.methods)
        state = "running" if computing else ("finished" if done else "stopped")  # as the chart above was drawn
        left = comparison.seconds_left() if computing else None
        if left is not None:  # at the pace so far: six cheap methods at 50,000 steps take about a minute (README)
            state += f", about {duration_text(left)} left"
        st.caption(f"{state} · {comparison.steps:,} steps per start · cost per step is CPU time of the "
                   "process computing it, for all five starts together (the losses and gradients that every method shares "
                   "counted in full for each), relative to equal weights."
                   + (" While it runs, a click picks a point on a path; anywhere once it has ended (or set one "
                      "below)." if computing else ""))
        st.dataframe(status_rows(runs, comparison), hide_index=True, key=f"{K}status")
        claims_table(runs, comparison)
    if comparison is not None and not comparison.running and f"{K}drawn_final" not in ss:
        ss[f"{K}drawn_final"] = True
        st.rerun()  # once, so the buttons see it has ended


live()

st.subheader("Inspect a point")
st.caption("Click a point on the chart above, or set it here.")
c1, c2 = st.columns(2)
c1.slider("x1", -11.0, 11.0, step=0.05, key=f"{K}x1", on_change=on_sliders)
c2.slider("x2", -11.0, 11.0, step=0.05, key=f"{K}x2", on_change=on_sliders)
point = ss[f"{K}point"]
ss[f"{K}inspected"] = point  # the sliders move it without the fragment
gradients = task_gradients([point])[0]
g1, g2 = gradients
n1, n2 = float(np.linalg.norm(g1)), float(np.linalg.norm(g2))
cosine = float(g1 @ g2 / (n1 * n2)) if n1 > 0 and n2 > 0 else float("nan")
shown = methods or DEFAULT_METHODS
directions = update_directions(point, shown)
left, right = st.columns([3, 2])
with left:
    st.plotly_chart(gradients_figure(point, gradients, directions, method_colours(shown)), key=f"{K}arrows",
                    config={"displaylogo": False})
with right:
    f1, f2 = objectives_at([point])[0]
    st.metric("cosine(g1, g2)", "undefined" if np.isnan(cosine) else f"{cosine:+.3f}",
              help="The cosine of the angle between the two tasks' gradients. Negative: they conflict (a step "
                   "along one raises the other's loss); -1 on the Pareto set.")
    if not np.isnan(cosine):
        st.markdown("**Conflicting gradients**: the green cone (steps that lower both) is narrower than a half-turn."
                    if cosine < 0 else "The gradients agree: every step in the green half-cone lowers both losses.")
    rows = [{"arrow": "task 1: -g1", "length": n1, "lowers loss 1": "yes", "lowers loss 2": bool(g1 @ g2 > 0)},
            {"arrow": "task 2: -g2", "length": n2, "lowers loss 1": bool(g1 @ g2 > 0), "lowers loss 2": "yes"}]
    for method, d in directions.items():
        rows.append({"arrow": method, "length": float(np.linalg.norm(d)), "lowers loss 1": bool(d @ g1 < 0),
                     "lowers loss 2": bool(d @ g2 < 0)})
    st.dataframe(rows, hide_index=True, key=f"{K}arrow_table",
                 column_config={"length": st.column_config.NumberColumn(format="%.4g")})
    st.caption(f"At ({point[0]:.2f}, {point[1]:.2f}): loss 1 = {f1:.3f} (x 0.1), loss 2 = {f2:.3f}. Arrows show "
               "directions (unit length); the table gives their lengths. A method's arrow is minus what it hands "
               "the optimiser at a first step from here; Adam then rescales each coordinate.")

stored = stored_results().get("toy")
shipped = stored is None and (stored := measured_results().get("toy")) is not None
with st.expander("The stored reproduction (python -m mtlcore reproduce toy)", expanded=False):
    if shipped:
        st.caption("Not run yet in this data folder: the table as measured for the README. "
                   "`python -m mtlcore reproduce toy` runs it here.")
    if stored is None:
        st.caption("Not run yet in this data folder. `python -m mtlcore reproduce toy` runs it and prints the table.")
    else:
        st.dataframe([{"claim": r.claim, "paper": r.paper, "ours": r.ours, "verdict": r.verdict, "note": r.note}
                      for r in stored.rows], hide_index=True, key=f"{K}stored")
        st.caption(f"{stored.paper} Overall: {stored.verdict}; {stored.seconds:.0f} s on {stored.machine or 'this machine'}.")

warming()  # last, so the page is drawn first
