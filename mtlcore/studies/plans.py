"""Which runs a study needs: ``plan(spec)`` lists its members.

A member is one training run: a config, a seed and the *group* it belongs
to. Members of one group differ only by seed, and the results average over
a group. Group names are built by the small functions below, so that
``report.py`` finds the groups the plan made:

    stl-vs-mtl   stl:<task> for each task, and mtl
    pairs        stl:<task>, and group:<a+b> for each pair (and each larger
                 group up to max_subset), plus the group of all tasks, which
                 logs gradient diagnostics for the lookahead affinity
    sweep        weight:<w> (task A's loss weight w, B's 1 - w), method:<name>
    relatedness  stl:<task>@<p> and <arch>@<p> for each correlation p
    mtl-vs-ensemble  stl:<task>, mtl, and ensemble:<task>#<j> for member j of
                 each task's ensemble (its run seed is ensemble.member_seed)

Two members with the same config (say, the pair of a two-task pairs study
and its all-task group) share one run: the runners key runs by config.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import combinations
from typing import Any

from ..compare import baseline_config
from ..config import ConfigError, ExperimentConfig, WeightingConfig, set_key
from ..validation import validate
from .spec import DEFAULT_METHODS, MAX_MEMBERS, StudyError, StudySpec, check_spec


@dataclass(frozen=True)
class Member:
    """One run a study needs."""

    group: str  # members of a group differ only by seed
    seed: int
    config: ExperimentConfig
    label: str  # for people: "STL shape, seed 1"
    needs_diagnostics: bool = False  # the run's epoch logs must carry diagnostics (lookahead affinity)


# ----- group names -------------------------------------------------------------

def stl_group(task: str, correlation: float | None = None) -> str:
    return f"stl:{task}" + ("" if correlation is None else f"@{correlation:g}")


def subset_group(tasks: tuple[str, ...] | list[str]) -> str:
    return "group:" + "+".join(tasks)


def weight_group(weight: float) -> str:
    return f"weight:{weight:g}"


def method_group(method: str) -> str:
    return f"method:{method}"


def arch_group(arch: str, correlation: float) -> str:
    return f"{arch}@{correlation:g}"


def ensemble_group(task: str, member: int) -> str:
    return f"ensemble:{task}#{member}"


def ensemble_of(group: str) -> str | None:
    """The task of an ensemble member's group (``ensemble:<task>#<j>``), else None."""
    if not group.startswith("ensemble:") or "#" not in group:
        return None
    return group[len("ensemble:"):].rsplit("#", 1)[0]


def ensemble_runs(record: Any) -> dict[tuple[str, int], list[str]]:
    """The finished ensembles of an mtl-vs-ensemble study (a ``StudyRecord``): (task, seed) -> member run ids.

    Only ensembles whose every member finished are listed.
    """
    found: dict[tuple[str, int], list] = {}
    for member in record.members:
        task = ensemble_of(member.group)
        if task is not None:
            found.setdefault((task, member.seed), []).append(member)
    return {key: [m.run_id for m in members] for key, members in found.items()
            if all(m.state == "finished" and m.run_id for m in members)}


def sweep_weights(steps: int) -> list[float]:
    """``steps`` weights evenly from 0 to 1, both ends included."""
    return [round(k / (steps - 1), 6) for k in range(steps)]


# ----- plans ---------------------------------------------------------------------

def plan(spec: StudySpec) -> list[Member]:
    """Every member run of ``spec``, each config validated.

    Raises StudyError for a study that cannot be run as asked (too few tasks,
    a single-task architecture...) and ConfigError for an impossible setting.
    """
    check_spec(spec)
    validate(spec.base)
    make = {"stl-vs-mtl": _stl_vs_mtl, "pairs": _pairs, "sweep": _sweep, "relatedness": _relatedness,
            "mtl-vs-ensemble": _mtl_vs_ensemble}[spec.kind]
    # Diagnostics cost a backward pass per measurement: only the member that needs them logs them.
    base = _with(spec.base, **{"train.diagnostics_every": 0})
    members = make(spec, base)
    if len(members) > MAX_MEMBERS:
        raise StudyError(f"This study would train {len(members)} runs; the limit is {MAX_MEMBERS}. "
                         "Choose fewer tasks, seeds, weights or correlations.")
    for member in members:
        try:
            validate(member.config)
        except ConfigError as error:
            raise ConfigError(f"{member.label}: {error}") from None
    return members


def _stl_vs_mtl(spec: StudySpec, base: ExperimentConfig) -> list[Member]:
    _need_multi_task(spec, base, "stl-vs-mtl", 2)
    members = []
    for seed in spec.seed_values:
        config = replace(base, seed=seed)
        members += _baselines(config, seed)
        members.append(Member("mtl", seed, config, f"MTL {'+'.join(config.tasks)}, seed {seed}"))
    return members


def _mtl_vs_ensemble(spec: StudySpec, base: ExperimentConfig) -> list[Member]:
    """STL and MTL as in stl-vs-mtl, plus ``spec.ensemble`` bagged single-task members per task.

    The members' width makes the k x T members about as large as the
    multi-task model (``ensemble.member_width``): a matched parameter budget.
    """
    from ..ensemble import member_config, member_width  # here: they build models (torch)

    _need_multi_task(spec, base, "mtl-vs-ensemble", 2)
    width = member_width(base, spec.ensemble)
    members = []
    for seed in spec.seed_values:
        config = replace(base, seed=seed)
        members += _baselines(config, seed)
        members.append(Member("mtl", seed, config, f"MTL {'+'.join(config.tasks)}, seed {seed}"))
        for task in config.tasks:
            for j in range(spec.ensemble):
                members.append(Member(ensemble_group(task, j), seed, member_config(config, task, j, width),
                                      f"ensemble {task} member {j + 1}/{spec.ensemble}, seed {seed}"))
    return members


