"""The Train page's settings as one table: a row per control.

    from ui.train_settings import SETTINGS, rows_for, widget_values, absorb, lesson_link

Each row (``Setting``) says which flat configuration key it shows (the key of
the URL and of ``--set``, e.g. ``optim.lr``), its widget, its range or its
choices (asked of the registries, never a hand-kept list), its label and help
text, the tab it sits in, and when it is shown: a predicate over the
configuration that asks the architecture or the optimiser what it reads
(``uses``), never its name. The same rows turn a configuration into widget
values (``widget_values``), widget values back into a configuration
(``absorb``), and a configuration plus a lesson's hidden and locked controls
into a link (``lesson_link``). A dataset's tasks, their loss weights and its
options are rows generated from the dataset itself (``rows_for``).

A new setting is one row in ``SETTINGS`` (and its help text in ui/texts.py).
This module draws nothing: ``ui/train_form.py`` draws the rows with Streamlit.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Iterable
from urllib.parse import urlencode

from mtlcore import ARCHITECTURES, WEIGHTINGS, ExperimentConfig, dataset_info, list_datasets
from mtlcore.config import DatasetConfig
from mtlcore.losses import REGRESSION_LOSS_NAMES
from mtlcore.models.trunks import TRUNKS
from mtlcore.optim import OPTIMIZERS, SCHEDULES
from ui.safe_text import md
from ui.texts import ARCH_SECTION, HELP, SECTIONS, option_label

K = "train_"  # the Train page's prefix of widget and state keys
TABS = {"data": "Data and tasks", "model": "Model", "training": "Training", "regularisation": "Regularisation"}
LESSON_KEYS = ("hide", "lock", "explain", "lesson", "step")  # URL keys of a lesson link that are not settings

FLOW = -1  # a Setting.column: left, right, left... among the rows of its group that are shown
TASKS_HEADING = "**Tasks** — tick the ones the model learns together"
WEIGHTS_HEADING = "**Loss weights** — how much each task counts"

LR_STEPS = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
BATCH_STEPS = (8, 16, 32, 64, 128, 256, 512)
WIDTH_STEPS = (8, 16, 32, 64, 128)
WD_STEPS = (0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1)
L1_STEPS = (0.0, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
SOFT_STEPS = (0.0, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0)
# Widget ranges of dataset options that are not plain counts (their help text comes from the dataset).
OPTION_RANGES = {"correlation": (-1.0, 1.0, 0.05), "label_noise": (0.0, 0.9, 0.05), "image_size": (16, 64, 4),
                 "scale": (0.1, 10.0, 0.1)}


def always(config: ExperimentConfig) -> bool:
    return True


def arch_uses(key: str) -> Callable[[ExperimentConfig], bool]:
    """Shown when the chosen architecture reads ``key`` (its class lists it in ``uses``)."""
    return lambda config: config.model.arch in ARCHITECTURES and key in ARCHITECTURES.get(config.model.arch).uses


def takes_momentum(config: ExperimentConfig) -> bool:
    """Shown when the chosen optimiser takes ``optim.momentum`` (its registry entry says)."""
    return config.optim.name in OPTIMIZERS and OPTIMIZERS.get(config.optim.name).takes_momentum


def off_or_number(value: float) -> str:
    return "off" if value == 0 else f"{value:g}"


def number(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class Setting:
    """One control of the Train page and the configuration key it shows."""

    key: str  # the flat config key (URL, --set); "tasks.<task>" is the tick box of one task
    widget: str  # slider | steps (a slider over listed steps, e.g. a log scale) | select | number | checkbox | toggle
    label: str
    help: str
    tab: str  # a key of TABS
    name: str = ""  # the widget key after the page's prefix (tests and links rely on it); default: the key
    lo: float | None = None  # slider and number ranges; a number box takes any value >= lo
    hi: float | None = None
    step: float | None = None
    steps: tuple = ()  # the steps of a "steps" slider
    choices: Callable[[], list] | None = None  # a select box's choices, asked of a registry on each run
    fmt: Callable[[Any], str] | None = None  # how a choice or step is shown
    shown: Callable[[ExperimentConfig], bool] = always  # when the control is drawn (and its value used)
    more: bool = False  # inside the tab's "More settings" expander
    group: str = ""  # a heading drawn above the first row of its group (the tasks, the loss weights)
    column: int = 0  # left (0) or right (1) column of its tab; FLOW: the shown rows of its group alternate
    note: Callable[[ExperimentConfig], str] | None = None  # an explanation under the control (explain=0 hides it)
    kind: type = float  # the value's Python type
    read: Callable[[ExperimentConfig], Any] | None = None  # default: the attribute at ``key``
    write: Callable[[ExperimentConfig, Any], ExperimentConfig] | None = None  # default: replace that attribute

    @property
    def widget_key(self) -> str:
        return K + (self.name or self.key)

    def value(self, config: ExperimentConfig) -> Any:
        """The value the control shows for ``config``."""
        value = self.read(config) if self.read else _get_path(config, self.key)
        try:
            return bool(value) if self.kind is bool else self.kind(value)
        except (TypeError, ValueError):
            return value  # validate() names the bad value; the page shows it as it is

    def apply(self, config: ExperimentConfig, value: Any) -> ExperimentConfig:
        """``config`` with this control's setting at ``value``."""
        value = bool(value) if self.kind is bool else self.kind(value)
        return self.write(config, value) if self.write else _set_path(config, self.key, value)

    def offered(self) -> list:
        """The choices of a select box or a steps slider (steps: plus the value shown, see widget_values)."""
        return list(self.choices()) if self.choices else list(self.steps)


