"""Train: choose tasks, weights, architecture and regularisers; start a background run; watch it live.

The page never trains: Start hands the configuration to the runner, a worker
process trains it, and a fragment polls the store once a second while the
run is queued or running (and stops polling when it has ended).

The whole configuration lives in the URL's query parameters (the keys of
``ExperimentConfig.to_flat``, plus ``run`` and ``label``), so a teacher can
share a link that opens the same setup. Widgets are seeded from the URL when
it changes from outside (first load, a shared link, a preset), and from the
page's last configuration when coming back from another page.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import streamlit as st

from mtlcore import ARCHITECTURES, WEIGHTINGS, ConfigError, ExperimentConfig, dataset_info, list_datasets, validate
from mtlcore import charts
from mtlcore.config import OPTIMIZERS, REGRESSION_LOSSES, SCHEDULES, TRUNKS, DatasetConfig, set_key
from mtlcore.runs import NotOwnerError, QueueFullError, StoreError
from mtlcore.weighting import AggregatedGradient
from ui.safe_text import md, say, toast
from ui.session import get_runner, get_store, owner
from ui.train_live import live_panel, recent_runs
from ui.texts import ARCH_SECTION, HELP, SECTIONS, formula_note, loss_formula, option_label

K = "train_"  # prefix of this page's widget and state keys
NOT_CONFIG = ("run", "label", "key")  # URL keys that are not configuration settings
ACTIVE = ("queued", "running")
POLL_SECONDS = 1.0

LR_STEPS = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
BATCH_STEPS = (8, 16, 32, 64, 128, 256, 512)
WD_STEPS = (0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1)
L1_STEPS = (0.0, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
SOFT_STEPS = (0.0, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0)
# Widget ranges of dataset options that are not plain counts (the help text comes from the dataset).
OPTION_RANGES = {"correlation": (-1.0, 1.0, 0.05), "label_noise": (0.0, 0.9, 0.05), "image_size": (16, 64, 4),
                 "scale": (0.1, 10.0, 0.1)}

ss = st.session_state


# ----- keys ----------------------------------------------------------------------------

def task_key(dataset: str, task: str) -> str:
    return f"{K}task__{dataset}__{task}"


def weight_key(task: str) -> str:
    return f"{K}w__{task}"


def option_key(dataset: str, option: str) -> str:
    return f"{K}opt__{dataset}__{option}"


def fmt_number(value: float) -> str:
    return "off" if value == 0 else f"{value:g}"


def slider(where, label: str, lo: float, hi: float, key: str, step: float, help: str) -> None:
    """A slider whose range also holds the value it shows (a link may carry any value)."""
    value = ss.get(key, lo)
    kind = type(step)
    where.slider(label, kind(min(lo, value)), kind(max(hi, value)), step=step, key=key, help=help)


def with_value(steps: tuple, value: Any) -> list:
    """``steps`` plus ``value`` (from a link) if it is not one of them, in order."""
    return sorted(set(steps) | {value})


# ----- configuration <-> widgets ------------------------------------------------------------

def default_tasks(dataset: str) -> tuple[str, ...]:
    """The default config's tasks when the dataset has them all, else all of the dataset's tasks."""
    names = [t.name for t in dataset_info(dataset).tasks]
    default = ExperimentConfig().tasks
    return default if all(t in names for t in default) else tuple(names)


def for_dataset(config: ExperimentConfig, dataset: str) -> ExperimentConfig:
    """``config`` moved to ``dataset``: its tasks and options reset when the dataset changes."""
    if config.dataset.name == dataset:
        return config
    return dataclasses.replace(config, dataset=DatasetConfig(name=dataset), tasks=default_tasks(dataset),
                               loss=dataclasses.replace(config.loss, weights={}))


def normalise(config: ExperimentConfig) -> ExperimentConfig:
    """A link with no usable task for its dataset gets the dataset's default tasks."""
    names = {t.name for t in dataset_info(config.dataset.name).tasks}
    if not any(t in names for t in config.tasks):
        return dataclasses.replace(config, tasks=default_tasks(config.dataset.name))
    return config


