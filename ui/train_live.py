"""The Train page's live run panel: state, progress, live charts, results, diagnostics, calibration.

    from ui.train_live import live_panel, recent_runs

``live_panel`` is drawn inside an ``st.fragment`` that polls the store once a
second while the run is queued or running (the page decides the polling), and
reads the run's step logs incrementally. Its widget and state keys carry the
Train page's prefix (``train_``), which tests and the browser rely on.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import streamlit as st

from mtlcore import ARCHITECTURES, dataset_info
from mtlcore import charts
from mtlcore.calibration_charts import has_calibration, reliability_figure
from mtlcore.runs import StoreError, steering
from ui.pickers import live_selectbox
from ui.safe_text import md, say
from ui.session import ago, get_runner, get_store, owner, run_name, state_badge
from ui.texts import HELP
from ui.train_steering import steering_controls, steering_marks, steering_paused

K = "train_"  # the Train page's prefix of widget and state keys
LIVE_POINTS = 600  # points per line of the live charts: plenty for a projector, cheap to redraw every second

ss = st.session_state


def step_logs(run_id: str) -> list[dict]:
    """All step logs of the run, read incrementally: each poll fetches only the new ones."""
    cache = ss.get(f"{K}steps")
    if not cache or cache["run"] != run_id:
        cache = {"run": run_id, "steps": []}
    last = cache["steps"][-1]["step"] if cache["steps"] else 0
    cache["steps"] = cache["steps"] + get_store().step_metrics(run_id, after_step=last)
    ss[f"{K}steps"] = cache
    return cache["steps"]


def figure(name: str, version: Any, build):
    """The figure ``name``, rebuilt only when ``version`` changes (a poll with no new epoch reuses it).

    Building Plotly figures is the costly part of a poll; the step chart changes
    every second, the per-epoch and diagnostics charts only once per epoch.
    """
    memo = ss.setdefault(f"{K}figures", {})
    if memo.get(name, (None, None))[0] != version:
        memo[name] = (version, build())
    return memo[name][1]


def fmt_metric(value: float | None, metric: str, unit: str = "") -> str:
    if value is None:
        return "—"
    if metric == "accuracy":
        return f"{value:.1%}"
    return f"{value:.3g}{f' {unit}' if unit else ''}"


def results_rows(summary: dict) -> list[dict[str, str]]:
    """One row per task: test and validation metric, chance level (classification), R² (regression)."""
    rows = []
    for task, spec in (summary.get("tasks") or {}).items():
        metric, unit = spec.get("metric", "accuracy"), spec.get("unit", "")
        test = (summary.get("test") or {}).get(task, {})
        val = (summary.get("val") or {}).get(task, {})
        classes = spec.get("num_classes") or 0
        rows.append({  # Test first after the task: a narrow column (a projector at 1024 px) still shows it
            "Task": task,
            "Test": fmt_metric(test.get(metric), metric, unit),
            "Validation": fmt_metric(val.get(metric), metric, unit),
            "Chance": f"{1 / classes:.1%}" if spec.get("kind") == "classification" and classes else "—",
            "Metric": {"accuracy": "accuracy", "mse": "MSE per pixel"}.get(metric, "mean abs. error"),
            "Kind": spec.get("kind", ""),
            "R²": f"{test['r2']:.3f}" if "r2" in test else "—",
            "Uncertainty": uncertainty_text(test),
        })
    return rows


def uncertainty_text(test: dict) -> str:
    """How honest the task's probabilities are: ECE before -> after temperature scaling, or the 90 % interval's coverage."""
    if "ece" in test:
        return (f"ECE {test['ece']:.3f} → {test.get('ece_calibrated', test['ece']):.3f} "
                f"(T = {test.get('temperature', 1.0):.2f})")
    if "coverage90" in test:
        return f"90 % interval covers {test['coverage90']:.0%} · NLL {test.get('nll', float('nan')):.2f}"
    return "—"


def calibration_panel(record) -> None:
    """Reliability diagrams of the run's classification tasks (Guo et al. 2017), before and after temperature."""
    tasks = [t for t in record.config.tasks if has_calibration(record.summary, t)]
    if not tasks:
        return
    with st.expander("Calibration: is the model as sure as it is right? (reliability diagrams)"):
        st.caption("Each point is a bin of test predictions: how sure the model was (x) and how often it was right "
                   "(y). On the diagonal it is calibrated; below, over-confident. The fitted temperature T "
                   "(validation split) rescales the logits so the points move to the diagonal; the predicted "
                   "class, hence the accuracy, stays the same.")
        columns = st.columns(2)
        for i, task in enumerate(tasks):
            columns[i % 2].plotly_chart(reliability_figure(record.summary["calibration"][task], task),
                                        key=f"{K}reliability_{task}", config={"displaylogo": False})


