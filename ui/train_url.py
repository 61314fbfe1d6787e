"""The Train page's address: the settings it opens with, and the settings it shows, kept in the URL.

    from ui.train_url import chosen_here, sync_from_url, write_url
    problems = sync_from_url()   # first thing on the page: a link from outside replaces the settings
    write_url(config)            # last thing: the URL shows what the page shows
    chosen_here()                # in Start, Stop, Delete, Reset, reopen, fork: the page changed its run or settings

The whole configuration lives in the URL's query parameters (the keys of
``ExperimentConfig.to_flat``, plus ``run`` and ``label``, and a lesson's
``hide``, ``lock``, ``explain``, ``lesson`` and ``step``), so a teacher can
share a link that opens the same setup.

Why ``chosen_here``: a URL that differs from the last one the page wrote is
taken as a link from outside. A click can come before the browser has taken
the page's last address (a quick click on a busy machine), and it carries
the old one; so does the ``st.rerun()`` after Start. Without the mark, the
run after a Start would be told "a link without a run" and forget the run it
had just started; after Reset or reopening a run, the old link's settings
would come back.
"""
from __future__ import annotations

import streamlit as st

from mtlcore import ConfigError, ExperimentConfig, dataset_info, list_datasets
from mtlcore.config import set_key
from mtlcore.runs import StoreError
from ui.session import get_store
from ui.train_settings import K, LESSON_KEYS, normalise, sanitise

NOT_CONFIG = ("run", "label", "key", *LESSON_KEYS)  # URL keys that are not configuration settings
CHOSEN_HERE = f"{K}chosen_here"  # the page itself changed its run or settings: the next address may be old
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


def chosen_here() -> None:
    """Say that the page itself just changed its run or settings: the next run keeps them, whatever the address."""
    ss[CHOSEN_HERE] = True


def sync_from_url() -> list[str]:
    """Take the settings from the URL when it changed from outside; return problems with the link."""
    url = st.query_params.to_dict()
    force = ss.pop(f"{K}force_url", False)
    chosen = ss.pop(CHOSEN_HERE, False)
    problems: list[str] = []
    if not url or (not force and (chosen or url == ss.get(f"{K}url_written"))):
        return problems  # no link, or the address the page wrote, or one older than what the page chose
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