def config_from_url(pairs: dict[str, str]) -> tuple[ExperimentConfig, list[str]]:
    """The config the URL describes, applying what can be applied; and one sentence per problem."""
    config, problems = ExperimentConfig(), []
    names = [d.name for d in list_datasets()]
    for key, value in pairs.items():
        try:
            candidate = set_key(config, key, value)
        except ConfigError as error:
            problems.append(str(error))
            continue
        if candidate.dataset.name not in names:
            problems.append(f"The link names an unknown dataset {candidate.dataset.name!r}; choose one of: {', '.join(names)}.")
            continue
        config = candidate
    info = dataset_info(config.dataset.name)
    unknown = [t for t in config.tasks if t not in {spec.name for spec in info.tasks}]
    if unknown:
        problems.append(f"Dataset {info.name!r} has no task {unknown[0]!r}; its tasks are: "
                        f"{', '.join(spec.name for spec in info.tasks)}.")
    return normalise(config), problems


def widget_values(config: ExperimentConfig) -> dict[str, Any]:
    """The session-state value of every widget that shows a setting of ``config``."""
    info = dataset_info(config.dataset.name)
    values: dict[str, Any] = {f"{K}dataset": info.name}
    for spec in info.tasks:
        values[task_key(info.name, spec.name)] = spec.name in config.tasks
        values[weight_key(spec.name)] = float(config.weight(spec.name))
    for name, default in info.options.items():
        value = config.dataset.options.get(name, default)
        try:
            value = bool(value) if isinstance(default, bool) else type(default)(value)
        except (TypeError, ValueError):
            value = default  # validate() names the bad value; the control shows the default
        values[option_key(info.name, name)] = value
    m, lo, o, t, r = config.model, config.loss, config.optim, config.train, config.reg
    values.update({
        f"{K}arch": m.arch, f"{K}trunk": m.trunk, f"{K}width": int(m.width), f"{K}experts": int(m.num_experts),
        f"{K}method": config.weighting.method,
        f"{K}regression": lo.regression, f"{K}smoothing": float(lo.label_smoothing), f"{K}focal": float(lo.focal_gamma),
        f"{K}optim": o.name, f"{K}lr": float(o.lr), f"{K}momentum": float(o.momentum), f"{K}schedule": o.schedule,
        f"{K}epochs": int(t.epochs), f"{K}batch": int(t.batch_size), f"{K}max_samples": int(t.max_samples),
        f"{K}label_fraction": float(t.label_fraction),
        f"{K}patience": int(t.patience), f"{K}diag": int(t.diagnostics_every),
        f"{K}wd": float(r.weight_decay), f"{K}l1": float(r.l1), f"{K}dropout": float(r.dropout),
        f"{K}bn": bool(r.batchnorm), f"{K}soft_lambda": float(r.soft_lambda),
        f"{K}seed": int(config.seed),
    })
    return values


# Select boxes: the setting they show and the choices they offer.
CHOICES = {
    f"{K}arch": ("model.arch", ARCHITECTURES.names()), f"{K}method": ("weighting.method", WEIGHTINGS.names()),
    f"{K}optim": ("optim.name", list(OPTIMIZERS)), f"{K}schedule": ("optim.schedule", list(SCHEDULES)),
    f"{K}trunk": ("model.trunk", list(TRUNKS)), f"{K}regression": ("loss.regression", list(REGRESSION_LOSSES)),
}


def sanitise(values: dict[str, Any], problems: list[str] | None = None) -> dict[str, Any]:
    """Replace choices a select box does not offer (from a hand-edited link) by the default, saying so."""
    default = widget_values(ExperimentConfig())
    clean = dict(values)
    for key, (setting, offered) in CHOICES.items():
        if key in clean and clean[key] not in offered:
            if problems is not None:
                problems.append(f"{setting}={clean[key]} is not available (choose one of: {', '.join(offered)}); "
                                f"{default[key]} is used instead.")
            clean[key] = default[key]
    return clean