def eta(steps: list[dict], progress: float) -> str:
    if len(steps) < 2 or not 0 < progress < 1:
        return ""
    elapsed = steps[-1].get("t", 0) - steps[0].get("t", 0)
    if elapsed <= 0:
        return ""
    left = elapsed / max(progress, 1e-6) * (1 - progress)
    return f" · about {left:.0f} s left" if left < 120 else f" · about {left / 60:.0f} min left"


def live_panel(run_id: str, polling: bool) -> None:
    """The current run: state, progress, live charts; results and diagnostics when there are some."""
    store = get_store()
    if polling:
        get_runner()  # every few seconds: a worker that died is noticed (its run marked) and replaced
    try:
        record = store.get_run(run_id)
    except StoreError as error:
        say("warning", str(error))
        return
    if polling and not record.is_active:
        st.rerun()  # it has ended: redraw the page once, without polling

    tasks = list(record.config.tasks)
    # The label and the owner are user text: Markdown-escaped, never HTML (a label once ran script here).
    # One line, not a heading and a caption: at 1400x900 the live chart under it stays on the first screen.
    st.markdown(f"**{md(record.label or 'unnamed')}** · {record.id} · by {md(record.owner)}")
    steps = step_logs(run_id)
    epochs = store.epoch_metrics(run_id)
    total_epochs = record.config.train.epochs
    epoch_now = steps[-1]["epoch"] if steps else 0
    events = steering.events(store, run_id)  # live steering (ui/train_steering.py): its controls, the markers
    paused = record.state == "running" and steering_paused(events)  # its worker holds it between two steps
    status = (f"{'⏸ paused' if paused else state_badge(record.state)} · epoch {epoch_now}/{total_epochs} · "
              f"{record.progress:.0%}")
    if record.state == "running" and not paused:
        status += eta(steps, record.progress)
    st.progress(min(1.0, max(0.0, record.progress)), text=status)
    if record.state == "queued":
        # The fair queue's place (round-robin between people) and an estimate from recent runs' durations.
        place = store.queue_places().get(run_id)
        ahead = place.position - 1 if place else 0
        st.info(f"Waiting for a worker: {place.sentence(time.time())} ({ahead} run{'s' if ahead != 1 else ''} "
                "ahead; turns go round the people waiting)." if ahead
                else "Next in line: a worker picks it up in a moment.")
    elif record.state in ("failed", "diverged"):
        say("error", record.message or f"The run {record.state}.")
    elif record.state in ("cancelled", "interrupted"):
        say("warning", record.message or f"The run was {record.state}.")
    elif record.message and record.state == "running":
        say("caption", record.message)
    marks = steering_marks(run_id, [e for e in events if e.applied])

    if record.state == "finished" and record.summary:
        st.markdown("**Test results** (the test split was never used for training or early stopping)")
        st.dataframe(results_rows(record.summary), hide_index=True, width="stretch", key=f"{K}results")
        calibration_panel(record)
        say("caption", record.summary.get("message", "") + (f" Trained on {record.device} in "
                   f"{record.summary.get('seconds', 0):.0f} s." if record.device else ""))
        links = st.columns(2)
        links[0].page_link("views/compare.py", label="Compare runs", icon="⚖️", query_params={"run": run_id})
        links[1].page_link("views/predict.py", label="Predict with it", icon="🔮", query_params={"run": run_id})

    if not steps:
        steering_controls(record, events)
        if record.is_active:
            st.caption("The first points appear as soon as the worker has built the data and the model.")
        return
    specs = {t.name: t for t in dataset_info(record.config.dataset.name).tasks}
    colors = charts.task_colors(tasks)
    st.plotly_chart(charts.add_markers(charts.step_loss_figure(steps, tasks, uirevision=run_id,
                                                               max_points=LIVE_POINTS), marks),
                    key=f"{K}chart_steps")
    # Under the live chart, not above it: at 1400x900 the chart stays on the first screen, and one scroll shows
    # a slider and the curve it bends together.
    steering_controls(record, events)
    if epochs:
        for task in tasks:
            spec = specs.get(task)
            metric = spec.metric if spec else "accuracy"
            fig = figure(f"epoch_{task}", (run_id, len(epochs), marks), lambda: charts.add_markers(charts.epoch_figure(
                epochs, task, metric, colors[task], chance=spec.chance if spec else None,
                unit=spec.unit if spec else "", uirevision=run_id), marks, steps_per_epoch=epochs[0]["step"]))
            st.plotly_chart(fig, key=f"{K}chart_epoch_{task}")
    diagnostics_panel(record, steps, epochs, tasks, marks)


