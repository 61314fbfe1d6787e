"""The two-objective toy of Liu et al. (CAGrad, NeurIPS 2021), as FAMO runs it (Liu et al., NeurIPS 2023).

FAMO's figure 1 (github.com/Cranial-XIX/FAMO, ``misc/fig.png``, code in
``experiments/toy``): from the five starts, 50,000 Adam steps at lr 1e-3,

* "ADAM fails in 1 out of 5 runs to reach the Pareto front" (equal weights);
* MGDA, PCGrad, CAGrad, Nash-MTL and FAMO reach it from all five;
* time for the 50,000 steps: Adam 33 s, MGDA 60, PCGrad 54, CAGrad 89,
  Nash-MTL 995, FAMO 39: FAMO costs about what Adam costs, Nash-MTL 30 times as much.

We run the same problem (``mtlcore.toy``) through the engine's own
weighting methods. The toy is deterministic: the five starts are its
repeats, and ``seeds`` only matter to the random methods (RLW, GradDrop).
The trajectories of the methods run in parallel processes, one per core;
the cost per step is then measured one method at a time, in CPU time of
this process (so that other programs on a shared machine do not count), as
a ratio to equal weights.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Callable, Sequence

from .base import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, REPRODUCTIONS, ClaimRow, Reproduction, ReproductionResult

#: FAMO's figure 1: seconds for 50,000 steps from the five starts.
PAPER_SECONDS = {"equal": 33.0, "mgda": 60.0, "pcgrad": 54.0, "cagrad": 89.0, "nash_mtl": 995.0, "famo": 39.0}
PAPER_NAMES = {"equal": "Adam (equal weights)", "mgda": "MGDA", "pcgrad": "PCGrad", "cagrad": "CAGrad",
               "nash_mtl": "Nash-MTL", "famo": "FAMO"}
#: Whose full 50,000-step trajectories run by default: the cheap ones. MGDA, CAGrad and Nash-MTL
#: solve an optimisation problem at every step and start (torchjd with cvxpy for the last two),
#: which takes from tens of minutes to hours here; ask for them with ``methods=...``.
DEFAULT_METHODS = ("equal", "famo", "pcgrad")
#: Steps (at most) and seconds (about) spent measuring each method's cost per step.
COST_STEPS, COST_SECONDS = 300, 6.0
#: By default a start that misses the Pareto set is followed this fraction of the steps further (50,000 ->
#: 20,000 more), so that the table tells a stall (equal weights from (9, 9)) from a slower path (PCGrad's).
BEYOND_FRACTION = 0.4
#: "Close to equal weights" and "many times higher", in cost per step relative to equal weights.
CLOSE, MANY = 2.0, 5.0


def _trajectory_job(method: str, steps: int, seed: int, beyond: int = 0,
                    start_indices: Sequence[int] | None = None) -> dict[str, Any]:
    """One method's run from the starts (all five, or ``start_indices``), in a worker process: final points,
    reached, a thinned path; with ``beyond``, how much longer the starts that missed the Pareto set need."""
    import torch

    from ..toy.problem import STARTS, distance_to_pareto_set
    from ..toy.trajectories import REACHED_TOLERANCE, ToyOptimisation, trajectories

    torch.set_num_threads(1)
    indices = list(range(len(STARTS))) if start_indices is None else [int(i) for i in start_indices]
    starts = tuple(STARTS[i] for i in indices)
    run = ToyOptimisation(method, starts, seed=seed)  # kept, to go on with it past ``steps``
    last = None
    for last in trajectories(method, steps=steps, record_every=max(1, steps // 200), chunk=5000, starts=starts,
                             run=run):
        pass
    document = last.to_dict()
    document["points"] = last.points.round(4).tolist()
    document["distance"] = distance_to_pareto_set(last.final_points).round(5).tolist()
    document["start_indices"] = indices
    missed = [k for k, ok in enumerate(document["reached"]) if not ok]
    if beyond and missed:
        # A start that missed: stalled, or only slower than the paper's? Keep going and note when it arrives.
        reached_at: dict[int, int | None] = {k: None for k in missed}
        done, check = steps, max(100, min(1000, beyond // 50))
        while done < steps + beyond and any(v is None for v in reached_at.values()):
            more = min(check, steps + beyond - done)
            run.run(more)
            done += more
            distance = distance_to_pareto_set(run.positions())
            for k in reached_at:
                if reached_at[k] is None and distance[k] <= REACHED_TOLERANCE:
                    reached_at[k] = done
        document["later"] = {"until": done,
                             "reached_at": {str(indices[k]): step for k, step in reached_at.items()}}
    return document


def start_name(starts: Sequence[Sequence[float]], i: int) -> str:
    """Start ``i`` as the papers write it: "(9, 9)"."""
    return f"({starts[i][0]:g}, {starts[i][1]:g})"


def missed_starts(run: dict[str, Any], starts: Sequence[Sequence[float]]) -> tuple[list[str], list[str]]:
    """A method's starts that missed the Pareto set, as text: (stalled, slower).

    "Slower": followed further (``later``, from ``beyond``) it got there, and
    when; "stalled": it did not, or was not followed.
    """
    indices = list(run.get("start_indices") or range(len(run["reached"])))
    later = run.get("later") or {}
    stalled, slower = [], []
    for i, ok in zip(indices, run["reached"]):
        if ok:
            continue
        at = (later.get("reached_at") or {}).get(str(i))
        if at:
            slower.append(f"from {start_name(starts, i)} it gets there at step {at:,}")
        else:
            stalled.append(start_name(starts, i) + (f", still after {later['until']:,} steps" if later else ""))
    return stalled, slower


def measure_cost(methods: Sequence[str], steps: int = COST_STEPS, seconds: float = COST_SECONDS,
                 seed: int = 0) -> dict[str, float]:
    """CPU seconds per step (all five starts) of each method, measured here one after the other.

    CPU time of this process, not wall-clock time: on a shared machine other
    programs' work would otherwise count as ours. Each method runs a few warm-up steps first (solver set-up, caches), then
    up to ``steps`` steps or about ``seconds`` seconds, whichever comes first.
    """
    import torch

    from ..toy.trajectories import ToyOptimisation

    torch.set_num_threads(1)
    costs = {}
    for method in methods:
        run = ToyOptimisation(method, seed=seed)
        run.run(2)
        begin, done = time.process_time(), 0
        while done < steps and time.process_time() - begin < seconds:
            run.step()
            done += 1
        costs[method] = (time.process_time() - begin) / done
    return costs


@REPRODUCTIONS.register("toy")
class ToyReproduction(Reproduction):
    title = "Conflicting gradients on the two-objective toy (CAGrad's toy, as in Nash-MTL and FAMO)"
    paper = ("Liu, Liu, Jin, Stone & Liu, Conflict-Averse Gradient Descent, NeurIPS 2021; Navon et al., "
             "Multi-Task Learning as a Bargaining Game, ICML 2022; Liu, Liu, Jin, Stone & Liu, FAMO: Fast "
             "Adaptive Multitask Optimization, NeurIPS 2023, figure 1.")
    claim = ("Equal-weight Adam reaches the Pareto set from 4 of the 5 starts; the MTL methods from all five; "
             "FAMO costs about what equal weights cost, Nash-MTL many times more.")
    paper_value = "Adam 4/5; MGDA, PCGrad, CAGrad, Nash-MTL, FAMO 5/5; time Adam 33 s, FAMO 39 s, Nash-MTL 995 s"
    default_seeds = 1
    expected_minutes = 6.0

    def run(self, seeds: int, progress: Callable[[str], None] = lambda line: None, methods: Sequence[str] = (),
            steps: int | None = None, workers: int | None = None, cost_methods: Sequence[str] | None = None,
            full: bool = False, beyond: int | None = None, starts: Sequence[int] | None = None,
            **options: Any) -> ReproductionResult:
        """``full``: every method the engine has (hours here: MGDA, CAGrad and Nash-MTL solve a problem
        per start and step); the default runs the cheap ones (``DEFAULT_METHODS``). ``beyond``: up to this
        many more steps for the starts that missed the Pareto set (a stall, or a slower path?; default
        ``BEYOND_FRACTION`` of ``steps``, 0: none). ``starts``:
        indices of the starts to run (default all five; a verdict needs all five)."""
        from ..toy.problem import STARTS, STEPS
        from ..toy.trajectories import REACHED_TOLERANCE, toy_methods

        begin = time.perf_counter()
        steps = STEPS if steps is None else int(steps)
        available = toy_methods()
        methods = list(dict.fromkeys(["equal", *(methods or (available if full else DEFAULT_METHODS))]))
        unknown = [m for m in methods if m not in available]
        if unknown:
            raise ValueError(f"Unknown weighting method(s) {', '.join(unknown)}; choose from: {', '.join(available)}.")
        cost_methods = [m for m in (cost_methods or PAPER_SECONDS) if m in available]
        if starts is not None:
            starts = sorted({int(i) for i in starts})
            if not starts or not all(0 <= i < len(STARTS) for i in starts):
                raise ValueError(f"Starts are numbered 0 to {len(STARTS) - 1}; got {starts}.")
        beyond = round(BEYOND_FRACTION * steps) if beyond is None else int(beyond)
        if beyond < 0:
            raise ValueError(f"beyond must be 0 or more steps, got {beyond}.")
        workers = max(1, min(len(methods), workers or os.cpu_count() or 1))
        progress(f"Trajectories: {', '.join(methods)} from {len(STARTS)} starts, {steps:,} Adam steps each, "
                 f"{workers} process(es)...")
        runs: dict[str, dict[str, Any]] = {}

        def report(method: str) -> None:
            progress(f"  {method}: {sum(runs[method]['reached'])}/{len(runs[method]['reached'])} starts reach the "
                     f"Pareto set ({runs[method]['seconds']:.0f} s)")

        if workers == 1:  # in this process: no start-up of another Python
            for method in methods:
                runs[method] = _trajectory_job(method, steps, 0, beyond, starts)
                report(method)
        else:
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                futures = {m: pool.submit(_trajectory_job, m, steps, 0, beyond, starts) for m in methods}
                for method, future in futures.items():
                    runs[method] = future.result()
                    report(method)
        progress(f"Cost per step: {', '.join(cost_methods)} (about {COST_SECONDS:.0f} s each)...")
        costs = measure_cost(cost_methods)
        rows = self.rows(runs, costs, steps, STARTS)
        return ReproductionResult(
            name="toy", title=self.title, paper=self.paper, rows=rows, seeds=seeds,
            seconds=time.perf_counter() - begin,
            details={"starts": [list(s) for s in STARTS], "steps": steps, "tolerance": REACHED_TOLERANCE,
                     "trajectories": runs, "seconds_per_step": costs,
                     "relative_cost": {m: c / costs["equal"] for m, c in costs.items()} if "equal" in costs else {},
                     "paper_seconds": PAPER_SECONDS},
            settings={"methods": methods, "steps": steps, "cost_methods": cost_methods, "beyond": beyond,
                      "starts": starts},
        )

    @staticmethod
    def rows(runs: dict[str, dict[str, Any]], costs: dict[str, float], steps: int,
             starts: Sequence[Sequence[float]]) -> list[ClaimRow]:
        n = len(starts)

        def indices(method: str) -> list[int]:  # which starts the method ran from (all of them by default)
            return list(runs[method].get("start_indices") or range(len(runs[method]["reached"])))

        def reached_text(method: str) -> str:
            ran = indices(method)
            stalled, slower = missed_starts(runs[method], starts)
            text = f"{sum(runs[method]['reached'])}/{len(ran)}"
            if len(ran) < n:
                text += f" of the {len(ran)} start(s) run, {', '.join(start_name(starts, i) for i in ran)}"
            if stalled:
                text += f" (stalls from {'; '.join(stalled)})"
            if slower:
                text += f" ({'; '.join(slower)})"
            return text

        def done(method: str) -> int:  # a method's own steps when it stopped short (a measurement cut off)
            return int(runs[method].get("steps", steps))

        def short(method: str) -> str:
            return "" if done(method) >= 50_000 else f"only {done(method):,} of the paper's 50,000 steps"

        rows = []
        equal = runs["equal"]
        count = sum(equal["reached"])
        rows.append(ClaimRow(
            claim="Equal-weight Adam reaches the Pareto set from 4 of the 5 starts and stalls from one",
            paper="4/5 (FAMO, fig. 1: \"ADAM fails in 1 out of 5 runs to reach the Pareto front\")",
            ours=reached_text("equal"),
            verdict=(REPRODUCED if count == n - 1 else NOT_REPRODUCED) if not short("equal") else INCONCLUSIVE,
            note=short("equal"),
        ))
        for method in ("mgda", "pcgrad", "cagrad", "nash_mtl", "famo"):
            claim = f"{PAPER_NAMES[method]} reaches the Pareto set from all 5 starts"
            paper = "5/5 (FAMO, fig. 1; Nash-MTL, fig. 2)" if method != "famo" else "5/5 (FAMO, fig. 1)"
            if method not in runs:
                rows.append(ClaimRow(claim, paper, "not run", INCONCLUSIVE,
                                     note=f"slow here; add it with --methods {method} or --full"))
                continue
            ok = sum(runs[method]["reached"]) == n
            partial = len(indices(method)) < n
            if partial:  # from some starts only: what it found there, but no verdict on "all five"
                verdict = INCONCLUSIVE if all(runs[method]["reached"]) else NOT_REPRODUCED
                note = "; ".join(x for x in (short(method), f"run from {len(indices(method))} of the {n} starts")
                                 if x)
            else:
                verdict = (REPRODUCED if ok else NOT_REPRODUCED) if not short(method) else INCONCLUSIVE
                note = short(method)
            rows.append(ClaimRow(claim, paper, reached_text(method), verdict, note=note))
        if "equal" in costs:
            ratio = {m: c / costs["equal"] for m, c in costs.items()}
            paper_ratio = {m: s / PAPER_SECONDS["equal"] for m, s in PAPER_SECONDS.items()}
            if "famo" in ratio:
                rows.append(ClaimRow(
                    claim=f"FAMO's cost per step is close to equal weights' (under {CLOSE:g}x)",
                    paper=f"{paper_ratio['famo']:.2f}x (39 s vs 33 s)",
                    ours=f"{ratio['famo']:.2f}x ({costs['famo'] * 1e3:.2f} vs {costs['equal'] * 1e3:.2f} ms per step)",
                    verdict=REPRODUCED if ratio["famo"] < CLOSE else NOT_REPRODUCED,
                ))
            if "nash_mtl" in ratio:
                rows.append(ClaimRow(
                    claim=f"Nash-MTL's cost per step is many times equal weights' (over {MANY:g}x)",
                    paper=f"{paper_ratio['nash_mtl']:.0f}x (995 s vs 33 s)",
                    ours=f"{ratio['nash_mtl']:.0f}x ({costs['nash_mtl'] * 1e3:.1f} vs "
                         f"{costs['equal'] * 1e3:.2f} ms per step)",
                    verdict=REPRODUCED if ratio["nash_mtl"] > MANY else NOT_REPRODUCED,
                ))
        return rows