def _get_path(config: Any, key: str) -> Any:
    for part in key.split("."):
        config = getattr(config, part)
    return config


def _set_path(config: Any, key: str, value: Any) -> Any:
    head, _, rest = key.partition(".")
    inner = _set_path(getattr(config, head), rest, value) if rest else value
    return dataclasses.replace(config, **{head: inner})


# ----- the dataset and the rows it generates ------------------------------------------------------

def default_tasks(dataset: str) -> tuple[str, ...]:
    """The default config's tasks when the dataset has them all, else all of the dataset's tasks."""
    names = [t.name for t in dataset_info(dataset).tasks]
    default = ExperimentConfig().tasks
    return default if all(t in names for t in default) else tuple(names)


def normalise(config: ExperimentConfig) -> ExperimentConfig:
    """A link with no usable task for its dataset gets the dataset's default tasks."""
    names = {t.name for t in dataset_info(config.dataset.name).tasks}
    if not any(t in names for t in config.tasks):
        return dataclasses.replace(config, tasks=default_tasks(config.dataset.name))
    return config


def for_dataset(config: ExperimentConfig, dataset: str) -> ExperimentConfig:
    """``config`` moved to ``dataset``: its tasks, options and weights reset when the dataset changes."""
    if config.dataset.name == dataset:
        return config
    moved = dataclasses.replace(config, dataset=DatasetConfig(name=dataset), tasks=default_tasks(dataset),
                                loss=dataclasses.replace(config.loss, weights={}))
    return normalise(moved)


def dataset_mark(name: str) -> str:
    """A dataset's name, marked when its files are not in the data folder."""
    return f"{name} · ⚠️ files missing" if dataset_info(name).unavailable_reason() is not None else name


def task_help(spec) -> str:
    if spec.kind == "classification":
        detail = f"Classification into {spec.num_classes} classes: {', '.join(spec.classes)}. Scored by accuracy."
    elif spec.kind == "reconstruction":
        detail = ("Auxiliary task: a small decoder on the shared trunk rebuilds the picture (an autoencoder). "
                  "It needs no labels, so it learns from every image even when few are labelled. "
                  "Scored by per-pixel MSE.")
    else:
        detail = f"Regression{f' in {spec.unit}' if spec.unit else ''}. Scored by mean absolute error."
    # Task and class names of an imported dataset are user text: shown as typed, never as Markdown.
    return md(f"{spec.description} {detail}".strip())


def _tick(task: str, order: list[str]):
    def write(config: ExperimentConfig, ticked: bool) -> ExperimentConfig:
        chosen = set(config.tasks) - {task} | ({task} if ticked else set())
        return dataclasses.replace(config, tasks=tuple(t for t in order if t in chosen))
    return write


