"""Studies: many runs, over seeds, that together answer one question about sharing.

"Does training these tasks together help, and which tasks should share?"
Start a study of one of five kinds; its runs train in the background
workers, a few at a time (each person's queue limit), and its result is
redrawn as they finish. A study can be cancelled as a whole.

Thin page: planning, bookkeeping and arithmetic live in ``mtlcore.studies``,
the figures in ``mtlcore.charts.studies``.
"""
from __future__ import annotations

import json
from typing import Any

import streamlit as st

from mtlcore import ARCHITECTURES, WEIGHTINGS, ConfigError, ExperimentConfig, dataset_info, list_datasets
from mtlcore.config import set_key
from mtlcore.runs import NotOwnerError, StoreError
from mtlcore.studies import KIND_HELP, KINDS, StudyError, StudySpec, StudyStore, kind_defaults, plan
from mtlcore.charts import study_figures as figures
from mtlcore.studies.spec import DEFAULT_ARCHS, DEFAULT_CORRELATIONS, DEFAULT_ENSEMBLE, DEFAULT_METHODS, DEFAULT_SEEDS
from mtlcore.verdicts import RULE as VERDICT_RULE
from ui.lesson_share import lesson_share_panel
from ui.page import header, name_tip, notice
from ui.pickers import live_selectbox
from ui.safe_text import md, say
from ui.session import ago, get_runner, get_store, owner, state_badge

K = "studies_"  # prefix of this page's widget and state keys
POLL_SECONDS = 2.0
ss = st.session_state

TITLES = {
    "stl-vs-mtl": "Single-task vs multi-task",
    "pairs": "Which tasks should share?",
    "sweep": "Loss-weight sweep",
    "relatedness": "Task relatedness",
    "mtl-vs-ensemble": "Multi-task vs an ensemble",
}
CORRELATION_CHOICES = (1.0, 0.75, 0.5, 0.25, 0.0, -0.25, -0.5, -0.75, -1.0)
STUDY_BADGES = {"running": "🟢 running", "finished": "✅ finished", "cancelled": "⏹️ cancelled"}
HELP = {
    "kind": "What the study asks. Each kind trains many runs; the paragraph below says which and why.",
    "dataset": "The dataset every run of the study trains on.",
    "tasks": "The tasks studied. Single-task baselines are trained for each of them.",
    "tasks_sweep": "Exactly two tasks: A (first) and B. A's loss weight goes from 0 to 1, B's is 1 minus it.",
    "arch": "How the multi-task models share: hard (one trunk), soft (a network per task, tied), "
            "cross_stitch (columns mixed by learned units) or mmoe (experts with a gate per task).",
    "epochs": "Training epochs of every run. Studies train many runs, so keep runs short.",
    "n_samples": "How many examples the dataset generates (split 70/15/15). Fewer is faster and makes the "
                 "benefit of sharing easier to see; more is less noisy.",
    "seeds": "Every configuration is trained with this many seeds (seed, seed+1, ...) to measure how much "
             "results move by chance alone. 3 is a minimum for a spread.",
    "max_subset": "2 trains every pair. 3 or 4 also trains every group of that many tasks, to find the best "
                  "grouping (many more runs).",
    "diagnostics_every": "Steps between two lookahead-affinity measurements in the all-task run. Smaller is "
                         "more precise and slower.",
    "steps": "How many weights of task A, evenly from 0 to 1 (both included).",
    "methods": "Automatic weighting methods whose models are drawn on the same chart; each trains with equal "
               "slider weights and chooses its own.",
    "correlations": "Correlations between the two synthetic tasks' weight vectors, from 1 (the same task) to "
                    "-1 (opposite).",
    "archs": "Sharing architectures compared with single-task models at each correlation.",
    "ensemble": "Single-task models per task in the ensemble, each trained on its own bootstrap sample. Their "
                "width is chosen so that all of them together have about the multi-task model's parameters.",
    "reuse": "A run identical to one already trained (same settings and seed, by anyone) is reused instead "
             "of trained again; single-task baselines are shared this way between studies.",
    "start": "Plan the study and queue its runs. They train in the background, a few at a time; the study "
             "moves on whenever someone has this page open.",
    "cancel": "Stop every unfinished run of this study. Finished runs and their results are kept.",
    "only_mine": "Show only the studies started in this browser (they belong to its private key).",
    "study": "The study whose progress and result are shown below.",
}


@st.cache_resource(show_spinner=False)
def _studies_for(home: str) -> StudyStore:
    return StudyStore(get_store())


def get_studies() -> StudyStore:
    """The studies kept in the app's run store (one StudyStore per data folder)."""
    return _studies_for(str(get_store().home))


# ----- starting a study --------------------------------------------------------------

