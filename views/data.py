"""Data: every dataset and whether it can be used now, downloads, and your own data.

- Built-in datasets are always there. Datasets read with torchvision
  (MultiMNIST, MultiFashion, CIFAR-10, CelebA) need their files in the data
  folder: a missing one shows the one sentence saying which files to place
  where, and a Download button that fills a progress bar.
- Your own data: upload a .zip of images with a ``labels.csv`` (one column
  names each image's file, every other column is a task) or a plain CSV
  (numeric feature columns and the target columns you choose). The importer
  proposes each column's kind -- numbers are regression, anything else
  classification -- and you can change it before importing. The import runs
  in a background thread (``ImportJob``): a progress bar and a Cancel button
  replace the form until it ends, and the page stays responsive.

Thin page: reading, checking and importing live in ``mtlcore.data``.
"""
from __future__ import annotations

import functools

import pandas as pd
import streamlit as st

from mtlcore.data import list_datasets, own
from mtlcore.data.download import DownloadError
from mtlcore.data.folders import data_home
from mtlcore.data.import_job import ImportJob
from mtlcore.data.own_import import (
    IGNORE, MAX_ARCHIVE_BYTES, DataImportError, dataset_owner, import_images, import_table, preview,
)
from mtlcore.runs.datasets import delete_dataset
from ui.page import header, notice
from ui.safe_text import md, say
from ui.session import owner
from ui.machine_report import machine_report_expander

SOURCES = {"embedded": "built in", "torchvision": "torchvision files", "imported": "your data"}
# Roles a table's column can take on import; the targets become the tasks.
ROLES = ("feature", "classification target", "regression target", IGNORE)
IMAGE_KINDS = ("classification", "regression", IGNORE)
JOB = "data_import_job"  # the session's running import


def task_summary(info) -> str:
    names = [t.name for t in info.tasks]
    return ", ".join(names) if len(names) <= 6 else f"{', '.join(names[:5])}, ... ({len(names)} in all)"


def overview(infos) -> None:
    """One row per dataset: where it comes from, its tasks, ready or not."""
    rows = [{
        "dataset": info.name,
        "from": SOURCES.get(info.source, info.source),
        "inputs": info.input_kind,
        "tasks": task_summary(info),
        "ready": "✅ ready" if info.unavailable_reason() is None else "⚠️ files missing",
    } for info in infos]
    st.dataframe(pd.DataFrame(rows), hide_index=True)


def download_section(infos) -> None:
    """A download button and the manual way for each dataset whose files are missing."""
    missing = [info for info in infos if info.unavailable_reason() is not None and info.source == "torchvision"]
    if not missing:
        return
    st.subheader("Get the missing datasets")
    for info in missing:
        with st.container(border=True):
            st.markdown(f"**{info.name}** -- {info.description}")
            st.caption(info.unavailable_reason())
            if info.download is None:
                continue
            if st.button(f"Download {info.name}", key=f"data_download_{info.name}"):
                bar = st.progress(0.0, text=f"Starting the download of {info.name}...")
                try:
                    info.download(progress=lambda fraction, message: bar.progress(min(max(fraction, 0.0), 1.0),
                                                                                  text=message))
                except DownloadError as error:
                    bar.empty()
                    say("error", str(error))
                else:
                    st.session_state["data_flash"] = f"{info.name} is ready; choose it on the Train page."
                    st.rerun()


def kinds_editor(columns, options, suggest, key: str) -> dict[str, str]:
    """A table of the upload's columns with an editable kind per column."""
    frame = pd.DataFrame([{
        "column": c.name,
        "example": c.example,
        "different values": c.distinct,
        "kind": suggest(c),
    } for c in columns])
    edited = st.data_editor(
        frame, key=key, hide_index=True,
        disabled=["column", "example", "different values"],
        column_config={"kind": st.column_config.SelectboxColumn("kind", options=list(options), required=True)},
    )
    return dict(zip(edited["column"], edited["kind"]))


@st.fragment(run_every=0.5)
def import_progress() -> None:
    """The running import's progress and a Cancel button, redrawn twice a second until it ends."""
    job = st.session_state.get(JOB)
    if job is None:
        return
    if job.done:
        del st.session_state[JOB]
        if job.error:
            st.session_state["data_import_error"] = job.error
        else:
            st.session_state["data_flash"] = (f"Imported {job.result.name!r}: it is listed above and can be chosen "
                                              "on the Train page.")
        st.rerun()  # the whole page: the new dataset is listed, the form comes back
    st.progress(min(max(job.fraction, 0.0), 1.0), text=job.message)
    if st.button("Cancel", key="data_import_cancel"):
        job.cancel()
        st.caption("Cancelling: the import stops at its next file and keeps nothing.")