def diagnostics_panel(record, steps: list[dict], epochs: list[dict], tasks: list[str], marks=()) -> None:
    varying = charts.weights_vary(steps)
    measured = charts.has_diagnostics(steps, epochs)
    asked = record.config.train.diagnostics_every > 0
    if not (varying or measured or asked):
        return
    st.markdown("#### How the tasks interact")
    if varying:
        st.plotly_chart(charts.add_markers(charts.weights_figure(steps, tasks, uirevision=record.id,
                                                                 max_points=LIVE_POINTS), marks),
                        key=f"{K}chart_weights")
    if not measured:
        if asked and not ARCHITECTURES.get(record.config.model.arch).has_shared_parameters:
            st.info("Gradient diagnostics need parameters that the tasks share; soft sharing has none.")
        elif asked and len(tasks) < 2:
            st.info("Gradient diagnostics compare tasks: train two or more.")
        elif asked:
            st.caption("Waiting for the first gradient measurement…")
        return
    measured_steps = sum(1 for s in steps if s.get("diagnostics"))
    version = (record.id, len(epochs), measured_steps if not epochs else 0)
    st.plotly_chart(figure("cosine", version, lambda: charts.cosine_figure(steps, epochs, tasks, uirevision=record.id)),
                    key=f"{K}chart_cosine")
    st.caption("Blue cells: the two tasks push the shared weights the same way. Red cells: they pull against each "
               "other — a step that helps one hurts the other (gradient conflict, Yu et al. 2020).")
    st.plotly_chart(figure("affinity", version, lambda: charts.affinity_figure(epochs, tasks, steps,
                                                                               uirevision=record.id)),
                    key=f"{K}chart_affinity")
    st.caption("Read row i across: a small step on task i alone changes task j's loss. Blue (Z > 0) means training "
               "i helps j, red (Z < 0) means it hurts; the diagonal is how much the step helps task i itself "
               "(Fifty et al. 2021).")
    st.plotly_chart(figure("cosine_lines", (record.id, measured_steps),
                           lambda: charts.cosine_lines_figure(steps, tasks, uirevision=record.id)),
                    key=f"{K}chart_cosine_lines")


def recent_runs(reopen: Callable[[str], None]) -> None:
    """The person's last 20 runs; ``reopen`` (a button callback of the page) shows one with its settings."""
    runs = get_store().list_runs(owner=owner())[:20]
    with st.expander(f"Your recent runs ({len(runs)})", expanded=False):
        if not runs:
            st.caption("Runs you start in this browser appear here (they belong to its private key, in the sidebar).")
            return
        labels = {r.id: f"{state_badge(r.state)} · {run_name(r)} · {ago(r.created_at)}" for r in runs}
        choice = live_selectbox("Run", labels, f"{K}reopen_choice", help=HELP["reopen"])  # "2 min ago" moves
        st.button("Open this run", key=f"{K}reopen", on_click=reopen, args=(choice,), help=HELP["reopen"])
