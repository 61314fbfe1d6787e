"""A tuned static-weight sweep is a strong baseline for the adaptive methods (Xin et al.; Kurin et al., 2022).

Xin, Ghorbani, Gilmer, Garg & Firat, "Do Current Multi-Task Optimization
Methods in Deep Learning Even Help?", NeurIPS 2022; Kurin, De Palma,
Kostrikov, Whiteson & Kumar, "In Defense of the Unitary Scalarization for
Deep Multi-Task Learning", NeurIPS 2022. Both find that once the static
weights are tuned (and the seeds are counted), the specialised methods
(uncertainty weighting, DWA, PCGrad, MGDA, ...) rarely beat the weighted
sum: their gains are within the seed-to-seed noise.

We run the sweep study's plan (``mtlcore.studies.plans``): static weights
w, 1 - w for two tasks at several w, and each adaptive method, over seeds,
plus each task trained alone (for Delta_m). The sweep point is chosen on
the *validation* split (the lowest mean validation Delta_m over seeds), so
the test numbers are not used to tune it; then, seed by seed on the test
split, each method's Delta_m is compared with the chosen point's, and the
lab's verdict rule (``mtlcore.verdicts``) says whether the method is better,
within noise, or worse.
"""
from __future__ import annotations

import time
from statistics import fmean
from typing import Any, Callable, Sequence

from ..verdicts import HELPS, HURTS, WITHIN_NOISE, spread, verdict_of_values
from .base import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, REPRODUCTIONS, ClaimRow, Reproduction, ReproductionResult

#: Digits (8x8, 1,797 images) with an MLP trunk: a classification and a regression task of different
#: loss scales, where the weights matter, and small enough for many runs on a laptop.
SETTINGS = {"dataset.name": "digits", "tasks": "digit,ink", "model.trunk": "mlp", "model.width": 32,
            "train.epochs": 15}
#: ``full=True``: twice the training (30 epochs). Packed training runs the default's 60 runs (15 epochs,
#: 5 seeds) in about 20 s on a quiet 2-core CPU, so the default is the README's longer measurement.
FULL = {"train.epochs": 30}
QUICK = {"train.epochs": 1, "train.max_samples": 200}
METHODS = ("uncertainty", "dwa", "famo", "pcgrad", "upgrad")
STEPS = 7  # weights 0, 1/6, ..., 1 (the end points train one task only and are never chosen here)


def base_config(quick: bool = False, full: bool = False, **overrides: Any):
    from ..config import set_key
    from ..studies.spec import default_base

    config = default_base("sweep", "digits")
    for key, value in {**SETTINGS, **(FULL if full else {}), **(QUICK if quick else {}), **overrides}.items():
        config = set_key(config, key, value)
    return config


def metric_values(summary: dict[str, Any], split: str) -> dict[str, float]:
    """Each task's main metric on ``split`` (accuracy, MAE...), as the study tables use."""
    values = {}
    for task, info in (summary.get("tasks") or {}).items():
        value = (summary.get(split) or {}).get(task, {}).get(info.get("metric"))
        if value is not None:
            values[task] = float(value)
    return values