def _weight(task: str):
    def write(config: ExperimentConfig, value: float) -> ExperimentConfig:
        weights = {t: w for t, w in config.loss.weights.items() if t != task}
        if value != 1.0:  # 1 is the default: keeps links short
            weights[task] = value
        return dataclasses.replace(config, loss=dataclasses.replace(config.loss, weights=weights))
    return write


def _option_value(config: ExperimentConfig, name: str, default: Any) -> Any:
    value = config.dataset.options.get(name, default)
    try:
        return bool(value) if isinstance(default, bool) else type(default)(value)
    except (TypeError, ValueError):
        return default  # validate() names the bad value; the control shows the default


def _option(name: str, default: Any):
    def write(config: ExperimentConfig, value: Any) -> ExperimentConfig:
        options = {k: v for k, v in config.dataset.options.items() if k != name}
        if value != default:  # a default option stays out of the link
            options[name] = value
        return dataclasses.replace(config, dataset=dataclasses.replace(config.dataset, options=options))
    return write


def task_rows(dataset: str) -> list[Setting]:
    """A tick box per task of ``dataset`` and a loss-weight slider per ticked task."""
    specs = dataset_info(dataset).tasks
    order = [t.name for t in specs]
    ticks = [Setting(f"tasks.{t.name}", "checkbox", md(t.name), task_help(t), "data", name=f"task__{dataset}__{t.name}",
                     kind=bool, group=TASKS_HEADING, read=lambda c, t=t.name: t in c.tasks, write=_tick(t.name, order), column=FLOW)
             for t in specs]
    weights = [Setting(f"loss.weights.{t}", "slider", md(t), HELP["weight"], "data", name=f"w__{t}", lo=0.0, hi=5.0,
                       step=0.1, read=lambda c, t=t: c.weight(t), write=_weight(t), group=WEIGHTS_HEADING, column=FLOW,
                       shown=lambda c, t=t: t in c.tasks)
               for t in order]
    return ticks + weights


def option_rows(dataset: str) -> list[Setting]:
    """A control per option of ``dataset`` (in its "Dataset options" expander), ranged by kind."""
    info = dataset_info(dataset)
    rows = []
    for name, default in info.options.items():
        kind = bool if isinstance(default, bool) else type(default)
        common = dict(label=option_label(name), help=info.option_help.get(name, ""), tab="data",
                      name=f"opt__{dataset}__{name}", kind=kind, more=True, write=_option(name, default),
                      read=lambda c, name=name, default=default: _option_value(c, name, default))
        if kind is bool:
            rows.append(Setting(f"dataset.{name}", "checkbox", **common))
        elif name in OPTION_RANGES:
            lo, hi, step = OPTION_RANGES[name]
            rows.append(Setting(f"dataset.{name}", "slider", lo=kind(lo), hi=kind(hi), step=kind(step), **common))
        elif kind is int:
            rows.append(Setting(f"dataset.{name}", "number", lo=0, step=100 if "samples" in name else 1, **common))
        else:
            rows.append(Setting(f"dataset.{name}", "number", step=0.1, **common))
    return rows


def _method(config: ExperimentConfig, method: str) -> ExperimentConfig:
    """Another weighting method drops the options of the previous one."""
    options = config.weighting.options if method == config.weighting.method else {}
    return dataclasses.replace(config, weighting=dataclasses.replace(config.weighting, method=method, options=options))


def _arch_note(config: ExperimentConfig) -> str:
    arch = config.model.arch
    return ARCHITECTURES.get(arch).summary + f" — *Learn: {SECTIONS[ARCH_SECTION.get(arch, 'sharing')].title}*"


# ----- the table ---------------------------------------------------------------------------------

DATASET = Setting("dataset.name", "select", "Dataset", HELP["dataset"], "data", name="dataset", kind=str,
                  choices=lambda: [d.name for d in list_datasets()], fmt=dataset_mark,
                  write=for_dataset, note=lambda c: md(dataset_info(c.dataset.name).description))

