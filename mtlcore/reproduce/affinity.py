"""Task affinity from one run predicts which tasks gain from training together (Fifty et al., NeurIPS 2021).

Fifty, Amid, Zhao, Yu, Anil & Finn, "Efficiently Identifying Task Groupings
for Multi-Task Learning" (TAG), NeurIPS 2021. The lookahead affinity
Z(i->j) = 1 - L_j(after a step on task i's loss) / L_j(before), averaged
over one multi-task run (``mtlcore.diagnostics``), is cheap; the transfer
measured by training every pair (Standley et al., ICML 2020) is expensive.
TAG's claim: the cheap score ranks the pairs like the expensive one, and
chooses task groupings that are close to the best.

We run the pair study (``mtlcore.studies``, kind ``pairs``): each task
alone, every pair, and the all-task run whose diagnostics give Z, over
seeds. For each seed we take the Spearman rank correlation between Z(i->j)
and the measured transfer (task j's relative gain when trained with task i,
in %) over every ordered pair i != j; the verdict rule (``mtlcore.verdicts``)
says whether the correlation is above 0 beyond the noise of the seeds.
Each score also chooses a split of the tasks into two groups: the split
that maximises the sum over tasks of the mean score onto each task from the
others in its group (TAG's group score, section 3.2, with the pairwise
approximation of Standley et al.). Both choices are then valued by the
measured transfer.
"""
from __future__ import annotations

import math
import time
from itertools import combinations
from statistics import fmean
from typing import Any, Callable, Sequence

from ..verdicts import HELPS, spread, verdict_of_values
from .base import INCONCLUSIVE, REPRODUCED, REPRODUCTIONS, ClaimRow, Reproduction, ReproductionResult, claim_verdict

#: Digits (8x8) with an MLP trunk: four tasks (digit, parity, big, ink), 11 runs a seed, quick on a CPU.
SETTINGS = {"dataset.name": "digits", "tasks": "digit,parity,big,ink", "model.trunk": "mlp", "model.width": 32,
            "train.epochs": 10}
#: ``full=True``: three times the training (30 epochs). Packed training runs the default's 110 runs (10
#: epochs, 10 seeds) in about 16 s on a quiet 2-core CPU (the README's first measurement, 3 seeds, took
#: 40 minutes before packing, on a loaded machine).
FULL = {"train.epochs": 30}
QUICK = {"train.epochs": 1, "train.max_samples": 200}


