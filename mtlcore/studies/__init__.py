"""Studies: many runs that together answer one question about sharing.

"Does training these tasks together help, and which tasks should share?"
One run cannot say: small runs are noisy, so a study repeats every
configuration over seeds and reports means and spreads (Xin et al.,
NeurIPS 2022; Kurin et al., NeurIPS 2022). Five kinds:

    stl-vs-mtl   each task alone vs all together; relative change, Delta_m
    pairs        every pair (or group) of tasks: a transfer matrix (Standley
                 et al., ICML 2020) beside the lookahead affinity (Fifty et
                 al., NeurIPS 2021)
    sweep        two tasks, task A's loss weight from 0 to 1: the Pareto front,
                 with automatic weighting methods overlaid
    relatedness  synthetic tasks of chosen correlation, hard sharing vs MMoE
                 against single-task (Ma et al., KDD 2018, section 3)
    mtl-vs-ensemble  the multi-task model against single-task models and a
                 bagged ensemble of them (Breiman 1996) at a matched parameter budget

One file per job:

    spec.py     StudySpec: the kind, the base config, the kind's options
    plans.py    plan(spec): the member runs, in named groups
    results.py  arithmetic on numbers: mean/std, gains, transfer matrix, Pareto front
    report.py   build_result: each kind's result from the finished members
    tables.py   the result as text tables (command line)
    local.py    run_study: train the members in this process (command line)
    records.py  StudyRecord, MemberStatus: a study as read from the store (one query, no write)
    store.py    StudyStore: a study as one object in the run store (the app); advance_studies

    >>> from mtlcore.studies import StudySpec, default_base, run_study
    >>> document = run_study(StudySpec("stl-vs-mtl", default_base("stl-vs-mtl"), seeds=3))
    >>> document["result"]["delta_m"]
"""
from .local import run_study
from .plans import Member, plan
from .report import Outcome, build_result, study_document
from .results import Spread, affinity_matrix, clearly_different, gain, mean_std, pareto_front, transfer_matrix
from .spec import KIND_DEFAULTS, KIND_HELP, KINDS, StudyError, StudySpec, check_spec, default_base, kind_defaults
from .store import MemberStatus, StudyRecord, StudyStore, advance_studies
from .tables import format_result

__all__ = [
    "KINDS",
    "KIND_DEFAULTS",
    "KIND_HELP",
    "Member",
    "MemberStatus",
    "Outcome",
    "Spread",
    "StudyError",
    "StudyRecord",
    "StudySpec",
    "StudyStore",
    "advance_studies",
    "affinity_matrix",
    "build_result",
    "check_spec",
    "clearly_different",
    "default_base",
    "format_result",
    "gain",
    "kind_defaults",
    "mean_std",
    "pareto_front",
    "plan",
    "run_study",
    "study_document",
    "transfer_matrix",
]