# Why the controls are written on every run: the configuration (``train_config``, a key no widget owns,
# so Streamlit never drops it) is the one truth, and the controls only show it. A widget key that
# Streamlit dropped (its widget was not drawn on some run: another dataset, another page, a run cut
# short by a quick click) or that the browser mounted at the widget's default once showed every task
# unticked, weights 0.00 and n_samples=0 while the URL kept the defaults. Values written through
# session state before a widget is drawn are sent with the widget, so the browser always shows them.
PUSHED = f"{K}pushed"  # the control values written on the last run: a control that differs was moved


def show_config(config: ExperimentConfig, problems: list[str] | None = None) -> None:
    """Write ``config``'s value into every control's session state (before any control is drawn)."""
    values = sanitise(widget_values(config), problems)
    for key, value in values.items():
        ss[key] = value
    ss[PUSHED] = values


def absorb_changes(config: ExperimentConfig) -> ExperimentConfig:
    """``config`` with what the person changed in the controls since the last run.

    A control counts as changed only when its value differs from the one
    written on the last run; a dropped key changes nothing.
    """
    pushed = ss.get(PUSHED)
    if not pushed:
        return config
    changed = {key: ss[key] for key, value in pushed.items() if key in ss and ss[key] != value}
    if not changed:
        return config
    dataset = changed.pop(f"{K}dataset", None)
    config = config_from_widgets(config, {**pushed, **changed})
    if dataset is not None and dataset != config.dataset.name:
        config = normalise(for_dataset(config, dataset))
    return config


def config_from_widgets(base: ExperimentConfig, values: dict[str, Any] | None = None) -> ExperimentConfig:
    """The configuration the widgets show (or ``values``, keyed like them); settings without a widget keep ``base``'s."""
    values = ss if values is None else values
    info = dataset_info(values[f"{K}dataset"])

    def get(name: str, fallback: Any) -> Any:
        return values.get(f"{K}{name}", fallback)

    tasks = tuple(t.name for t in info.tasks if values.get(task_key(info.name, t.name)))
    weights = {t: float(values.get(weight_key(t), 1.0)) for t in tasks}
    weights = {t: w for t, w in weights.items() if w != 1.0}  # 1 is the default: keeps links short
    options = {}
    for name, default in info.options.items():
        value = values.get(option_key(info.name, name), default)
        if value != default:
            options[name] = value
    method = get("method", base.weighting.method)
    m, lo, o, t, r = base.model, base.loss, base.optim, base.train, base.reg
    return dataclasses.replace(
        base,
        dataset=dataclasses.replace(base.dataset, name=info.name, options=options),
        tasks=tasks,
        model=dataclasses.replace(m, arch=get("arch", m.arch), trunk=get("trunk", m.trunk),
                                  width=int(get("width", m.width)), num_experts=int(get("experts", m.num_experts))),
        loss=dataclasses.replace(lo, weights=weights, regression=get("regression", lo.regression),
                                 label_smoothing=float(get("smoothing", lo.label_smoothing)),
                                 focal_gamma=float(get("focal", lo.focal_gamma))),
        weighting=dataclasses.replace(base.weighting, method=method,
                                      options=base.weighting.options if method == base.weighting.method else {}),
        optim=dataclasses.replace(o, name=get("optim", o.name), lr=float(get("lr", o.lr)),
                                  momentum=float(get("momentum", o.momentum)), schedule=get("schedule", o.schedule)),
        train=dataclasses.replace(t, epochs=int(get("epochs", t.epochs)), batch_size=int(get("batch", t.batch_size)),
                                  max_samples=int(get("max_samples", t.max_samples)),
                                  label_fraction=float(get("label_fraction", t.label_fraction)),
                                  patience=int(get("patience", t.patience)), diagnostics_every=int(get("diag", t.diagnostics_every))),
        reg=dataclasses.replace(r, weight_decay=float(get("wd", r.weight_decay)), l1=float(get("l1", r.l1)),
                                dropout=float(get("dropout", r.dropout)), batchnorm=bool(get("bn", r.batchnorm)),
                                soft_lambda=float(get("soft_lambda", r.soft_lambda))),
        seed=int(get("seed", base.seed)),
    )