def base_config(kind: str) -> ExperimentConfig:
    """The base settings from the widgets: dataset, tasks, architecture, epochs, size."""
    names = [d.name for d in list_datasets()]
    if kind == "relatedness":
        dataset = "synthetic"
        st.caption("Dataset: **synthetic** (two regression tasks whose correlation the study varies).")
    else:
        default = kind_defaults(kind)["dataset.name"]
        dataset = st.selectbox("Dataset", names, index=names.index(default) if default in names else 0,
                               key=f"{K}dataset_{kind}", help=HELP["dataset"])
    flat = kind_defaults(kind, dataset)
    info = dataset_info(dataset)
    every_task = [t.name for t in info.tasks]
    config = ExperimentConfig()
    for key, value in flat.items():
        config = set_key(config, key, value)
    if kind != "relatedness":
        wanted = 2 if kind == "sweep" else 3
        default_tasks = [t for t in str(flat.get("tasks", "")).split(",") if t in every_task] or every_task[:wanted]
        tasks = st.multiselect("Tasks", every_task, default=default_tasks, key=f"{K}tasks_{kind}_{dataset}",
                               help=HELP["tasks_sweep" if kind == "sweep" else "tasks"],
                               max_selections=2 if kind == "sweep" else None)
        archs = [a for a in ARCHITECTURES.names() if a != "single"]
        arch = st.selectbox("Architecture", archs, index=archs.index(config.model.arch), key=f"{K}arch_{kind}",
                            help=HELP["arch"])
        config = set_key(set_key(config, "tasks", ",".join(tasks)), "model.arch", arch)
    left, right = st.columns(2)
    epochs = left.number_input("Epochs", 1, 200, value=config.train.epochs, key=f"{K}epochs_{kind}_{dataset}",
                               help=HELP["epochs"])
    config = set_key(config, "train.epochs", epochs)
    if "n_samples" in info.options:
        current = int(config.dataset.options.get("n_samples", info.options["n_samples"]))
        n = right.number_input("Examples (n_samples)", 0, 100_000, value=current, step=100,
                               key=f"{K}n_{kind}_{dataset}", help=HELP["n_samples"] + f" {info.option_help.get('n_samples', '')}")
        config = set_key(config, "dataset.n_samples", n)
    return config


def kind_options(kind: str) -> dict[str, Any]:
    """The kind's own options from the widgets (StudySpec keyword arguments)."""
    if kind == "pairs":
        left, right = st.columns(2)
        return {"max_subset": left.selectbox("Largest group of tasks", (2, 3, 4), key=f"{K}max_subset",
                                             help=HELP["max_subset"]),
                "diagnostics_every": right.number_input("Affinity every (steps)", 1, 1000, value=10,
                                                        key=f"{K}diag", help=HELP["diagnostics_every"])}
    if kind == "sweep":
        choices = [m for m in WEIGHTINGS.names() if m != "static"]
        return {"steps": st.slider("Weights from 0 to 1", 3, 11, value=5, key=f"{K}steps", help=HELP["steps"]),
                "methods": tuple(st.multiselect("Automatic methods to overlay", choices, key=f"{K}methods",
                                                default=[m for m in DEFAULT_METHODS if m in choices],
                                                help=HELP["methods"]))}
    if kind == "mtl-vs-ensemble":
        return {"ensemble": st.slider("Members per task", 2, 10, value=DEFAULT_ENSEMBLE, key=f"{K}ensemble",
                                      help=HELP["ensemble"])}
    if kind == "relatedness":
        archs = [a for a in ARCHITECTURES.names() if a != "single"]
        correlations = st.multiselect("Correlations", CORRELATION_CHOICES, default=list(DEFAULT_CORRELATIONS),
                                      key=f"{K}correlations", help=HELP["correlations"], format_func=lambda p: f"{p:g}")
        return {"correlations": tuple(sorted(correlations, reverse=True)),
                "archs": tuple(st.multiselect("Architectures", archs, default=list(DEFAULT_ARCHS), key=f"{K}archs",
                                              help=HELP["archs"]))}
    return {}


def start_form() -> None:
    kind = st.radio("Kind of study", KINDS, format_func=TITLES.get, key=f"{K}kind", horizontal=True,
                    help=HELP["kind"])
    st.markdown(KIND_HELP[kind])
    base = base_config(kind)
    options = kind_options(kind)
    left, right = st.columns(2)
    seeds = left.slider("Seeds", 1, 10, value=DEFAULT_SEEDS, key=f"{K}seeds", help=HELP["seeds"])
    reuse = right.checkbox("Reuse identical runs", value=True, key=f"{K}reuse", help=HELP["reuse"])
    problem, members = None, []
    try:
        spec = StudySpec(kind, base, seeds=seeds, reuse=reuse, **options)
        members = plan(spec)
    except (StudyError, ConfigError) as error:
        problem = str(error)
    if problem:
        say("error", problem)
    else:
        st.caption(f"This study trains {len(members)} runs ({len(members) // seeds} configurations × {seeds} "
                   "seeds), fewer where identical runs exist.")
    lesson_share_panel(base)  # a lesson link opens Train on the study's settings
    if st.button("▶ Start study", type="primary", key=f"{K}start", disabled=problem is not None, help=HELP["start"]):
        try:
            record = get_studies().start(spec, get_runner(), owner=owner())
        except (StudyError, ConfigError, StoreError) as error:
            say("error", str(error))
            return
        ss[f"{K}chosen"] = record.id
        ss[f"{K}notice"] = f"Study started: {record.progress_text}; its runs train in the background."
        st.rerun()