@REPRODUCTIONS.register("sweep_baseline")
class SweepBaseline(Reproduction):
    title = "A tuned static-weight sweep against the adaptive weighting methods"
    paper = ("Xin, Ghorbani, Gilmer, Garg & Firat, Do Current Multi-Task Optimization Methods in Deep Learning "
             "Even Help?, NeurIPS 2022; Kurin, De Palma, Kostrikov, Whiteson & Kumar, In Defense of the Unitary "
             "Scalarization for Deep Multi-Task Learning, NeurIPS 2022.")
    claim = "No adaptive method clearly beats the best static weights (chosen on validation), once seeds are counted."
    paper_value = "adaptive methods within noise of (or worse than) a tuned weighted sum"
    default_seeds = 5
    expected_minutes = 1.0  # 18 s on a quiet 2-core CPU; a loaded one takes several times that

    def run(self, seeds: int, progress: Callable[[str], None] = lambda line: None, quick: bool = False,
            methods: Sequence[str] = (), steps: int | None = None, full: bool = False,
            **overrides: Any) -> ReproductionResult:
        from ..compare import baseline_config, baseline_key, delta_m
        from ..studies.local import train_missing
        from ..studies.plans import method_group, plan, stl_group, weight_group, sweep_weights
        from ..studies.spec import StudySpec
        from ..studies.plans import Member

        begin = time.perf_counter()
        methods = tuple(methods or ((METHODS[0], METHODS[3]) if quick else METHODS))
        steps = int(steps or (3 if quick else STEPS))
        base = base_config(quick, full, **overrides)
        a, b = base.tasks
        spec = StudySpec("sweep", base, seeds=seeds, steps=steps, methods=methods)
        # The end points (w = 0 or 1) train one task only: not a multi-task candidate.
        weights = [w for w in sweep_weights(steps) if 0 < w < 1]
        members = [m for m in plan(spec) if m.group in {weight_group(w) for w in weights}
                   or m.group in {method_group(x) for x in methods}]
        for seed in spec.seed_values:  # the single-task baselines, for Delta_m
            config = base.with_updates(seed=seed)
            members += [Member(stl_group(t), seed, baseline_config(config, t), f"STL {t}, seed {seed}")
                        for t in base.tasks]
        progress(f"{len(members)} runs: {len(weights)} static weights, {', '.join(methods)}, and each task alone; "
                 f"{seeds} seed(s) on {base.dataset.name} ({a}, {b}), {base.train.epochs} epochs...")
        trained, _ = train_missing(members, [], progress)
        values: dict[str, dict[int, dict[str, dict[str, float]]]] = {}
        higher: dict[str, bool] = {}
        for member in members:
            state, summary, _ = trained.get((baseline_key(member.config), member.needs_diagnostics),
                                            ("cancelled", {}, []))
            if state != "finished":
                continue
            values.setdefault(member.group, {})[member.seed] = {s: metric_values(summary, s) for s in ("val", "test")}
            higher.update({t: bool(i["higher_is_better"]) for t, i in summary["tasks"].items()})

        def dm(group: str, seed: int, split: str) -> float | None:
            run = values.get(group, {}).get(seed, {}).get(split, {})
            alone = {t: values.get(stl_group(t), {}).get(seed, {}).get(split, {}).get(t) for t in (a, b)}
            if len(run) < 2 or any(v is None for v in alone.values()):
                return None
            try:
                return delta_m({t: run[t] for t in (a, b)}, alone, {t: higher[t] for t in (a, b)})
            except (ValueError, ZeroDivisionError):
                return None

        def per_seed(group: str, split: str) -> dict[int, float]:
            return {s: v for s in spec.seed_values if (v := dm(group, s, split)) is not None}

        val = {w: per_seed(weight_group(w), "val") for w in weights}
        candidates = {w: fmean(v.values()) for w, v in val.items() if v}
        best = min(candidates, key=candidates.get) if candidates else None
        points = []
        for w in weights:
            test = per_seed(weight_group(w), "test")
            points.append({"label": f"w({a})={w:g}", "weight": w, "chosen": w == best,
                           "val": _sd(val[w]), "test": _sd(test), "test_per_seed": _keys(test)})
        method_points = {}
        for method in methods:
            test = per_seed(method_group(method), "test")
            method_points[method] = {"test": _sd(test), "val": _sd(per_seed(method_group(method), "val")),
                                     "test_per_seed": _keys(test)}
        rows = self.rows(best, a, methods, per_seed, method_group, weight_group)
        return ReproductionResult(
            name="sweep_baseline", title=self.title, paper=self.paper, rows=rows, seeds=seeds,
            seconds=time.perf_counter() - begin,
            details={"tasks": [a, b], "chosen_weight": best, "sweep": points, "methods": method_points,
                     "metric": "Delta_m in % against each task alone, same seed (negative = better)"},
            settings={"quick": quick, "full": full, "methods": list(methods), "steps": steps, **base.to_flat()},
        )

    @staticmethod
    def rows(best, task_a, methods, per_seed, method_group, weight_group) -> list[ClaimRow]:
        if best is None:
            return [ClaimRow("The best static weights are at least as good as each adaptive method",
                             "within noise or better", "no complete sweep point", INCONCLUSIVE)]
        sweep_test = per_seed(weight_group(best), "test")
        chosen = spread(list(sweep_test.values()))
        rows = []
        for method in methods:
            test = per_seed(method_group(method), "test")
            seeds = sorted(set(test) & set(sweep_test))
            # Method minus sweep, per seed: negative = the method is better (Delta_m's sign).
            verdict = verdict_of_values({s: test[s] - sweep_test[s] for s in seeds})
            m = spread(list(test.values()))
            ours = (f"{method} Δm {m.mean:+.2f}% ± {m.std:.2f}, sweep w({task_a})={best:g} Δm {chosen.mean:+.2f}% "
                    f"± {chosen.std:.2f}; {method} vs sweep: {verdict.label}" if m and chosen else "no result")
            if verdict.interval:
                ours += f" (95% interval of the difference [{verdict.interval[0]:+.2f}, {verdict.interval[1]:+.2f}])"
            outcome = {HELPS: NOT_REPRODUCED, WITHIN_NOISE: REPRODUCED, HURTS: REPRODUCED}.get(verdict.label,
                                                                                              INCONCLUSIVE)
            rows.append(ClaimRow(
                claim=f"{method} does not clearly beat the tuned static weights",
                paper="within noise of, or worse than, the tuned weighted sum (Xin et al., fig. 1-3; Kurin et al.)",
                ours=ours, verdict=outcome,
                note="" if verdict.decided else "needs 2+ seeds",
            ))
        return rows


def _sd(values: dict[int, float]) -> dict[str, float] | None:
    s = spread(list(values.values()))
    return None if s is None else s.as_dict()


def _keys(values: dict[int, float]) -> dict[str, float]:
    return {str(k): v for k, v in values.items()}