def auto_label(config: ExperimentConfig) -> str:
    """A readable default label, e.g. "hard · shape+color · color×2"."""
    parts = [config.model.arch, "+".join(config.tasks) or "no task"]
    if config.weighting.method != "static":
        parts.append(config.weighting.method)
    weights = [f"{t}×{w:g}" for t, w in config.loss.weights.items() if t in config.tasks]
    if weights:
        parts.append(" ".join(weights))
    return " · ".join(parts)


# ----- where the settings come from on this run ----------------------------------------------

def sync_from_url() -> list[str]:
    """Seed the widgets from the URL when it changed from outside; return problems with the link."""
    url = st.query_params.to_dict()
    written = ss.get(f"{K}url_written")
    force = ss.pop(f"{K}force_url", False)
    problems: list[str] = []
    if url and (url != written or force):  # first load, a shared link, a preset or the browser's back button
        pairs = {k: v for k, v in url.items() if k not in NOT_CONFIG}
        run_id = url.get("run")
        config = None
        if not run_id:  # a preset or a link without a run: the previous run's results are not this setup's
            ss.pop(f"{K}run", None)
        if run_id:
            try:
                record = get_store().get_run(run_id)
                ss[f"{K}run"] = record.id
                config = record.config if not pairs else None
            except StoreError as error:
                problems.append(str(error))
        if config is None:
            config, problems_url = config_from_url(pairs)
            problems += problems_url
        sanitise(widget_values(config), problems)  # a choice no select box offers: one sentence
        ss[f"{K}config"] = config
        ss.pop(PUSHED, None)  # the link replaces the settings; the controls' old values are no changes
        if "label" in url:
            ss[f"{K}label"] = url["label"]
    return problems


def write_url(config: ExperimentConfig) -> None:
    """Put the configuration (and the page's run and label) in the URL, if it changed."""
    params = dict(config.to_flat())
    if ss.get(f"{K}run"):
        params["run"] = ss[f"{K}run"]
    if ss.get(f"{K}label"):
        params["label"] = ss[f"{K}label"]
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
    ss[f"{K}url_written"] = params


def reopen(run_id: str) -> None:
    """Button callback: show an earlier run and load its settings into the controls."""
    try:
        record = get_store().get_run(run_id)
    except StoreError as error:
        ss[f"{K}notice"] = ("error", str(error))
        return
    ss[f"{K}run"] = record.id
    ss[f"{K}config"] = record.config
    ss[f"{K}label"] = record.label
    ss.pop(PUSHED, None)


def reset_settings() -> None:
    """Button callback: every control back to its default; the page's run is left as it is."""
    ss[f"{K}config"] = ExperimentConfig()
    ss[f"{K}label"] = ""
    ss.pop(PUSHED, None)


# ----- the settings column ---------------------------------------------------------------------

