"""Ensembles of single-task models: bagging, averaging and voting.

Bagging (Breiman, "Bagging predictors", Machine Learning 1996): each of k
members is trained on its own *bootstrap sample* of the training set (n
draws with replacement, ``train.bootstrap=true``; ``engine.bootstrap_rows``),
and the members' predictions are combined:

    classification  average of the members' class probabilities, then argmax
                    (``average_probabilities``), or the majority vote of their
                    classes (``majority_vote``; ties go to the lowest class)
    regression      average of the members' values

Averaging helps where the members are unstable (small data, a model that
over-fits): their errors partly cancel. It is the usual rival of multi-task
learning at a matched parameter budget: several specialists voting against
one shared model (``mtl-vs-ensemble`` study, ``mtlcore.studies``).

A member is an ordinary run (``model.arch=single``, ``tasks=(t,)``), so the
members of a study pack into one stacked model where stacking pays
(``mtlcore.packing``: each member's batches are drawn from its own bootstrap
rows, no copy of the data). A member keeps its test-split predictions in
``summary["test_outputs"]`` so an ensemble is scored without reloading.

This module's combining functions use plain numbers (the study report has no
torch); ``test_outputs`` and ``member_width`` import torch when called.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from .config import ExperimentConfig

__all__ = ["average_probabilities", "combine_predictions", "ensemble_runs", "ensemble_scores", "majority_vote",
           "member_config", "member_seed", "member_width", "model_parameters", "test_outputs"]

DIGITS = 5  # test outputs are kept to this many decimals in summaries
# Rows per evaluation pass, as the engine's EVAL_BATCH; not imported from it: the engine's summary
# (mtlcore.outcome) imports this module, and this one must not import the engine back.
EVAL_BATCH = 1024


def member_seed(seed: int, member: int) -> int:
    """The run seed of member ``member`` of the ensemble of study seed ``seed`` (distinct for every pair)."""
    return 1000 * (member + 1) + seed


def member_config(config: "ExperimentConfig", task: str, member: int, width: int) -> "ExperimentConfig":
    """Member ``member`` of ``task``'s ensemble: the single-task baseline on a bootstrap sample, at ``width``."""
    from .compare import baseline_config
    from .config import set_key

    single = baseline_config(config, task)
    single = set_key(set_key(single, "train.bootstrap", True), "model.width", width)
    return replace(single, seed=member_seed(config.seed, member))


def model_parameters(config: "ExperimentConfig") -> int:
    """Trainable parameters of ``config``'s model (built on the meta device: no memory, no time)."""
    import torch

    from .data import load_dataset
    from .models import build_model, count_parameters

    data = load_dataset(config.dataset.name, seed=config.dataset.seed, **config.dataset.options)
    with torch.device("meta"):
        model = build_model(config, [data.tasks[t] for t in config.tasks], data.input_kind, data.input_shape)
    return count_parameters(model)


def member_width(config: "ExperimentConfig", members: int) -> int:
    """The trunk width at which ``members`` single-task models per task have about the multi-task model's parameters.

    The budget is the multi-task ``config``'s parameter count; the width (1
    to the config's own) whose k * T members come closest to it is chosen.
    """
    budget = model_parameters(config)

    def ensemble_size(width: int) -> int:
        return sum(members * model_parameters(member_config(config, t, 0, width)) for t in config.tasks)

    return min(range(1, config.model.width + 1), key=lambda w: (abs(ensemble_size(w) - budget), -w))


