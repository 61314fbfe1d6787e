"""What a study asks: its kind, the base settings, and the kind's own options.

A ``StudySpec`` is to a study what ``ExperimentConfig`` is to a run: frozen,
saved with the study (``to_dict`` / ``from_dict``), and checked by
``check_spec``, which raises a ``StudyError`` naming the option and what is
accepted. It does no work; ``plans.plan`` turns it into member runs.

Why repeat over seeds at all: on small problems the seed-to-seed spread of
one configuration is often as large as the differences between methods
(Xin et al., NeurIPS 2022, "Do Current Multi-Task Optimization Methods in
Deep Learning Even Help?"; Kurin et al., NeurIPS 2022, "In Defense of the
Unitary Scalarization for Deep Multi-Task Learning"). A study therefore
trains every configuration with seeds ``base.seed, base.seed + 1, ...`` and
reports means and spreads. Only the run's seed changes (initialisation,
batch order); the data and its split (``dataset.seed``) stay fixed, so the
spread is the training noise alone.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..config import ExperimentConfig, set_key

KINDS = ("stl-vs-mtl", "pairs", "sweep", "relatedness", "mtl-vs-ensemble")

# One paragraph per kind, shown by the page and by ``study --help``.
KIND_HELP = {
    "stl-vs-mtl": (
        "Does training these tasks together help? Each task is trained alone (single-task "
        "baseline: same settings, tasks=(t,), model.arch=single) and all tasks together, over "
        "several seeds. The study reports each task's mean and spread, the relative change and "
        "Delta_m (Maninis et al., CVPR 2019), and whether each difference is larger than the "
        "seed-to-seed spread -- small differences often are not (Xin et al., NeurIPS 2022; "
        "Kurin et al., NeurIPS 2022)."
    ),
    "pairs": (
        "Which tasks should share? Every pair of tasks (and, on request, every group of up to "
        "four) is trained together and compared with each task alone, as in Standley et al., "
        "ICML 2020, \"Which Tasks Should Be Learned Together?\". The transfer matrix shows how "
        "much task j gains when trained with task i. Beside it, the lookahead affinity of the "
        "all-task model (Fifty et al., NeurIPS 2021): how much one step on task i lowers task "
        "j's loss, a cheap predictor measured during a single run."
    ),
    "sweep": (
        "How do two tasks trade off? The weight of task A goes from 0 to 1 (task B gets 1 - w) "
        "and each model's two test metrics are plotted against each other; the points no other "
        "point beats on both tasks form the Pareto front. Automatic weighting methods are "
        "overlaid: do they land on the front, or could a hand-picked weight do as well? "
        "(Kurin et al., NeurIPS 2022; Xin et al., NeurIPS 2022)."
    ),
    "relatedness": (
        "When does sharing help? On the synthetic dataset the correlation between the two "
        "tasks is a knob. For each correlation, hard sharing and MMoE are compared with "
        "single-task models. Ma et al. (KDD 2018, section 3) found that sharing helps most when "
        "tasks are correlated, and that MMoE, which learns how much to share, degrades less "
        "than hard sharing as the correlation falls."
    ),
    "mtl-vs-ensemble": (
        "One shared model or several specialists voting? The multi-task model is set against the "
        "single-task models and against an ensemble of k single-task models per task, each trained on "
        "its own bootstrap sample of the training set and combined by averaging probabilities or by "
        "majority vote (bagging, Breiman 1996). The members' width is chosen so that the k x T members "
        "have about the multi-task model's parameters; the table shows each task's metric, the "
        "parameter counts and the training time, over seeds."
    ),
}

# Base settings each kind starts from before the user's own, chosen for time:
# on two CPU cores one shapes run takes about 8-20 s (2000 images, a width-16
# CNN, 10 epochs) and one synthetic run 1-6 s, so the default stl-vs-mtl
# study (12 runs) takes a few minutes and the relatedness study (48 runs)
# about as long. The README's Findings were measured with exactly these.
SHAPES_DEFAULTS = {
    "dataset.name": "shapes",
    "dataset.n_samples": 2000,
    "train.epochs": 10,
    "model.width": 16,
}
#: Ma et al.'s matched budget (MMoE, KDD 2018, section 4.3): a shared bottom of one 113-unit layer
#: against MMoE's 8 experts of 16 units, towers of 8 for both, about the same number of parameters
#: (13.3k and 14.8k on 100 inputs). The relatedness study compares the two at this budget, as the
#: reproduction (mtlcore.reproduce.mmoe_relatedness) does, rather than at the engine's default sizes.
MATCHED_BUDGET: dict[str, Any] = {
    "model.layers": 1, "model.hidden": 113, "model.expert_hidden": 16, "model.num_experts": 8,
    "model.head_hidden": 8, "reg.batchnorm": False,
}
KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "stl-vs-mtl": {**SHAPES_DEFAULTS, "tasks": "shape,color,size"},
    "pairs": {**SHAPES_DEFAULTS, "tasks": "shape,color,size,background"},
    "sweep": {**SHAPES_DEFAULTS, "tasks": "shape,background"},
    # The 8x8 digits: small enough that 13 runs a seed take about a minute on two cores, and
    # small data is where bagging's averaging has errors to cancel.
    "mtl-vs-ensemble": {"dataset.name": "digits", "tasks": "digit,parity", "train.epochs": 10, "model.width": 16},
    "relatedness": {
        "dataset.name": "synthetic",
        "tasks": "task_a,task_b",
        "dataset.n_samples": 4000,
        "train.epochs": 10,
        **MATCHED_BUDGET,
    },
}

DEFAULT_SEEDS = 3
DEFAULT_STEPS = 5
DEFAULT_METHODS = ("equal", "uncertainty", "dwa", "upgrad")
DEFAULT_CORRELATIONS = (1.0, 0.5, 0.0, -0.5)
DEFAULT_ARCHS = ("hard", "mmoe")
DEFAULT_DIAGNOSTICS_EVERY = 10
MAX_SEEDS = 20
MAX_STEPS = 21
MAX_SUBSET = 4
MAX_MEMBERS = 400  # a study bigger than this is almost certainly a typo
DEFAULT_ENSEMBLE = 5  # members per task in an ensemble
MAX_ENSEMBLE = 20


class StudyError(ValueError):
    """An impossible study; the message names the option and what is accepted."""


@dataclass(frozen=True)
class StudySpec:
    """Everything a study needs to know; the base config holds the run settings.

    ``max_subset`` (pairs): 2 trains pairs only; 3 or 4 also trains every
    group of that many tasks. ``steps`` (sweep): number of weights from 0 to 1.
    ``methods`` (sweep): automatic weighting methods to overlay; empty means
    those of DEFAULT_METHODS that are registered and fit the config.
    ``reuse``: point members at identical runs trained earlier instead of
    training them again. ``ensemble`` (mtl-vs-ensemble): members per task.
    """

    kind: str
    base: ExperimentConfig
    seeds: int = DEFAULT_SEEDS
    max_subset: int = 2
    steps: int = DEFAULT_STEPS
    methods: tuple[str, ...] = ()
    correlations: tuple[float, ...] = DEFAULT_CORRELATIONS
    archs: tuple[str, ...] = DEFAULT_ARCHS
    diagnostics_every: int = DEFAULT_DIAGNOSTICS_EVERY
    reuse: bool = True
    ensemble: int = DEFAULT_ENSEMBLE

    def to_dict(self) -> dict[str, Any]:
        data = asdict(replace(self, base=ExperimentConfig()))
        data["base"] = self.base.to_dict()
        for name in ("methods", "correlations", "archs"):
            data[name] = list(data[name])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StudySpec":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise StudyError(f"Unknown study option {unknown[0]!r}; valid: {', '.join(sorted(known))}.")
        values = dict(data)
        values["base"] = ExperimentConfig.from_dict(data.get("base", {}))
        for name in ("methods", "archs"):
            if name in values:
                values[name] = tuple(str(v) for v in values[name])
        if "correlations" in values:
            values["correlations"] = tuple(float(v) for v in values["correlations"])
        return cls(**values)

    @property
    def seed_values(self) -> list[int]:
        """The run seeds: base.seed, base.seed + 1, ..."""
        return [self.base.seed + k for k in range(self.seeds)]


def kind_defaults(kind: str, dataset: str | None = None) -> dict[str, Any]:
    """The flat default settings of ``kind`` that apply to ``dataset``.

    The defaults' dataset options and tasks (``dataset.*``, ``tasks``) only
    fit their own dataset: for another one (``dataset`` given and different)
    only the dataset-independent defaults (epochs, width...) are kept.
    """
    check_kind(kind)
    defaults = KIND_DEFAULTS[kind]
    if dataset is None or dataset == defaults["dataset.name"]:
        return dict(defaults)
    kept = {k: v for k, v in defaults.items() if not (k.startswith("dataset.") or k == "tasks")}
    return {**kept, "dataset.name": dataset}


def default_base(kind: str, dataset: str | None = None) -> ExperimentConfig:
    """The base config a study of ``kind`` starts from (before the user's other settings)."""
    config = ExperimentConfig()
    for key, value in kind_defaults(kind, dataset).items():
        config = set_key(config, key, value)
    return config


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise StudyError(f"Unknown study kind {kind!r}; choose one of: {', '.join(KINDS)}.")
    return kind


def check_spec(spec: StudySpec) -> StudySpec:
    """Raise StudyError for an option outside its range; return ``spec`` unchanged.

    The member configs themselves are checked by ``plans.plan`` (with
    ``mtlcore.validate``), which knows the datasets and methods.
    """
    check_kind(spec.kind)
    if not 1 <= spec.seeds <= MAX_SEEDS:
        raise StudyError(f"seeds must be between 1 and {MAX_SEEDS}, got {spec.seeds}.")
    if spec.kind == "pairs" and not 2 <= spec.max_subset <= MAX_SUBSET:
        raise StudyError(f"The largest group of tasks (max_subset) must be 2, 3 or 4, got {spec.max_subset}.")
    if spec.kind == "sweep" and not 2 <= spec.steps <= MAX_STEPS:
        raise StudyError(f"The sweep needs between 2 and {MAX_STEPS} weights (steps), got {spec.steps}.")
    if spec.kind == "pairs" and spec.diagnostics_every < 1:
        raise StudyError(f"diagnostics_every must be 1 or more steps, got {spec.diagnostics_every}.")
    if spec.kind == "mtl-vs-ensemble" and not 2 <= spec.ensemble <= MAX_ENSEMBLE:
        raise StudyError(f"An ensemble needs between 2 and {MAX_ENSEMBLE} members per task (ensemble), "
                         f"got {spec.ensemble}.")
    if spec.kind == "relatedness":
        # Before the base config is validated: the matched MLP budget of the default base would
        # otherwise be refused on an image dataset with a sentence about trunks, not about the dataset.
        if spec.base.dataset.name != "synthetic":
            raise StudyError("The relatedness study needs the synthetic dataset, whose task correlation it varies "
                             f"(dataset.name=synthetic); got {spec.base.dataset.name!r}.")
        if not spec.correlations:
            raise StudyError("Give at least one correlation, e.g. 1,0.5,0,-0.5.")
        for value in spec.correlations:
            if not (math.isfinite(value) and -1.0 <= value <= 1.0):
                raise StudyError(f"Each correlation must be between -1 and 1, got {value}.")
        if len(set(spec.correlations)) != len(spec.correlations):
            raise StudyError("A correlation is listed twice; list each once.")
        if not spec.archs:
            raise StudyError("Give at least one architecture to compare, e.g. hard,mmoe.")
        if "single" in spec.archs:
            raise StudyError("The architectures compared with single-task models must share (hard, soft, "
                             "cross_stitch or mmoe); single is the baseline itself.")
    return spec