def dataset_section(base: ExperimentConfig) -> ExperimentConfig:
    """Dataset, its tasks, loss weights and dataset options. Returns the base moved to that dataset."""
    st.subheader("1 · Data and tasks")
    infos = list_datasets()
    missing = {d.name for d in infos if d.unavailable_reason() is not None}  # its files are not in the data folder
    dataset = st.selectbox("Dataset", [d.name for d in infos], key=f"{K}dataset", help=HELP["dataset"],
                           format_func=lambda name: f"{name} · ⚠️ files missing" if name in missing else name)
    info = dataset_info(dataset)
    st.caption(md(info.description))  # an imported dataset's description is user text
    base = normalise(for_dataset(base, dataset))

    st.markdown("**Tasks** — tick the ones the model learns together")
    columns = st.columns(min(2, len(info.tasks)))
    for i, spec in enumerate(info.tasks):
        if spec.kind == "classification":
            detail = f"Classification into {spec.num_classes} classes: {', '.join(spec.classes)}. Scored by accuracy."
        # Task and class names of an imported dataset are user text: shown as typed, never as Markdown.
        elif spec.kind == "reconstruction":
            detail = ("Auxiliary task: a small decoder on the shared trunk rebuilds the picture (an autoencoder). "
                      "It needs no labels, so it learns from every image even when few are labelled. "
                      "Scored by per-pixel MSE.")
        else:
            detail = f"Regression{f' in {spec.unit}' if spec.unit else ''}. Scored by mean absolute error."
        columns[i % len(columns)].checkbox(md(spec.name), key=task_key(dataset, spec.name),
                                           help=md(f"{spec.description} {detail}".strip()))

    chosen = [t.name for t in info.tasks if ss.get(task_key(dataset, t.name))]
    if chosen:
        st.markdown("**Loss weights** — how much each task counts")
        for task in chosen:
            slider(st, md(task), 0.0, 5.0, weight_key(task), 0.1, HELP["weight"])
    # Open when the options matter to the experiment (synthetic's correlation) or a link changed them.
    with st.expander("Dataset options", expanded=bool(base.dataset.options) or "correlation" in info.options):
        for name, default in info.options.items():
            key, help_text, label = option_key(dataset, name), info.option_help.get(name, ""), option_label(name)
            if isinstance(default, bool):
                st.checkbox(label, key=key, help=help_text)
            elif name in OPTION_RANGES:
                lo, hi, step = OPTION_RANGES[name]
                kind = type(default)
                slider(st, label, kind(lo), kind(hi), key, kind(step), help_text)
            elif isinstance(default, int):
                st.number_input(label, min_value=min(0, ss.get(key, 0)), step=100 if "samples" in name else 1,
                                key=key, help=help_text)
            else:
                st.number_input(label, step=0.1, key=key, help=help_text)
    return base


def model_section(base: ExperimentConfig, n_tasks: int) -> None:
    st.subheader("2 · Model")
    arch = st.selectbox("Architecture", ARCHITECTURES.names(), key=f"{K}arch", help=HELP["arch"],
                        format_func=lambda name: name.replace("_", "-"))
    st.caption(ARCHITECTURES.get(arch).summary + f" — *Learn: {SECTIONS[ARCH_SECTION.get(arch, 'sharing')].title}*")
    if arch == "single" and n_tasks != 1:
        st.info("The single architecture trains exactly one task (the baseline): tick one task, or choose another architecture.")
    if arch == "mmoe":
        slider(st, "Experts", 1, 8, f"{K}experts", 1, HELP["num_experts"])
    tasks = [t.name for t in dataset_info(ss[f"{K}dataset"]).tasks if ss.get(task_key(ss[f"{K}dataset"], t.name))]
    st.plotly_chart(charts.architecture_figure(arch, tasks or ["task"], num_experts=ss.get(f"{K}experts", 4)),
                    config={"staticPlot": True, "displayModeBar": False}, key=f"{K}arch_diagram")

    method = st.selectbox("Weighting method", WEIGHTINGS.names(), key=f"{K}method", help=HELP["weighting"])
    st.caption(WEIGHTINGS.get(method).summary)


def loss_formula_expander(config: ExperimentConfig) -> None:
    with st.expander("Loss formula"):
        kinds = {t.name: t.kind for t in dataset_info(config.dataset.name).tasks}
        st.latex(loss_formula(config.tasks, config.loss.weights, kinds, config.weighting.method,
                              config.model.arch, config.reg))
        method = config.weighting.method
        gradients = method in WEIGHTINGS and issubclass(WEIGHTINGS.get(method), AggregatedGradient)
        st.caption(formula_note(method, gradients) + " CE: cross-entropy; MSE: mean squared error.")


