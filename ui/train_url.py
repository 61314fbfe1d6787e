"""The Train page's address: the settings it opens with, and the settings it shows, kept in the URL.

    from ui.train_url import sync_from_url, write_url
    problems = sync_from_url()   # first thing on the page: a link from outside replaces the settings
    write_url(config)            # last thing, and before any st.rerun(): the URL shows what the page shows

The whole configuration lives in the URL's query parameters (the keys of
``ExperimentConfig.to_flat``, plus ``run`` and ``label``, and a lesson's
``hide``, ``lock``, ``explain``, ``lesson`` and ``step``), so a teacher can
share a link that opens the same setup.

Why "before any st.rerun()": a URL that differs from the last one the page
wrote is taken as a link from outside. ``st.rerun()`` reruns with the
address of the run it cuts short, so a run that chose a new run and reran
without writing the URL would, on a click faster than the browser's address
update, be told "a link without a run" and forget the run it just started.
"""
from __future__ import annotations

import streamlit as st

from mtlcore import ConfigError, ExperimentConfig, dataset_info, list_datasets
from mtlcore.config import set_key
from mtlcore.runs import StoreError
from ui.session import get_store
from ui.train_settings import K, LESSON_KEYS, normalise, sanitise

NOT_CONFIG = ("run", "label", "key", *LESSON_KEYS)  # URL keys that are not configuration settings
PUSHED = f"{K}pushed"  # the control values written on the last run: a control that differs was moved
ss = st.session_state


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


def sync_from_url() -> list[str]:
    """Take the settings from the URL when it changed from outside; return problems with the link."""
    url = st.query_params.to_dict()
    force = ss.pop(f"{K}force_url", False)
    problems: list[str] = []
    if not url or (url == ss.get(f"{K}url_written") and not force):
        return problems  # first load, a shared link, a preset or the browser's back button pass here
    pairs = {k: v for k, v in url.items() if k not in NOT_CONFIG}
    run_id, config = url.get("run"), None
    if not run_id:  # a preset or a link without a run: the previous run's results are not this setup's
        ss.pop(f"{K}run", None)
    else:
        try:
            record = get_store().get_run(run_id)
            ss[f"{K}run"] = record.id
            config = record.config if not pairs else None
        except StoreError as error:
            problems.append(str(error))
    if config is None:
        config, problems_url = config_from_url(pairs)
        problems += problems_url
    ss[f"{K}config"] = sanitise(config, problems)  # a choice no select box offers: one sentence
    ss[f"{K}flags"] = flags = {k: url[k] for k in LESSON_KEYS if k in url}
    if flags:
        ss[f"{K}lesson_config"] = ss[f"{K}config"]  # what Reset returns to in a lesson
    else:
        ss.pop(f"{K}lesson_config", None)
    ss.pop(PUSHED, None)  # the link replaces the settings; the controls' old values are no changes
    if "label" in url:
        ss[f"{K}label"] = url["label"]
    return problems


def write_url(config: ExperimentConfig) -> None:
    """Put the configuration (and the page's run, label and lesson flags) in the URL, if it changed."""
    params = dict(config.to_flat())
    if ss.get(f"{K}run"):
        params["run"] = ss[f"{K}run"]
    if ss.get(f"{K}label"):
        params["label"] = ss[f"{K}label"]
    params.update(ss.get(f"{K}flags", {}))
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
    ss[f"{K}url_written"] = params
