"""Findings: each paper reproduction's claim, the paper's number, ours with its spread, and the verdict.

The reproductions live in ``mtlcore.reproduce`` (``python -m mtlcore
reproduce --list``); this page shows the stored results with their figures
and runs a reproduction in a background thread (never in the page's script
thread), showing its progress lines while it trains. Thin page: the figures
come from ``mtlcore.charts.reproductions``; no torch.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime

import streamlit as st

from mtlcore.charts.reproductions import figures as reproduction_figures
from mtlcore.reproduce import (
    NOT_REPRODUCED, REPRODUCED, REPRODUCTIONS, ReproductionResult, measured_results, run_reproduction, stored_results,
)
from mtlcore.reproduce.toy import missed_starts, start_name
from ui.page import header

K = "findings_"
BADGE = {REPRODUCED: ("green", "reproduced"), NOT_REPRODUCED: ("red", "not reproduced")}


class Job:
    """One reproduction running in a thread: its progress lines, and how it ended."""

    def __init__(self, name: str, seeds: int, quick: bool):
        self.name, self.seeds, self.quick = name, seeds, quick
        self.lines: list[str] = []
        self.error: str | None = None
        self.done = False
        self.started = time.time()
        self.thread = threading.Thread(target=self._work, name=f"reproduce-{name}", daemon=True)

    def _work(self) -> None:
        try:
            options = {"quick": True} if self.quick else {}
            run_reproduction(self.name, self.seeds, progress=self.lines.append, **options)
        except (ValueError, OSError, RuntimeError) as error:
            self.error = str(error)
        finally:
            self.done = True


@st.cache_resource(show_spinner=False)
def jobs() -> dict[str, Job]:
    """The server's running (and last finished) reproductions, by name: one at a time per reproduction."""
    return {}


def start(name: str) -> None:
    """The Run button: read the seeds and quick widgets now (a callback's args are those of the last run)."""
    seeds, quick = int(st.session_state[f"{K}{name}_seeds"]), bool(st.session_state.get(f"{K}{name}_quick"))
    running = jobs()
    current = running.get(name)
    if current is not None and not current.done:
        return
    job = Job(name, seeds, quick)
    running[name] = job
    job.thread.start()


def badge(verdict: str) -> str:
    colour, text = BADGE.get(verdict, ("orange", verdict))
    return f":{colour}-badge[{text}]"


def claims_table(result: ReproductionResult) -> None:
    st.dataframe(
        [{"claim": r.claim, "paper": r.paper, "ours": r.ours, "verdict": r.verdict, "note": r.note}
         for r in result.rows],
        hide_index=True, width="stretch",
        column_config={"ours": st.column_config.TextColumn(width="large"),
                       "note": st.column_config.TextColumn(width="medium")},
    )


def toy_reach_table(details: dict) -> list[dict]:
    """Every method's trajectories: how many of the five starts reached the Pareto set, after how many steps."""
    starts = details.get("starts") or []
    rows = []
    for method, run in (details.get("trajectories") or {}).items():
        reached = run.get("reached") or []
        indices = run.get("start_indices") or list(range(len(reached)))
        text = f"{sum(reached)}/{len(reached)}"
        if starts and len(indices) < len(starts):
            text += f" (run from {', '.join(start_name(starts, i) for i in indices)} only)"
        stalled, slower = missed_starts(run, starts) if starts and run.get("later") else ([], [])
        beyond = "; ".join(slower + stalled)  # only the starts that were followed past the steps
        rows.append({"method": method, "steps": run.get("steps"), "reached the Pareto set": text,
                     "missed starts, followed further": beyond or "-",
                     "final distance (max)": max(run.get("distance") or [float("nan")]),
                     "cost vs equal": (details.get("relative_cost") or {}).get(method)})
    return rows


def show_job(name: str) -> None:
    job = jobs().get(name)
    if job is None:
        return
    elapsed = time.time() - job.started
    if not job.done:
        st.info(f"Running ({elapsed:.0f} s so far, {job.seeds} seed(s){', quick' if job.quick else ''})...")
    elif job.error:
        st.error(job.error)
    if job.lines:
        st.code("\n".join(job.lines[-12:]), language=None)


header("Findings", "Each reproduction states a paper's claim, runs it here on embedded data over several seeds, and "
           "puts the paper's number beside ours with a verdict: reproduced, not reproduced or inconclusive. "
           "A miss is shown as a miss.")

results = stored_results()
measured = measured_results()
for name in REPRODUCTIONS.names():
    cls = REPRODUCTIONS.get(name)
    result = results.get(name)
    shipped = result is None and name in measured  # not run here yet: the README's measurement
    result = result or measured.get(name)
    with st.container(border=True):
        head = f"### {cls.title}"
        if shipped:  # its verdict as measured for the README, and that it has not run in this data folder
            st.markdown(head + f"  :gray-badge[not run yet here] · measured for the README: {badge(result.verdict)}")
        else:
            st.markdown(head + (f"  {badge(result.verdict)}" if result else "  :gray-badge[not run yet]"))
        st.caption(f"{cls.paper}  \nClaim: {cls.claim}  \nPaper: {cls.paper_value}")
        cols = st.columns([1, 1, 1, 3])
        seeds = cols[0].number_input("Seeds", 1, 20, int(cls.default_seeds), key=f"{K}{name}_seeds")
        quick = cols[1].checkbox("Quick (tiny settings)", key=f"{K}{name}_quick",
                                 help="A smoke test in seconds: tiny data and epochs; its verdict means little.")
        running = (job := jobs().get(name)) is not None and not job.done
        cols[2].button("Run", key=f"{K}{name}_run", disabled=running, on_click=start, args=(name,),
                       help=f"About {cls.expected_minutes:g} min on a 2-core CPU with the defaults; runs in the "
                            "background, so you can leave this page.")
        cols[3].code(f"python -m mtlcore reproduce {name} --seeds {int(seeds)}", language="bash")

        @st.fragment(run_every=2 if running else None)
        def progress(name=name) -> None:
            show_job(name)
            job = jobs().get(name)
            if job is not None and job.done and ss_key(name) not in st.session_state:
                st.session_state[ss_key(name)] = True
                st.rerun()  # the whole page: the new result replaces the stored one

        def ss_key(name: str) -> str:
            job = jobs().get(name)
            return f"{K}{name}_shown_{job.started if job else 0}"

        progress()
        if result is None:
            continue
        st.caption(("As measured for the README (not run in this data folder yet): " if shipped else "Stored result: ")
                   + f"{result.seeds} seed(s), {result.seconds:.0f} s on {result.machine or 'this machine'}, "
                   f"{datetime.fromtimestamp(result.created_at):%Y-%m-%d %H:%M}"
                   + (" · quick settings" if result.settings.get("quick") else "")
                   + (" · long version (--full)" if result.settings.get("full") else ""))
        claims_table(result)
        if name == "toy" and result.details.get("trajectories"):
            st.dataframe(toy_reach_table(result.details), hide_index=True, key=f"{K}{name}_reach")
        figures = reproduction_figures(name, result.details)
        for k, (column, figure) in enumerate(zip(st.columns(len(figures)) if figures else [], figures)):
            column.plotly_chart(figure, width="stretch", key=f"{K}{name}_figure{'' if k == 0 else k}")