def training_section() -> None:
    st.subheader("3 · Training")
    c1, c2 = st.columns(2)
    optim = c1.selectbox("Optimiser", list(OPTIMIZERS), key=f"{K}optim", help=HELP["optimiser"])
    lr_value = ss.get(f"{K}lr", 3e-3)
    c2.select_slider("Learning rate", with_value(LR_STEPS, lr_value), key=f"{K}lr", format_func=lambda v: f"{v:g}",
                     help=HELP["lr"])
    slider(c1, "Epochs", 1, 50, f"{K}epochs", 1, HELP["epochs"])
    c2.select_slider("Batch size", with_value(BATCH_STEPS, ss.get(f"{K}batch", 64)), key=f"{K}batch",
                     help=HELP["batch_size"])
    c1.number_input("Seed", min_value=min(0, ss.get(f"{K}seed", 0)), step=1, key=f"{K}seed", help=HELP["seed"])
    slider(c2, "Labelled fraction", 0.05, 1.0, f"{K}label_fraction", 0.05, HELP["label_fraction"])
    c2.number_input("Gradient diagnostics every k steps", min_value=min(0, ss.get(f"{K}diag", 0)), step=5,
                    key=f"{K}diag", help=HELP["diagnostics"])
    with st.expander("More training settings"):
        a, b = st.columns(2)
        a.selectbox("Learning-rate schedule", list(SCHEDULES), key=f"{K}schedule", help=HELP["schedule"])
        if optim in ("sgd", "rmsprop"):
            slider(b, "Momentum", 0.0, 0.99, f"{K}momentum", 0.01, HELP["momentum"])
        a.number_input("Training examples (0 = all)", min_value=min(0, ss.get(f"{K}max_samples", 0)), step=100,
                       key=f"{K}max_samples", help=HELP["max_samples"])
        b.selectbox("Regression loss", list(REGRESSION_LOSSES), key=f"{K}regression", help=HELP["regression"])
        slider(a, "Label smoothing", 0.0, 0.5, f"{K}smoothing", 0.05, HELP["label_smoothing"])
        slider(b, "Focal loss γ", 0.0, 5.0, f"{K}focal", 0.5, HELP["focal_gamma"])
        a.selectbox("Trunk", list(TRUNKS), key=f"{K}trunk", help=HELP["trunk"])
        b.select_slider("Width", with_value((8, 16, 32, 64, 128), ss.get(f"{K}width", 32)), key=f"{K}width",
                        help=HELP["width"])


def regularisation_section(arch: str) -> None:
    st.subheader("4 · Regularisation")
    c1, c2 = st.columns(2)
    c1.select_slider("Weight decay", with_value(WD_STEPS, ss.get(f"{K}wd", 0.0)), key=f"{K}wd",
                     format_func=fmt_number, help=HELP["weight_decay"])
    c2.select_slider("L1 on shared weights", with_value(L1_STEPS, ss.get(f"{K}l1", 0.0)), key=f"{K}l1",
                     format_func=fmt_number, help=HELP["l1"])
    slider(c1, "Dropout", 0.0, 0.9, f"{K}dropout", 0.05, HELP["dropout"])
    c2.number_input("Early-stopping patience (epochs, 0 = off)", min_value=min(0, ss.get(f"{K}patience", 0)),
                    step=1, key=f"{K}patience", help=HELP["patience"])
    c1.toggle("BatchNorm", key=f"{K}bn", help=HELP["batchnorm"])
    if arch == "soft":
        c2.select_slider("Soft-sharing λ", with_value(SOFT_STEPS, ss.get(f"{K}soft_lambda", 0.01)),
                         key=f"{K}soft_lambda", format_func=fmt_number, help=HELP["soft_lambda"])


# ----- the run column (the live panel is ui/train_live.py) ----------------------------------------------------------------------------

def problem_of(config: ExperimentConfig) -> str | None:
    """Why ``config`` cannot be trained, in one sentence; None when it can."""
    missing = dataset_info(config.dataset.name).unavailable_reason()
    if missing:  # the worker would fail with a traceback in its log; say here what to do instead
        return missing
    try:
        validate(config)
    except (ConfigError, ValueError) as error:
        return str(error)
    return None


def start(config: ExperimentConfig, label: str) -> None:
    try:
        run_id = get_runner().submit(config, label=label, owner=owner())
    except QueueFullError as error:
        ss[f"{K}notice"] = ("error", str(error))
        return
    except (ConfigError, StoreError, ValueError) as error:
        ss[f"{K}notice"] = ("error", str(error))
        return
    ss[f"{K}run"] = run_id
    ss[f"{K}notice"] = ("success", f"Queued “{label}”; a background worker trains it and the charts below update live.")