SETTINGS: tuple[Setting, ...] = (
    DATASET,
    # model
    Setting("model.arch", "select", "Architecture", HELP["arch"], "model", name="arch", kind=str,
            choices=ARCHITECTURES.names, fmt=lambda name: name.replace("_", "-"), note=_arch_note),
    Setting("model.num_experts", "slider", "Experts", HELP["num_experts"], "model", name="experts", kind=int,
            lo=1, hi=8, step=1, shown=arch_uses("model.num_experts")),
    Setting("model.expert_hidden", "number", "Units per expert (0 = as the trunk)", "Hidden units of each MMoE "
            "expert's layer; Ma et al. (KDD 2018) match the budget with 8 small experts against one wide shared "
            "bottom.", "model", kind=int, lo=0, step=8, shown=arch_uses("model.expert_hidden")),
    Setting("weighting.method", "select", "Weighting method", HELP["weighting"], "model", name="method", kind=str,
            choices=WEIGHTINGS.names, write=_method, note=lambda c: WEIGHTINGS.get(c.weighting.method).summary),
    # training
    Setting("optim.name", "select", "Optimiser", HELP["optimiser"], "training", name="optim", kind=str,
            choices=OPTIMIZERS.names),
    Setting("optim.lr", "steps", "Learning rate", HELP["lr"], "training", name="lr", steps=LR_STEPS, fmt=number,
            column=1),
    Setting("train.epochs", "slider", "Epochs", HELP["epochs"], "training", name="epochs", kind=int, lo=1, hi=50,
            step=1),
    Setting("train.batch_size", "steps", "Batch size", HELP["batch_size"], "training", name="batch", kind=int,
            steps=BATCH_STEPS, column=1),
    Setting("seed", "number", "Seed", HELP["seed"], "training", kind=int, lo=0, step=1),
    Setting("train.label_fraction", "slider", "Labelled fraction", HELP["label_fraction"], "training",
            name="label_fraction", lo=0.05, hi=1.0, step=0.05, column=1),
    Setting("train.diagnostics_every", "number", "Gradient diagnostics every k steps", HELP["diagnostics"],
            "training", name="diag", kind=int, lo=0, step=5, column=1),
    Setting("optim.schedule", "select", "Learning-rate schedule", HELP["schedule"], "training", name="schedule",
            kind=str, choices=SCHEDULES.names, more=True),
    Setting("optim.momentum", "slider", "Momentum", HELP["momentum"], "training", name="momentum", lo=0.0, hi=0.99,
            step=0.01, more=True, column=1, shown=takes_momentum),
    Setting("train.max_samples", "number", "Training examples (0 = all)", HELP["max_samples"], "training",
            name="max_samples", kind=int, lo=0, step=100, more=True),
    Setting("loss.regression", "select", "Regression loss", HELP["regression"], "training", name="regression",
            kind=str, choices=lambda: list(REGRESSION_LOSS_NAMES), more=True, column=1),
    Setting("loss.label_smoothing", "slider", "Label smoothing", HELP["label_smoothing"], "training",
            name="smoothing", lo=0.0, hi=0.5, step=0.05, more=True),
    Setting("loss.focal_gamma", "slider", "Focal loss γ", HELP["focal_gamma"], "training", name="focal", lo=0.0,
            hi=5.0, step=0.5, more=True, column=1),
    Setting("model.trunk", "select", "Trunk", HELP["trunk"], "training", name="trunk", kind=str,
            choices=TRUNKS.names, more=True),
    Setting("model.width", "steps", "Width", HELP["width"], "training", name="width", kind=int, steps=WIDTH_STEPS,
            more=True, column=1),
    # regularisation
    Setting("reg.weight_decay", "steps", "Weight decay", HELP["weight_decay"], "regularisation", name="wd",
            steps=WD_STEPS, fmt=off_or_number),
    Setting("reg.l1", "steps", "L1 on shared weights", HELP["l1"], "regularisation", name="l1", steps=L1_STEPS,
            fmt=off_or_number, column=1),
    Setting("reg.dropout", "slider", "Dropout", HELP["dropout"], "regularisation", name="dropout", lo=0.0, hi=0.9,
            step=0.05),
    Setting("train.patience", "number", "Early-stopping patience (epochs, 0 = off)", HELP["patience"],
            "regularisation", name="patience", kind=int, lo=0, step=1, column=1),
    Setting("reg.batchnorm", "toggle", "BatchNorm", HELP["batchnorm"], "regularisation", name="bn", kind=bool),
    Setting("reg.soft_lambda", "steps", "Soft-sharing λ", HELP["soft_lambda"], "regularisation", name="soft_lambda",
            steps=SOFT_STEPS, fmt=off_or_number, column=1, shown=arch_uses("reg.soft_lambda")),
)