# ----- following a study -------------------------------------------------------------

def result_table(kind: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    """The result as table rows (numbers rounded for reading)."""
    def r(value, digits=4):
        return None if value is None else round(value, digits)

    if kind == "stl-vs-mtl":
        return [{"task": t["task"], "metric": t["metric"], "better when": "higher" if t["higher_is_better"] else "lower",
                 "STL mean": r((t["stl"] or {}).get("mean")), "STL std": r((t["stl"] or {}).get("std")),
                 "MTL mean": r((t["mtl"] or {}).get("mean")), "MTL std": r((t["mtl"] or {}).get("std")),
                 "gain % (positive = MTL better)": r(t["gain"], 2),
                 "beyond seed spread": {True: "yes", False: "no", None: "-"}[t["clear"]]} for t in result["tasks"]]
    if kind == "pairs":
        rows = [{"tasks together": " + ".join(s["tasks"]), "mean gain %": r(s["mean_gain"], 2),
                 **{f"{t} gain %": r(g, 2) for t, g in s["gains"].items()}} for s in result["subsets"]]
        return sorted(rows, key=lambda row: -1e9 if row["mean gain %"] is None else -row["mean gain %"])
    if kind == "sweep":
        return [{"point": p["label"], "on Pareto front": {True: "yes", False: "no", None: "-"}[p["on_front"]],
                 **{f"{t} mean": r((v or {}).get("mean")) for t, v in p["values"].items()},
                 **{f"{t} std": r((v or {}).get("std")) for t, v in p["values"].items()}} for p in result["points"]]
    if kind == "mtl-vs-ensemble":
        def cell(value, key):
            return r((value or {}).get(key))
        rows = [{"task": t["task"], "metric": t["metric"],
                 **{f"{name} {stat}": cell(t[key], stat) for key, name in
                    (("mtl", "MTL"), ("stl", "STL"), ("ensemble", "ensemble"), ("vote", "vote"), ("member", "member"))
                    for stat in ("mean", "std")},
                 "ensemble vs MTL % (positive = ensemble better)": r(t["ensemble_vs_mtl"], 2),
                 "beyond seed spread": {True: "yes", False: "no", None: "-"}[t["clear"]]} for t in result["tasks"]]
        return rows
    return [{"correlation": row["correlation"], "architecture": row["arch"],
             "benefit % mean": r((row["benefit"] or {}).get("mean"), 2),
             "benefit % std": r((row["benefit"] or {}).get("std"), 2),
             "verdict": (row.get("verdict") or {}).get("verdict", "-"),
             **{f"{t} gain %": r(g, 2) for t, g in row["gains"].items()}} for row in result["rows"]]


def study_panel(study_id: str, was_running: bool) -> None:
    """Progress, cancel and result of one study; polled while it runs."""
    studies = get_studies()
    try:
        if was_running:
            studies.advance(study_id, get_runner())  # submit waiting members as queue slots free up
        record = studies.get(study_id)
    except StoreError as error:
        say("error", str(error))
        return
    if was_running and record.state != "running":
        st.rerun()  # it has just ended: redraw the page once, without polling
    st.subheader(md(record.label))
    st.caption(f"{STUDY_BADGES.get(record.state, record.state)} · {TITLES[record.kind]} · started by "
               f"{md(record.owner)} {ago(record.created_at)} · {record.spec.seeds} seed(s) · id `{record.id}`")
    waiting = sum(m.state == "pending" for m in record.members)
    reused = sum(m.reused for m in record.members)
    detail = (f" · {waiting} waiting for a queue slot" if waiting and record.state == "running" else "") + \
             (f" · {reused} reused" if reused else "")
    st.progress(record.done / max(1, record.total), text=record.progress_text + detail)
    if record.state == "running":
        me = owner()
        mine = me.may_change(record.owner, record.owner_key)
        if st.button("■ Cancel study", key=f"{K}cancel_{study_id}", disabled=not mine, help=HELP["cancel"]):
            try:
                ss[f"{K}notice"] = studies.cancel(study_id, get_runner(), owner=me)
            except (NotOwnerError, StoreError) as error:
                say("error", str(error))
                return
            st.rerun()
        if not mine:
            say("caption", me.refusal("this study", record.owner, record.owner_key, "cancel"))
    document = studies.result(study_id)
    result = document["result"]
    if not document["progress"]["with_result"]:
        st.info("The result appears here as the runs finish.")
    else:
        if record.kind == "stl-vs-mtl" and result["delta_m"] is not None:
            st.metric("Delta_m (negative = multi-task better)", f"{result['delta_m']:+.2f} %",
                      help="Mean over tasks of the relative change of each test metric, multi-task against "
                           "single-task, signed so that negative means sharing helped (Maninis et al., CVPR 2019, with the sign of Nash-MTL, Navon et al. 2022).")
        charts = figures(record.kind, result)
        columns = st.columns(len(charts)) if record.kind == "pairs" else [st.container() for _ in charts]
        for k, (fig, column) in enumerate(zip(charts, columns)):
            column.plotly_chart(fig, key=f"{K}fig_{study_id}_{k}", config={"displaylogo": False})
        if record.kind == "pairs" and result["affinity_note"]:
            st.caption(result["affinity_note"])
        if record.kind == "stl-vs-mtl":
            if result.get("verdict"):
                st.markdown(f"**Verdict:** {result['verdict']['sentence']}")
            st.caption(result["rule"])
        if record.kind in ("stl-vs-mtl", "relatedness"):
            st.caption(VERDICT_RULE)
        st.dataframe(result_table(record.kind, result), hide_index=True, key=f"{K}table_{study_id}")
        if record.kind == "mtl-vs-ensemble":
            st.markdown("**Parameter budgets and training time** (the members' width is chosen so that the "
                        "ensemble has about the multi-task model's parameters)")
            st.dataframe([{"model": b["model"], "runs": b["runs"], "parameters": b["parameters"],
                           "training s (mean)": (b["seconds"] or {}).get("mean"),
                           "training s (std)": (b["seconds"] or {}).get("std")} for b in result["budgets"]],
                         hide_index=True, key=f"{K}budgets_{study_id}")
            st.caption(result["rule"] + " Predict shows the ensemble's members' votes on your own picture.")
    with st.expander(f"Member runs ({record.total})"):
        st.dataframe([{"run": m.label, "state": state_badge(m.state), "progress": f"{m.progress:.0%}",
                       "reused": "yes" if m.reused else "", "run id": m.run_id or ""} for m in record.members],
                     hide_index=True, key=f"{K}members_{study_id}")
    st.download_button("Download result.json", json.dumps(document, indent=2), file_name=f"study-{study_id}.json",
                       mime="application/json", key=f"{K}download_{study_id}",
                       help="The study's settings, member runs and result, as the command line writes them.")


def any_study_running() -> bool:
    try:
        return bool(get_studies().list(states=("running",)))
    except StoreError:
        return False


def follow_studies(polling: bool = False) -> None:
    """The study picker and the chosen study; while any study runs, polled as a whole, so that the picker's
    states and counts move too (it once said "running · 0 of 12" after its study had finished)."""
    only_mine = st.toggle("Only my studies", key=f"{K}only_mine", help=HELP["only_mine"])
    studies = get_studies()
    try:
        studies.advance_all(get_runner(), owner=owner())  # your studies move on whenever you look
        records = studies.list(owner=owner() if only_mine else None)
    except StoreError as error:
        say("error", str(error))
        return
    if not records:
        st.info("No study yet. Choose a kind above and press **Start study**.")
        return
    by_id = {r.id: r for r in records}
    labels = {i: f"{r.label} · {r.owner} · {STUDY_BADGES.get(r.state, r.state)} · {r.progress_text}"
              for i, r in by_id.items()}
    chosen = live_selectbox("Study", labels, f"{K}chosen", help=HELP["study"])  # its labels move while studies run
    with st.container(border=True):
        study_panel(chosen, by_id[chosen].state == "running")
    if polling and not any_study_running():
        # Every study has ended: redraw the page once, without polling. After the picker is drawn,
        # so that its labels already say "finished" (a rerun that cut the fragment short left them stale).
        st.rerun()


header("🔬 Studies")
st.markdown(
    "Does training these tasks together help, and which tasks should share? One run cannot say: small runs "
    "are noisy, and the difference between two settings is often smaller than what changing the seed does "
    "(Xin et al., NeurIPS 2022; Kurin et al., NeurIPS 2022). A **study** trains every configuration over "
    "several seeds and reports means and spreads."
)
notice(f"{K}notice")
with st.expander("Start a study", expanded=not ss.get(f"{K}chosen")):
    start_form()
name_tip("studies")
studies_running = any_study_running()
st.fragment(follow_studies, run_every=POLL_SECONDS if studies_running else None)(studies_running)