def stop(run_id: str) -> None:
    try:
        message = get_runner().cancel(run_id, by=owner())
    except (NotOwnerError, StoreError) as error:
        ss[f"{K}notice"] = ("error", str(error))
        return
    ss[f"{K}notice"] = ("info", message)


def delete(run_id: str) -> None:
    """Button callback: delete an ended run (its owner or the teacher); the page then shows no run."""
    try:
        message = get_runner().delete(run_id, by=owner())
    except (NotOwnerError, StoreError) as error:
        ss[f"{K}notice"] = ("error", str(error))
        return
    ss.pop(f"{K}run", None)
    ss[f"{K}notice"] = ("info", message)


# ----- the page ---------------------------------------------------------------------------------

st.title("🏋️ Train")
ss[f"{K}config"] = absorb_changes(ss.get(f"{K}config") or ExperimentConfig())
link_problems = sync_from_url()
for problem in link_problems:
    say("warning", f"Part of the link was not used: {problem}")

base = ss[f"{K}config"]
show_config(base)
settings, run_column = st.columns([9, 10], gap="large")
with settings:
    base = dataset_section(base)
    n_tasks = sum(bool(ss.get(task_key(base.dataset.name, t.name))) for t in dataset_info(base.dataset.name).tasks)
    with st.container(border=True):
        model_section(base, n_tasks)
    with st.container(border=True):
        training_section()
    with st.container(border=True):
        regularisation_section(ss[f"{K}arch"])
    config = config_from_widgets(base)
    ss[f"{K}config"] = config
    st.button("Reset all settings", key=f"{K}reset", on_click=reset_settings,
              help="Every control back to its default value (your runs are kept).")

problem = problem_of(config)
with run_column:
    st.text_input("Run label", key=f"{K}label", placeholder=auto_label(config), help=HELP["label"], max_chars=80)
    current = ss.get(f"{K}run")
    record = None
    if current:
        try:
            record = get_store().get_run(current)
        except StoreError:
            ss.pop(f"{K}run", None)
    b1, b2 = st.columns(2)
    start_clicked = b1.button("▶ Start", type="primary", key=f"{K}start", disabled=problem is not None,
                              help=HELP["start"], width="stretch")
    me = owner()
    allowed = record is not None and me.may_change(record.owner, record.owner_key)
    can_stop = record is not None and record.is_active and allowed
    stop_clicked = b2.button("■ Stop", key=f"{K}stop", disabled=not can_stop, help=HELP["stop"], width="stretch")
    if problem:
        say("error", problem)
    if record is not None and not allowed:
        say("caption", me.refusal("this run", record.owner, record.owner_key, "stop" if record.is_active else "delete"))
    if record is not None and allowed and not record.is_active:
        with st.popover("🗑 Delete this run"):
            st.caption("Its metrics and checkpoint are deleted for good; Compare and Predict no longer list it.")
            st.button(f"Delete {record.id}", key=f"{K}delete", type="primary", on_click=delete, args=(record.id,))
    if start_clicked and problem is None:
        start(config, (ss.get(f"{K}label") or "").strip() or auto_label(config))
        st.rerun()  # redraw with the new run: its panel, the Stop button, the URL
    if stop_clicked and can_stop:
        stop(record.id)
        st.rerun()
    if me.name == "anonymous":
        st.caption("Tip: type your name in the sidebar, so that others can tell your runs apart.")
    notice = ss.pop(f"{K}notice", None)
    if notice and notice[0] == "error":
        say("error", notice[1])
    elif notice:
        toast(notice[1], icon="✅" if notice[0] == "success" else "ℹ️")
    loss_formula_expander(config)

    write_url(config)
    run_id = ss.get(f"{K}run")
    if run_id:
        try:
            active = get_store().get_run(run_id).is_active
        except StoreError:
            active = False
        panel = st.fragment(live_panel, run_every=POLL_SECONDS if active else None)
        with st.container(border=True):
            panel(run_id, active)
    else:
        st.info("Choose tasks and settings on the left, then press **Start**. The run trains in the background; "
                "its curves appear here as it learns.")
    recent_runs(reopen)