def import_section() -> None:
    st.subheader("Import your own data")
    st.markdown(
        "Upload a **.zip** holding images and a `labels.csv` -- one column names each image's file, every other "
        "column is a task -- or a plain **CSV** of numeric feature columns and the target columns you choose. "
        "A column of numbers becomes a regression task, anything else a classification task; change it below."
    )
    if st.session_state.get(JOB) is not None:
        import_progress()
        return
    failed = st.session_state.pop("data_import_error", None)
    if failed:
        say("error", failed)  # it may quote a column name: user text
    upload = st.file_uploader("A .zip of images with labels.csv, or a .csv table", type=["zip", "csv"],
                              key="data_upload", help=f"Up to {MAX_ARCHIVE_BYTES // 2**20} MB.")
    if upload is None:
        return
    data = upload.getvalue()
    if len(data) > MAX_ARCHIVE_BYTES:
        st.error(f"The file is {len(data) / 2**20:.0f} MB; the limit is {MAX_ARCHIVE_BYTES / 2**20:.0f} MB.")
        return
    try:
        seen = preview(data)
    except DataImportError as error:
        say("error", str(error))  # it may quote a column name: user text
        return
    default_name = "".join(ch for ch in upload.name.rsplit(".", 1)[0].lower() if ch.isalnum() or ch in "-_")[:40]
    name = st.text_input("Name of the new dataset", value=default_name or "mydata", key="data_import_name")

    if seen.kind == "images":
        st.caption(f"{seen.rows} images; the column **{md(seen.file_column)}** names the files.")
        kinds = kinds_editor(seen.columns, IMAGE_KINDS, lambda c: c.suggested, key="data_image_kinds")
        size = st.number_input("Resize the images to (pixels, square)", min_value=own.MIN_SIZE,
                               max_value=own.MAX_SIZE, value=32, step=8, key="data_image_size")
        act = functools.partial(import_images, data, name, kinds=kinds, image_size=int(size), owner=owner())
    else:
        st.caption(f"{seen.rows} rows; numeric columns are features unless you make them targets.")
        roles = kinds_editor(seen.columns, ROLES,
                             lambda c: "feature" if c.numeric else "classification target", key="data_table_roles")
        targets = [c for c, role in roles.items() if role.endswith("target")]
        kinds = {c: ("ignore" if role == IGNORE else role.split()[0]) for c, role in roles.items()
                 if role != "feature"}
        act = functools.partial(import_table, data, name, targets=targets, kinds=kinds, owner=owner())

    if st.button("Import", type="primary", key="data_import"):
        # Out of the page's thread: the page keeps answering, shows progress and can cancel.
        st.session_state[JOB] = ImportJob.start(act)
        st.rerun()


def imported_section(infos) -> None:
    mine = [info for info in infos if info.source == "imported"]
    if not mine:
        return
    st.subheader("Imported datasets")
    me = owner()
    for info in mine:
        left, right = st.columns([4, 1])
        who, key = dataset_owner(info.name)
        # Names, descriptions and task names of imported data are user text: escaped, never Markdown.
        left.markdown(f"**{md(info.name)}** -- {md(info.description)} Tasks: {md(task_summary(info))}. "
                      f"Imported by {md(who)}.")
        if not me.may_change(who, key):
            left.caption(md(me.refusal("it", who, key, "delete")))
            continue
        sure = right.checkbox("sure?", key=f"data_sure_{info.name}")
        if right.button("Delete", key=f"data_delete_{info.name}", disabled=not sure):
            try:
                delete_dataset(info.name, by=me)
            except DataImportError as error:
                say("error", str(error))  # e.g. which queued or running runs still use it
            else:
                st.rerun()


def page() -> None:
    header("Data", f"Dataset files live in the data folder `{data_home()}` (set MTL_HOME to use another).")
    notice("data_flash")
    for problem in own.refresh():
        say("warning", problem)
    infos = list_datasets()
    overview(infos)
    download_section(infos)
    import_section()
    imported_section(infos)
    machine_report_expander()


page()
