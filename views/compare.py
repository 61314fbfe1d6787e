"""Compare: overlay runs' curves, tabulate their test metrics, and ask the honest
question -- does training these tasks together help? -- against single-task
baselines trained with the same settings (Delta_m, Maninis et al. 2019).

Thin page: the arithmetic lives in ``mtlcore.compare``.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from mtlcore import ConfigError
from mtlcore.calibration import calibration_rows, uncertainty_rows
from mtlcore.charts import Curve, curves_figure, has_calibration, reliability_figure, series_colors, thin
from mtlcore.charts.markers import add_markers, steering_markers
from mtlcore.compare import (
    CITATION, Baselines, baseline_config, compare_to_baselines, results_table, rows_to_csv, task_scoring,
)
from mtlcore.seeds import missing_seed_configs, seeded_values
from mtlcore.compare import SIGN_CONVENTION
from mtlcore.verdicts import RULE, delta_m_verdict
from mtlcore.runs import StoreError, steering
from ui.safe_text import md, say
from ui.page import header
from ui.session import get_runner, get_store, owner, run_name

ACTIVE = ("queued", "running")


@st.cache_data(max_entries=256, show_spinner=False)
def _ended_metrics(home: str, run_id: str, finished_at: float) -> tuple[list, list]:
    """Metrics of a run that has ended never change: read them once (keyed by when it ended)."""
    store = get_store()
    return thin(store.step_metrics(run_id)), store.epoch_metrics(run_id)


def metrics_of(run) -> tuple[list, list]:
    """(step logs, epoch logs) of ``run``; fresh for active runs, cached for ended ones."""
    store = get_store()
    if run.state in ACTIVE or run.finished_at is None:
        return thin(store.step_metrics(run.id)), store.epoch_metrics(run.id)
    return _ended_metrics(str(store.home), run.id, run.finished_at)


# ----- picking runs ------------------------------------------------------------------

def default_picks(runs) -> list[str]:
    """The run in the URL (``?run=ID``) or the newest finished multi-task run, with its finished baselines."""
    by_id = {r.id: r for r in runs}
    baselines = Baselines(runs)
    wanted = st.query_params.get("run")
    first = by_id.get(wanted) if wanted else None
    finished_mtl = [r for r in runs if r.state == "finished" and len(r.config.tasks) > 1]
    if first is None:  # prefer a multi-task run that already has a baseline to compare with
        first = next((r for r in finished_mtl
                      if any(baselines.find(r.config, t) for t in r.config.tasks)), None)
    if first is None:
        first = next(iter(finished_mtl), None)
    if first is None:
        return [r.id for r in runs[:3]]
    picks = [first.id]
    if len(first.config.tasks) > 1:
        for task in first.config.tasks:
            baseline = baselines.find(first.config, task)
            if baseline is not None:
                picks.append(baseline.id)
    return picks


def pick_runs(runs) -> list:
    """Filters and the run picker; return the picked RunRecords, in the order picked."""
    by_id = {r.id: r for r in runs}
    left, middle, right = st.columns([2, 2, 2])
    label_filter = left.text_input(
        "Label contains", key="compare_label_filter", placeholder="e.g. baseline",
        help="Show only runs whose label contains this text (upper or lower case alike). Leave empty for all.",
    )
    owners = sorted({r.owner for r in runs})
    owner_filter = middle.multiselect(
        "Owners", owners, key="compare_owner_filter", placeholder="everyone",
        help="Show only the runs of these people. Leave empty to see everyone's runs.",
    )
    state_filter = right.multiselect(
        "States", ["finished", "running", "queued", "cancelled", "diverged", "failed", "interrupted"],
        key="compare_state_filter", placeholder="any state",
        help="Show only runs in these states. Only finished runs have test metrics; running ones have curves so far.",
    )
    text = label_filter.strip().lower()
    shown = [r for r in runs
             if (not text or text in (r.label or "").lower())
             and (not owner_filter or r.owner in owner_filter)
             and (not state_filter or r.state in state_filter)]
    # Runs already picked stay in the list, so that changing a filter never drops a pick.
    picked_before = [i for i in st.session_state.get("compare_runs", []) if i in by_id]
    wanted = st.query_params.get("run")
    if wanted in by_id and wanted != st.session_state.get("compare_url_run") and "compare_runs" in st.session_state:
        # A link to this page with ?run=ID adds that run to the picks, once.
        picked_before = [wanted] + [i for i in picked_before if i != wanted]
    st.session_state["compare_url_run"] = wanted
    options = [r.id for r in shown] + [i for i in picked_before if i not in {r.id for r in shown}]
    if "compare_runs" in st.session_state:
        st.session_state["compare_runs"] = picked_before
        kwargs = {}
    else:
        kwargs = {"default": [i for i in default_picks(runs) if i in options]}
    picked = st.multiselect(
        f"Runs to compare ({len(shown)} of {len(runs)} shown)", options, key="compare_runs",
        format_func=lambda i: f"{run_name(by_id[i])} · {by_id[i].owner} · {by_id[i].state}",
        placeholder="Pick one or more runs",
        help="Runs from everyone, newest first. Their curves are overlaid and their test metrics tabulated below.",
        **kwargs,
    )
    return [by_id[i] for i in picked]


# ----- curves ----------------------------------------------------------------------

def draw_curves(picked, metrics: dict) -> None:
    """Per task: validation metric per epoch, and training loss per step; one line per run."""
    tasks: dict[tuple[str, str], tuple[str, bool]] = {}  # (dataset, task) -> (metric, higher is better)
    for run in picked:
        for task in run.config.tasks:
            if (run.config.dataset.name, task) not in tasks:
                try:
                    tasks[(run.config.dataset.name, task)] = task_scoring(run.config, task, run.summary)
                except ValueError as error:
                    say("warning", str(error))
    several_datasets = len({d for d, _ in tasks}) > 1
    colour = series_colors([run.id for run in picked])  # one colour per run, the same in every chart
    # Live steering: a fork is drawn from its parent's step (a branch), and each run's changes are marked.
    store = get_store()
    starts = {run.id: steering.branch_start(store, run.id) or (0, 0) for run in picked}
    marks = {run.id: steering_markers(steering.applied(store, run.id)) for run in picked}
    val_tab, loss_tab = st.tabs(["Validation metric per epoch", "Training loss per step"])
    for tab, kind in ((val_tab, "val"), (loss_tab, "loss")):
        with tab:
            columns = st.columns(2)
            for index, ((dataset, task), (metric, higher)) in enumerate(tasks.items()):
                curves, shown = [], []
                for run in picked:
                    if run.config.dataset.name != dataset or task not in run.config.tasks:
                        continue
                    steps, epochs = metrics[run.id]
                    start_step, start_epoch = starts[run.id]
                    if kind == "val":
                        points = [(e["epoch"] + start_epoch, e["val"][task][metric]) for e in epochs
                                  if task in e.get("val", {}) and metric in e["val"][task]]
                    else:
                        points = [(s["step"] + start_step, s["loss"][task]) for s in steps if task in s.get("loss", {})]
                    curves.append(Curve(run_name(run), points, colour[run.id]))
                    shown.append((run, epochs))
                fig = curves_figure(f"{dataset} · {task}" if several_datasets else task,
                                    metric if kind == "val" else "loss", curves,
                                    per="epoch" if kind == "val" else "step",
                                    higher_is_better=higher if kind == "val" else False)
                for run, epochs in shown:
                    start_step, start_epoch = starts[run.id]
                    if kind == "val" and epochs:  # an epoch axis: a change after step s sits at s / steps per epoch
                        add_markers(fig, marks[run.id], steps_per_epoch=epochs[0]["step"], offset=start_epoch)
                    elif kind != "val":
                        add_markers(fig, marks[run.id], offset=start_step)
                with columns[index % 2]:
                    st.plotly_chart(fig, key=f"compare_{kind}_{dataset}_{task}", config={"displaylogo": False})


# ----- tables ------------------------------------------------------------------------

def metrics_table(picked) -> None:
    rows = results_table(picked)
    st.dataframe(rows, hide_index=True, key="compare_results_table",
                 column_config={k: st.column_config.NumberColumn(k, format="%.4f")
                                for row in rows for k in row if k.endswith((" accuracy", " mae"))})
    st.caption("Test-set metrics at the end of training: accuracy (higher is better) for classification tasks, "
               "mean absolute error, MAE (lower is better), in the target's units for regression tasks. "
               "Empty cells: the run has no such task or has not finished.")
    st.download_button(
        "Download this table (CSV)", rows_to_csv(rows), file_name="mtl-lab-test-metrics.csv", mime="text/csv",
        key="compare_download_results", icon=":material/download:",
        help="Save the final test metrics of the picked runs as a CSV file (opens in any spreadsheet).",
    )


def calibration_section(picked) -> None:
    """How honest the classifiers' probabilities are (ECE, Guo et al. 2017), and the Gaussian heads' intervals."""
    rows = calibration_rows(picked)
    uncertain = uncertainty_rows(picked)
    if not rows and not uncertain:
        return
    st.subheader("Calibration")
    if rows:
        st.dataframe(rows, hide_index=True, key="compare_calibration_table",
                     column_config={k: st.column_config.NumberColumn(k, format="%.4f") for k in rows[0]
                                    if k not in ("label", "run", "task")})
        st.caption("Expected calibration error (ECE; Guo et al., ICML 2017): the gap between how sure the model is "
                   "and how often it is right, over 15 confidence bins; 0 is perfectly calibrated. 'After T': "
                   "with the softmax temperature fitted on the validation split (accuracy does not change).")
        by_key = {f"{r['run']}/{r['task']}": r for r in rows}
        by_id = {r.id: r for r in picked}
        key = st.selectbox("Reliability diagram of", list(by_key), key="compare_calibration_pick",
                           format_func=lambda k: f"{run_name(by_id[by_key[k]['run']])} · {by_key[k]['task']}",
                           help="Accuracy against confidence on the test split, before and after temperature "
                                "scaling: a calibrated model lies on the diagonal; below it, it is over-confident.")
        row = by_key[key]
        summary = by_id[row["run"]].summary
        if has_calibration(summary, row["task"]):
            st.plotly_chart(reliability_figure(summary["calibration"][row["task"]], row["task"]),
                            key="compare_reliability", config={"displaylogo": False})
    if uncertain:
        st.dataframe(uncertain, hide_index=True, key="compare_uncertainty_table",
                     column_config={k: st.column_config.NumberColumn(k, format="%.4f") for k in uncertain[0]
                                    if k not in ("label", "run", "task")})
        st.caption("Regression with loss.regression=gaussian_nll predicts a mean and a variance (Kendall & Gal, "
                   "NeurIPS 2017): NLL in the target's units (lower is better), and the share of test targets "
                   "inside the predicted 90 % interval (about 0.90 when the variances are honest).")


def versus_baselines(picked, all_runs) -> None:
    """The multi-task run against single-task baselines: per-task verdicts and Delta_m."""
    st.subheader("Multi-task vs single-task")
    candidates = [r for r in picked if len(r.config.tasks) > 1]
    if not candidates:
        st.info("Pick a run that trains two or more tasks to compare it with single-task baselines "
                "(the same settings, each task trained alone).")
        return
    by_id = {r.id: r for r in candidates}
    if st.session_state.get("compare_mtl_run") not in by_id:
        st.session_state.pop("compare_mtl_run", None)
    run_id = st.selectbox(
        "Multi-task run", list(by_id), key="compare_mtl_run", format_func=lambda i: run_name(by_id[i]),
        help="Each of its tasks is compared with a single-task run of that task alone, trained with the same "
             "dataset, optimiser, epochs, regularisers and seed (architecture 'single', static weighting).",
    )
    run = by_id[run_id]
    baselines = Baselines(all_runs)
    try:
        comparisons = compare_to_baselines(run, baselines)
    except ValueError as error:
        st.error(f"This run cannot be compared: {md(error)}")
        return
    if run.state != "finished":
        st.warning(f"This run is {run.state}: it has no test metrics until it finishes.")

    pending = {c.task: baselines.find(run.config, c.task, states=ACTIVE) for c in comparisons}
    mtl_seeds, stl_seeds, higher = seeded_values(run, all_runs)
    verdict = delta_m_verdict(mtl_seeds, stl_seeds, higher)
    rows = []
    for c in comparisons:
        text, helped = c.verdict
        if c.stl is None and pending[c.task] is not None:
            text = f"single-task baseline {pending[c.task].state} ({pending[c.task].id})"
        # One seed's difference is a direction, not a verdict: no red or green here (see verdicts.py).
        mark = {True: "better", False: "worse", None: "same" if c.complete else "waiting"}[helped]
        row = c.row()
        row["verdict"] = text.replace("sharing helped", "multi-task better").replace(
            "negative transfer", "multi-task worse") + (" (this seed)" if c.complete else "")
        rows.append({"this seed": mark, **row})
        better = "higher" if c.higher_is_better else "lower"
        spreads = verdict.tasks.get(c.task, {})
        if verdict.decided and spreads.get("mtl") and spreads.get("stl"):
            st.markdown(f"**{md(c.task)}** ({c.metric}, {better} is better) over {len(verdict.seeds)} seeds: "
                        f"multi-task **{spreads['mtl']}** vs single-task **{spreads['stl']}** (mean ± std)")
        elif c.complete:
            st.markdown(f"**{md(c.task)}** ({c.metric}, {better} is better): multi-task **{c.mtl:.4g}** vs "
                        f"single-task **{c.stl:.4g}** :gray[({row['verdict']})]")
        else:
            st.markdown(f"**{md(c.task)}** ({c.metric}, {better} is better): :gray[{text}]")

    complete = [c for c in comparisons if c.complete]
    if len(complete) < len(comparisons):
        missing = ", ".join(md(c.task) for c in comparisons if not c.complete)
        st.info(f"Δm needs a finished single-task baseline and a test result for every task; missing: {missing}."
                + (" Below: the seeds of this experiment that have them." if verdict.per_seed else ""))
    elif run.config.seed not in verdict.seeds:
        st.error("Δm cannot be computed: a single-task value is 0.")
    if verdict.per_seed:
        show_verdict(verdict, len(comparisons))

    table = pd.DataFrame(rows)
    st.dataframe(table, hide_index=True, key="compare_versus_table",
                 column_config={"multi-task": st.column_config.NumberColumn(format="%.4f"),
                                "single-task": st.column_config.NumberColumn(format="%.4f"),
                                **{k: st.column_config.NumberColumn(format="%+.2f") for k in rows[0]
                                   if k.startswith(("relative change", "improvement"))}})
    st.download_button(
        "Download this comparison (CSV)", rows_to_csv(rows), file_name=f"mtl-lab-vs-stl-{run.id}.csv",
        mime="text/csv", key="compare_download_versus", icon=":material/download:",
        help="Save the per-task multi-task vs single-task comparison as a CSV file.",
    )
    missing_tasks = [c.task for c in comparisons if c.baseline_id is None and pending[c.task] is None]
    train_missing_baselines(run, missing_tasks)
    add_seeds(run, all_runs, verdict)


def show_verdict(verdict, tasks: int) -> None:
    """Δm (mean over seeds) and the three-way verdict of ``mtlcore.verdicts``: one rule everywhere."""
    dm = verdict.delta_m
    seeds = len(verdict.seeds)
    st.metric(
        "Δm (Nash-MTL's sign: negative = multi-task better)" + (f", mean of {seeds} seeds" if seeds > 1 else ""),
        f"{dm.mean:+.2f} %",
        help="Δm = (1/K) Σₖ (−1)^δₖ (M_multi,k − M_single,k) / M_single,k × 100, with δₖ = 1 when higher is "
             f"better (accuracy) and 0 when lower is better (MAE); K = {tasks} tasks. With this sign a NEGATIVE "
             f"Δm means the multi-task model is better on average. {SIGN_CONVENTION} Source: {CITATION}",
    )
    st.caption(SIGN_CONVENTION)
    colour = {True: "green", False: "red", None: "gray"}[verdict.helped]
    icon = {True: ":material/check_circle:", False: ":material/cancel:", None: ":material/remove:"}[verdict.helped]
    st.markdown(f":{colour}[{icon} **{verdict.sentence()}**]")
    st.caption(RULE)


def add_seeds(run, all_runs, verdict) -> None:
    """One click: queue the multi-task run and its baselines with more seeds, as one batch."""
    count = st.number_input(
        "Seeds wanted", min_value=2, max_value=10, value=max(3, min(10, len(verdict.seeds) + 2)), step=1,
        key="compare_seed_count",
        help="Seeds 0, 1, ... of this multi-task run and of each single-task baseline. Runs that exist already "
             "(finished, queued or running) are not queued again.",
    )
    wanted = missing_seed_configs(run, all_runs, int(count))
    clicked = st.button(
        f"Add seeds: queue {len(wanted)} runs" if wanted else "Add seeds", key="compare_add_seeds",
        disabled=not wanted, icon=":material/add:",
        help="Queue the missing runs as one batch: small runs with the same settings train together as one "
             "packed model, so more seeds cost little. The verdict updates as they finish.",
    )
    if not clicked:
        return
    label = run.label or run.id
    try:
        get_runner().submit_batch([c for c, _ in wanted], [f"{label} · {what}" for _, what in wanted], owner=owner())
    except (ConfigError, StoreError) as error:  # QueueFullError is a StoreError
        say("error", str(error))
        return
    st.success(f"Queued {len(wanted)} runs ({', '.join(md(what) for _, what in wanted)}). The verdict updates as they "
               "finish.")
    try:
        get_runner().ensure_workers()
    except Exception as error:  # the runs stay queued; a later page load retries
        st.warning(f"The runs are queued but no worker could be started now ({error}).")


def train_missing_baselines(run, missing_tasks: list[str]) -> None:
    label = run.label or run.id
    help_text = ("Queue one single-task run per task that has no baseline yet (finished, queued or running), "
                 f"labelled “{md(label)} · STL <task>”. They train in the background; come back when they finish.")
    clicked = st.button(
        f"Train missing single-task baselines ({len(missing_tasks)})" if missing_tasks
        else "Train missing single-task baselines", key="compare_train_baselines",
        disabled=not missing_tasks, help=help_text, icon=":material/play_arrow:",
    )
    notice = st.session_state.pop("compare_baselines_notice", None)
    if notice:
        st.success(notice)
    if not clicked:
        return
    runner, queued = get_runner(), []
    for task in missing_tasks:
        try:
            runner.submit(baseline_config(run.config, task), label=f"{label} · STL {task}", owner=owner())
        except (ConfigError, StoreError) as error:  # QueueFullError is a StoreError
            done = f"Queued {len(queued)} of {len(missing_tasks)} baselines. " if queued else ""
            st.error(f"{done}{md(error)}")
            break
        queued.append(task)
    if queued:
        try:
            get_runner().ensure_workers()
        except Exception as error:  # the runs stay queued; a later page load retries
            st.warning(f"The runs are queued but no worker could be started now ({error}).")
            return
        st.session_state["compare_baselines_notice"] = (
            f"Queued single-task baselines for: {', '.join(md(t) for t in queued)}. They appear above as they train.")
        # The whole page again, not just this fragment: it lists the new runs and keeps polling while they train.
        st.rerun()


def baselines_training(picked, runs) -> bool:
    """Whether a single-task baseline of a picked multi-task run is queued or running (the page then polls)."""
    baselines = Baselines(runs)
    return any(baselines.find(r.config, task, states=ACTIVE) is not None
               for r in picked if len(r.config.tasks) > 1 for task in r.config.tasks)


# ----- the page ------------------------------------------------------------------------

def page() -> None:
    header("Compare runs", "Overlay runs' learning curves, compare their test metrics, and check whether "
           "training the tasks together beats training each task alone.")
    try:
        store = get_store()
        runs = store.list_runs()
    except Exception as error:  # an unreadable data folder: say so, do not crash
        st.error(f"The run store cannot be read: {md(error)}")
        return
    if not runs:
        st.info("No runs yet. Start one on the Train page; it appears here as soon as it is queued.")
        return
    picked = pick_runs(runs)
    if not picked:
        st.info("Pick one or more runs above to see their curves and metrics.")
        return
    live = any(r.state in ACTIVE for r in picked) or baselines_training(picked, runs)

    @st.fragment(run_every=3 if live else None)
    def results() -> None:
        # Re-read the picked runs each time, so that live runs update in place.
        fresh = {r.id: r for r in get_store().list_runs()}
        now = [fresh.get(r.id, r) for r in picked]
        st.subheader("Final test metrics")
        metrics_table(now)
        calibration_section(now)
        st.subheader("Curves")
        draw_curves(now, {r.id: metrics_of(r) for r in now})
        versus_baselines(now, list(fresh.values()))

    results()


page()