def test_outputs(run: Any) -> dict[str, dict[str, list]]:
    """Each task's test-split predictions and targets, as plain numbers.

    Classification: the softmax probabilities (temperature 1) and the class
    indices. Regression: values and targets in the original units.
    """
    import torch

    run.model.eval()
    kept: dict[str, dict[str, list]] = {t: {"outputs": [], "targets": []} for t in run.specs}
    with torch.no_grad():
        for x, y in run.batches(run.splits["test"], EVAL_BATCH, shuffle=False):
            outputs, _ = run.task_losses(x, y)
            for task, spec in run.specs.items():
                if spec.kind == "classification":
                    kept[task]["outputs"] += torch.softmax(outputs[task], dim=-1).round(decimals=DIGITS).tolist()
                    kept[task]["targets"] += y[task].tolist()
                elif spec.kind == "regression":
                    mean, std = run.target_stats.get(task, (0.0, 1.0))
                    point = run.loss_fns[task].point(outputs[task])
                    kept[task]["outputs"] += (point * std + mean).round(decimals=DIGITS).tolist()
                    kept[task]["targets"] += (y[task] * std + mean).round(decimals=DIGITS).tolist()
    return {t: v for t, v in kept.items() if v["outputs"]}


def average_probabilities(members: Sequence[Sequence[float]]) -> list[float]:
    """The members' class probabilities for one example, averaged."""
    k = len(members)
    return [sum(column) / k for column in zip(*members)]


def majority_vote(members: Sequence[Sequence[float]]) -> int:
    """The class most members put first, for one example (a tie goes to the lowest class index)."""
    votes: dict[int, int] = {}
    for probabilities in members:
        best = max(range(len(probabilities)), key=lambda c: (probabilities[c], -c))
        votes[best] = votes.get(best, 0) + 1
    return max(votes, key=lambda c: (votes[c], -c))


def _argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=lambda c: (values[c], -c))


def ensemble_scores(kind: str, members: Sequence[dict[str, list]]) -> dict[str, float] | None:
    """The ensemble's test metrics from its members' ``test_outputs`` of one task.

    Classification: ``accuracy`` (averaged probabilities) and ``vote_accuracy``
    (majority vote). Regression: ``mae`` of the averaged values. None when the
    members did not keep outputs, or disagree on the test targets.
    """
    if not members or any(not m.get("outputs") for m in members):
        return None
    targets = members[0]["targets"]
    if any(m["targets"] != targets for m in members[1:]):
        return None
    n = len(targets)
    if kind == "classification":
        averaged = sum(_argmax(average_probabilities([m["outputs"][i] for m in members])) == targets[i]
                       for i in range(n))
        voted = sum(majority_vote([m["outputs"][i] for m in members]) == targets[i] for i in range(n))
        return {"accuracy": averaged / n, "vote_accuracy": voted / n}
    mean = [sum(m["outputs"][i] for m in members) / len(members) for i in range(n)]
    return {"mae": sum(abs(mean[i] - targets[i]) for i in range(n)) / n}


def combine_predictions(predictions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ensemble's prediction from its members' (``predict.predict_tensor``) of one task.

    Classification: each member's vote (its most probable class, at
    temperature 1), the averaged probabilities and their class, and the
    majority vote with its count. Regression: the members' values and their mean.
    """
    first = predictions[0]
    if first["kind"] == "classification":
        names = list(first["probabilities"])
        members = [_softmax(p["logits"]) for p in predictions]
        averaged = average_probabilities(members)
        vote = majority_vote(members)
        votes = [names[_argmax(m)] for m in members]
        return {"kind": "classification", "classes": names, "members": members, "votes": votes,
                "average": dict(zip(names, averaged)), "average_class": names[_argmax(averaged)],
                "vote": names[vote], "vote_count": votes.count(names[vote])}
    values = [p["value"] for p in predictions]
    return {"kind": "regression", "values": values, "mean": sum(values) / len(values), "unit": first.get("unit", "")}


def _softmax(logits: Sequence[float]) -> list[float]:
    import math

    top = max(logits)
    exps = [math.exp(v - top) for v in logits]
    total = sum(exps)
    return [e / total for e in exps]


def __getattr__(name: str) -> Any:
    """``ensemble_runs`` reads a study's record, so it lives in ``mtlcore.studies.plans``; the old path still works."""
    if name == "ensemble_runs":
        from .studies.plans import ensemble_runs
        return ensemble_runs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