def ranks(values: Sequence[float]) -> list[float]:
    """Ranks from 1, ties sharing their mean rank (as Spearman's rho needs)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    result = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            result[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return result


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation: Pearson's correlation of the ranks (None if either is constant)."""
    if len(x) != len(y) or len(x) < 3:
        return None
    rx, ry = ranks(x), ranks(y)
    mx, my = fmean(rx), fmean(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    return None if sxx == 0 or syy == 0 else sxy / math.sqrt(sxx * syy)


def off_diagonal(tasks: Sequence[str], *matrices) -> list[tuple[str, str, list[float]]]:
    """(i, j, [m[i][j] for each matrix]) for every ordered pair i != j where every matrix has a number."""
    found = []
    for i, source in enumerate(tasks):
        for j, target in enumerate(tasks):
            if i != j and all(m is not None and m[i][j] is not None for m in matrices):
                found.append((source, target, [float(m[i][j]) for m in matrices]))
    return found


def two_group_splits(tasks: Sequence[str]) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Every split of ``tasks`` into two non-empty groups (each split once)."""
    first, rest = tasks[0], list(tasks[1:])
    splits = []
    for size in range(0, len(rest) + 1):
        for chosen in combinations(rest, size):
            group = (first, *chosen)
            other = tuple(t for t in tasks if t not in group)
            if other:
                splits.append((group, other))
    return splits


def group_score(split, tasks: Sequence[str], matrix) -> float:
    """Sum over tasks of the mean score onto the task from the other tasks of its group (0 when alone)."""
    index = {t: k for k, t in enumerate(tasks)}
    total = 0.0
    for group in split:
        for target in group:
            scores = [matrix[index[s]][index[target]] for s in group if s != target
                      and matrix[index[s]][index[target]] is not None]
            total += fmean(scores) if scores else 0.0
    return total


def best_split(tasks: Sequence[str], matrix):
    splits = two_group_splits(tasks)
    return max(splits, key=lambda split: group_score(split, tasks, matrix)) if splits else None


def _split_text(split) -> str:
    return " | ".join("+".join(group) for group in split) if split else "none"


@REPRODUCTIONS.register("affinity")
class AffinityReproduction(Reproduction):
    title = "Lookahead task affinity from one run against the transfer measured by training every pair"
    paper = ("Fifty, Amid, Zhao, Yu, Anil & Finn, Efficiently Identifying Task Groupings for Multi-Task Learning, "
             "NeurIPS 2021 (TAG); pair transfer as in Standley et al., Which Tasks Should Be Learned Together?, "
             "ICML 2020.")
    claim = "The affinity measured in one multi-task run ranks the pairs of tasks like their measured transfer."
    paper_value = "affinity and pairwise transfer correlate; TAG's groupings close to the best, at a fraction of the cost"
    default_seeds = 10  # 11 runs a seed; 10 seeds in 16 s (5 left rho's interval touching 0: README)
    expected_minutes = 1.0  # 16 s (10 seeds) on a quiet 2-core CPU; a loaded one takes several times that

    def run(self, seeds: int, progress: Callable[[str], None] = lambda line: None, quick: bool = False,
            full: bool = False, **overrides: Any) -> ReproductionResult:
        from ..compare import baseline_key
        from ..config import set_key
        from ..studies.local import train_missing
        from ..studies.plans import plan
        from ..studies.report import Outcome, build_result
        from ..studies.spec import StudySpec, default_base

        begin = time.perf_counter()
        base = default_base("pairs", "digits")
        for key, value in {**SETTINGS, **(FULL if full else {}), **(QUICK if quick else {}), **overrides}.items():
            base = set_key(base, key, value)
        spec = StudySpec("pairs", base, seeds=seeds, diagnostics_every=2 if quick else 5)
        members = plan(spec)
        progress(f"{len(members)} runs: each of {', '.join(base.tasks)} alone, every pair, and all together "
                 f"(with the lookahead affinity), {seeds} seed(s), {base.train.epochs} epochs...")
        trained, _ = train_missing(members, [], progress)
        outcomes, groups = [], [m.group for m in members]
        for member in members:
            state, summary, epochs = trained.get((baseline_key(member.config), member.needs_diagnostics),
                                                 ("cancelled", {}, []))
            if state == "finished":
                outcomes.append(Outcome.from_summary(member.group, member.seed, summary, epochs))
        tasks = list(base.tasks)
        overall = build_result(spec, groups, outcomes)
        per_seed = {}
        for seed in spec.seed_values:
            result = build_result(spec, groups, [o for o in outcomes if o.seed == seed])
            pairs = off_diagonal(tasks, result.get("affinity"), result.get("transfer"))
            rho = spearman([p[2][0] for p in pairs], [p[2][1] for p in pairs])
            if rho is not None:
                per_seed[seed] = rho
        affinity, transfer = overall.get("affinity"), overall.get("transfer")
        pairs = off_diagonal(tasks, affinity, transfer)
        rho_mean = spearman([p[2][0] for p in pairs], [p[2][1] for p in pairs])
        by_affinity = best_split(tasks, affinity) if affinity else None
        by_transfer = best_split(tasks, transfer) if transfer else None
        rows = self.rows(per_seed, rho_mean, by_affinity, by_transfer, tasks, transfer, len(pairs))
        return ReproductionResult(
            name="affinity", title=self.title, paper=self.paper, rows=rows, seeds=seeds,
            seconds=time.perf_counter() - begin,
            details={"tasks": tasks, "affinity": affinity, "transfer": transfer,
                     "pairs": [{"source": s, "target": t, "affinity": v[0], "transfer": v[1]} for s, t, v in pairs],
                     "spearman_per_seed": {str(s): r for s, r in per_seed.items()}, "spearman_of_means": rho_mean,
                     "grouping": {"affinity": [list(g) for g in by_affinity] if by_affinity else None,
                                  "transfer": [list(g) for g in by_transfer] if by_transfer else None}},
            settings={"quick": quick, "full": full, "diagnostics_every": spec.diagnostics_every, **base.to_flat()},
        )

    @staticmethod
    def rows(per_seed, rho_mean, by_affinity, by_transfer, tasks, transfer, n_pairs) -> list[ClaimRow]:
        rows = []
        verdict = verdict_of_values({s: -r for s, r in per_seed.items()})  # "helps" = rho above 0
        s = spread(list(per_seed.values()))
        if s is None:
            ours = "no seed with both the affinity and every pair's transfer"
        else:
            ours = f"Spearman rho {s.mean:+.2f} ± {s.std:.2f} over {s.n} seed(s), {n_pairs} ordered pairs"
            if verdict.interval:
                ours += f", 95% interval [{-verdict.interval[1]:+.2f}, {-verdict.interval[0]:+.2f}]"
            if rho_mean is not None:
                ours += f"; of the means over seeds {rho_mean:+.2f}"
        rows.append(ClaimRow(
            claim="The lookahead affinity Z(i->j) ranks the ordered pairs like the measured transfer (rho > 0)",
            paper="affinity correlates with the transfer measured by training pairs (TAG, section 4)",
            ours=ours, verdict=claim_verdict(verdict.label, HELPS) if s else INCONCLUSIVE,
        ))
        if by_affinity and by_transfer and transfer:
            chosen, best = group_score(by_affinity, tasks, transfer), group_score(by_transfer, tasks, transfer)
            same = {frozenset(g) for g in by_affinity} == {frozenset(g) for g in by_transfer}
            rows.append(ClaimRow(
                claim="The grouping into two that the affinity chooses is the one the measured transfer chooses",
                paper="TAG's groupings are close to the best found by training the groups",
                ours=(f"affinity: {_split_text(by_affinity)} (measured transfer score {chosen:+.2f}); "
                      f"transfer: {_split_text(by_transfer)} ({best:+.2f})"),
                verdict=REPRODUCED if same else INCONCLUSIVE,
                note="" if same else "a different split; the gap in measured transfer says how much it costs",
            ))
        return rows