def _pairs(spec: StudySpec, base: ExperimentConfig) -> list[Member]:
    _need_multi_task(spec, base, "pairs", 2)
    tasks = base.tasks
    groups = [g for size in range(2, min(spec.max_subset, len(tasks)) + 1) for g in combinations(tasks, size)]
    if tasks not in groups:
        groups.append(tasks)  # the all-task model, for the lookahead affinity
    members = []
    for seed in spec.seed_values:
        config = replace(base, seed=seed)
        members += _baselines(config, seed)
        for group in groups:
            everything = group == tasks
            weights = {t: w for t, w in config.loss.weights.items() if t in group}
            member_config = replace(config, tasks=group, loss=replace(config.loss, weights=weights))
            if everything:
                member_config = _with(member_config, **{"train.diagnostics_every": spec.diagnostics_every})
            members.append(Member(subset_group(group), seed, member_config,
                                  f"{'+'.join(group)}, seed {seed}", needs_diagnostics=everything))
    return members


def _sweep(spec: StudySpec, base: ExperimentConfig) -> list[Member]:
    _need_multi_task(spec, base, "sweep", 2)
    if len(base.tasks) != 2:
        raise StudyError(f"The weight sweep needs exactly two tasks (tasks=A,B); got {len(base.tasks)}: "
                         f"{', '.join(base.tasks)}.")
    a, b = base.tasks
    methods = sweep_methods(spec)
    members = []
    for seed in spec.seed_values:
        config = replace(base, seed=seed)
        for w in sweep_weights(spec.steps):
            weighted = replace(config, loss=replace(config.loss, weights={a: w, b: round(1.0 - w, 6)}),
                               weighting=WeightingConfig("static", {}))
            members.append(Member(weight_group(w), seed, weighted, f"w({a})={w:g}, seed {seed}"))
        for method in methods:
            # Each method chooses the weights itself, so the user's sliders are reset to equal.
            automatic = replace(config, loss=replace(config.loss, weights={}),
                                weighting=WeightingConfig(method, {}))
            members.append(Member(method_group(method), seed, automatic, f"{method}, seed {seed}"))
    return members


def sweep_methods(spec: StudySpec) -> list[str]:
    """The automatic methods a sweep overlays.

    Asked-for methods must exist and fit the config (else StudyError); with
    none asked for, those of DEFAULT_METHODS that are registered and fit.
    """
    from ..weighting import WEIGHTINGS  # here: the registry imports torch

    def problem(method: str) -> str | None:
        config = replace(spec.base, loss=replace(spec.base.loss, weights={}), weighting=WeightingConfig(method, {}))
        return WEIGHTINGS.get(method).incompatibility(config)

    if not spec.methods:
        return [m for m in DEFAULT_METHODS if m in WEIGHTINGS and problem(m) is None]
    for method in spec.methods:
        if method not in WEIGHTINGS:
            raise StudyError(f"Unknown weighting method {method!r}; choose among: {', '.join(WEIGHTINGS.names())}.")
        reason = problem(method)
        if reason:
            raise StudyError(reason)
    return list(dict.fromkeys(spec.methods))


def _relatedness(spec: StudySpec, base: ExperimentConfig) -> list[Member]:
    if len(base.tasks) != 2:  # (the dataset was checked with the spec: check_spec)
        raise StudyError("The relatedness study needs both synthetic tasks (tasks=task_a,task_b).")
    members = []
    for p in spec.correlations:
        related = _with(base, **{"dataset.correlation": p})
        for seed in spec.seed_values:
            config = replace(related, seed=seed)
            for task in config.tasks:
                members.append(Member(stl_group(task, p), seed, baseline_config(config, task),
                                      f"STL {task}, correlation {p:g}, seed {seed}"))
            for arch in spec.archs:
                members.append(Member(arch_group(arch, p), seed, _with(config, **{"model.arch": arch}),
                                      f"{arch}, correlation {p:g}, seed {seed}"))
    return members


# ----- helpers -------------------------------------------------------------------

def _baselines(config: ExperimentConfig, seed: int) -> list[Member]:
    return [Member(stl_group(t), seed, baseline_config(config, t), f"STL {t}, seed {seed}") for t in config.tasks]


def _need_multi_task(spec: StudySpec, base: ExperimentConfig, kind: str, at_least: int) -> None:
    if base.model.arch == "single":
        raise StudyError(f"The {kind} study compares sharing with training alone; choose a multi-task "
                         "architecture (model.arch=hard, soft, cross_stitch or mmoe).")
    if len(base.tasks) < at_least:
        raise StudyError(f"The {kind} study needs at least {at_least} tasks (tasks=a,b,...); got "
                         f"{len(base.tasks)}.")


def _with(config: ExperimentConfig, **flat) -> ExperimentConfig:
    """``config`` with dotted settings changed (keyword names use dots via **{...})."""
    for key, value in flat.items():
        config = set_key(config, key, value)
    return config
