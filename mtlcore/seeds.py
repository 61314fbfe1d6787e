"""The same comparison repeated with other seeds, for a verdict with error bars.

A verdict (``mtlcore.verdicts``) needs the multi-task run with seed s beside
the single-task baselines with seed s, for several s. These helpers find
those runs among the store's (``seed_runs``, ``seeded_values``) and say which
are still missing (``missing_seed_configs``), so the Compare page's "Add
seeds" button queues exactly what is lacking.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from .compare import Baselines, baseline_config, baseline_key, task_scoring, test_metric
from .config import ExperimentConfig


def seed_key(config: ExperimentConfig) -> str:
    """What runs must share to be the same experiment with another ``seed`` (the run's own seed).

    The data's seed (``dataset.seed``) stays part of the key: another split
    is another experiment.
    """
    return baseline_key(config.with_updates(seed=0))


def seed_runs(run: Any, runs: Iterable[Any], states: Sequence[str] = ("finished",)) -> dict[int, Any]:
    """Seed -> the newest run in ``states`` that is ``run``'s experiment with that seed (``run`` included)."""
    key, found = seed_key(run.config), {}
    for other in runs:
        if other.state in states and seed_key(other.config) == key:
            best = found.get(other.config.seed)
            if best is None or (other.created_at or 0.0) > (best.created_at or 0.0):
                found[other.config.seed] = other
    if run.state in states:
        found[run.config.seed] = run
    return found


def seeded_values(run: Any, runs: Sequence[Any]) -> tuple[dict[int, dict[str, float]], dict[int, dict[str, float]],
                                                          dict[str, bool]]:
    """Test values per seed of ``run``'s experiment and of its baselines: (mtl, stl, higher_is_better).

    ``mtl[seed][task]`` from every finished run of the same experiment with
    another seed; ``stl[seed][task]`` from the finished baseline of that seed.
    Feed them to ``verdicts.delta_m_verdict``.
    """
    baselines = Baselines(runs)
    scoring = {t: task_scoring(run.config, t, run.summary) for t in run.config.tasks}
    mtl, stl = {}, {}
    for seed, member in seed_runs(run, runs).items():
        mtl[seed] = {t: test_metric(member.summary, t, m) for t, (m, _) in scoring.items()}
        stl[seed] = {}
        for t, (m, _) in scoring.items():
            baseline = baselines.find(member.config, t)
            stl[seed][t] = None if baseline is None else test_metric(baseline.summary, t, m)
    return mtl, stl, {t: higher for t, (_, higher) in scoring.items()}


def missing_seed_configs(run: Any, runs: Sequence[Any], seeds: int) -> list[tuple[ExperimentConfig, str]]:
    """(config, what it is) for each run that seeds 0 .. seeds-1 still lack, multi-task and baselines.

    A run that exists in any state but failed ones (finished, queued,
    running) counts as there, so pressing the button twice queues nothing twice.
    """
    alive = ("finished", "queued", "running")
    have = seed_runs(run, runs, states=alive)
    baselines = Baselines(runs)
    wanted: list[tuple[ExperimentConfig, str]] = []
    for seed in range(seeds):
        config = have[seed].config if seed in have else run.config.with_updates(seed=seed)
        if seed not in have:
            wanted.append((config, f"seed {seed}"))
        for task in run.config.tasks:
            if baselines.find(config, task, states=alive) is None:
                wanted.append((baseline_config(config, task), f"seed {seed} · STL {task}"))
    return wanted