def rows_for(config: ExperimentConfig) -> list[Setting]:
    """Every row for ``config``'s dataset: the table plus its task, weight and option rows, in drawing order."""
    dataset = config.dataset.name
    return [DATASET, *task_rows(dataset), *option_rows(dataset), *SETTINGS[1:]]


# ----- configuration <-> widget values --------------------------------------------------------------

def sanitise(config: ExperimentConfig, problems: list[str] | None = None) -> ExperimentConfig:
    """``config`` with every choice that no select box offers (a hand-edited link) replaced by the default's.

    One sentence per replaced choice goes to ``problems``.
    """
    default = ExperimentConfig()
    for row in rows_for(config):
        value = row.value(config)
        if row.widget == "select" and value not in row.offered():
            fallback = row.value(default)
            if problems is not None:
                problems.append(f"{row.key}={value} is not available (choose one of: "
                                f"{', '.join(map(str, row.offered()))}); {fallback} is used instead.")
            config = row.apply(config, fallback)
    return config


def widget_values(config: ExperimentConfig) -> dict[str, Any]:
    """The value of every control that shows a setting of ``config`` (sanitised first), by widget key."""
    return {row.widget_key: row.value(config) for row in rows_for(config)}


def absorb(config: ExperimentConfig, changed: dict[str, Any], frozen: Iterable[str] = ()) -> ExperimentConfig:
    """``config`` with the controls in ``changed`` (by widget key) applied; ``frozen`` keys (locked) are ignored.

    A new dataset is applied last: its tick boxes and options are other rows.
    """
    frozen = set(frozen)
    rows = {row.widget_key: row for row in rows_for(config)}
    dataset = changed.get(DATASET.widget_key)
    for key, value in changed.items():
        row = rows.get(key)
        if row is None or row is DATASET or matches(row.key, frozen) or not row.shown(config):
            continue
        config = row.apply(config, value)
    if dataset is not None and not matches(DATASET.key, frozen):
        config = DATASET.apply(config, dataset)
    return config


# ----- lessons: hidden and locked controls, links ------------------------------------------------------

def matches(key: str, names: Iterable[str]) -> bool:
    """Whether ``key`` is one of ``names`` or under one of them ("loss.weights" covers "loss.weights.shape")."""
    return any(key == name or key.startswith(name + ".") for name in names)


def parse_list(text: str | None) -> tuple[str, ...]:
    """ "optim.lr, tasks" -> ("optim.lr", "tasks")."""
    return tuple(item.strip() for item in (text or "").split(",") if item.strip())


def lesson_params(config: ExperimentConfig, hidden: Iterable[str] = (), locked: Iterable[str] = (),
                  explain: bool = True, **extra: str) -> dict[str, str]:
    """The query parameters of a link that opens Train on ``config`` with those controls hidden or locked.

    ``hidden`` and ``locked`` hold flat keys (``optim.lr``), task keys
    (``tasks.shape``) or prefixes (``loss.weights``, ``reg``); ``extra`` adds
    keys such as ``lesson`` and ``step``.
    """
    params = dict(config.to_flat())
    if hidden:
        params["hide"] = ",".join(hidden)
    if locked:
        params["lock"] = ",".join(locked)
    if not explain:
        params["explain"] = "0"
    params.update({k: str(v) for k, v in extra.items()})
    return params


def lesson_link(config: ExperimentConfig, hidden: Iterable[str] = (), locked: Iterable[str] = (),
                explain: bool = True, page: str = "train", **extra: str) -> str:
    """A relative link (``train?...``) to the Train page set up as ``lesson_params`` says."""
    return f"{page}?{urlencode(lesson_params(config, hidden, locked, explain, **extra))}"
