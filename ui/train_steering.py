"""The live panel's steering controls: a running run's loss weights and learning rate, Pause/Resume, Fork.

    from ui.train_steering import steering_controls, steering_marks

Drawn inside the live panel's fragment, so moving a slider reruns only the
panel, not the page. A move writes a request into the store
(mtlcore.runs.steering); the run's worker applies it from its next step and
the change is marked on every curve (``steering_marks``). The page never
trains. Only the run's owner (its browser's key) or the teacher sees the
controls; anyone else reads who may steer it.
"""
from __future__ import annotations

import streamlit as st

from mtlcore.charts.markers import steering_markers
from mtlcore.runs import NotOwnerError, QueueFullError, StoreError, steering
from ui.safe_text import md, say
from ui.session import get_runner, get_store, owner
from ui.train_url import chosen_here
from ui.train_settings import LR_STEPS

K = "train_"  # the Train page's prefix of widget and state keys
MAX_SLIDER_WEIGHT = 5.0  # as the settings' weight sliders
APPLIES = "Applies to the running model from its next step; the change is marked on the curves."

ss = st.session_state


def steering_marks(run_id: str, events: list | None = None) -> list:
    """The markers of the run's applied changes (for every curve of the live panel)."""
    return steering_markers(events if events is not None else steering.applied(get_store(), run_id))


def current_values(record, events: list) -> dict[str, float]:
    """Each steerable key's value now: the last change asked (and not refused), else the run's own setting."""
    values = {f"{steering.WEIGHT_PREFIX}{t}": float(record.config.weight(t)) for t in record.config.tasks}
    values[steering.LR] = float(record.config.optim.lr)
    for event in events:
        if event.key in values and not event.note and event.value is not None:
            values[event.key] = float(event.value)
    return values


def steering_controls(record, events: list) -> None:
    """Sliders that steer the running ``record``, Pause/Resume and Fork; nothing for a run that is not running."""
    if record.state != "running":
        return
    me = owner()
    if not me.may_change(record.owner, record.owner_key):
        st.caption(f"Only {md(record.owner)} (from the browser that started it) or the teacher can steer, "
                   "pause or fork this run.")
        return
    said = ss.pop(f"{K}steer_said", None)
    if said:
        say(*said)
    values = current_values(record, events)
    packed = next((int(e.value or 0) for e in events if e.key == steering.PACKED), 0)
    paused = steering_paused(events)
    with st.container(border=True):
        st.markdown("**Steer this run live**")
        if paused:
            st.info("⏸ Paused: the worker holds the model between two steps. Move a weight, Resume, or Fork.")
        refusal = steering.weights_refusal(record.config)
        if refusal:
            st.caption(refusal)
        else:
            columns = st.columns(min(3, len(record.config.tasks)))
            for i, task in enumerate(record.config.tasks):
                key = f"{steering.WEIGHT_PREFIX}{task}"
                slider(columns[i % len(columns)], record.id, key, md(task), values[key])
        lr_key = widget_key(record.id, steering.LR)
        options = sorted(set(LR_STEPS) | {values[steering.LR]})
        st.select_slider("Learning rate", options=options, value=values[steering.LR], key=lr_key,
                         format_func=lambda v: f"{v:g}",
                         on_change=send, args=(record.id, steering.LR, lr_key), disabled=packed > 1,
                         help=f"{APPLIES} A schedule, if any, goes on from the new rate.")
        if packed > 1:
            st.caption(steering.packed_refusal(packed))
        left, right = st.columns(2)
        if paused:
            left.button("▶ Resume", key=f"{K}resume", on_click=send, args=(record.id, steering.RESUME, None),
                        width="stretch", help="The run trains on from the step where it stopped.")
        else:
            left.button("⏸ Pause", key=f"{K}pause", on_click=send, args=(record.id, steering.PAUSE, None),
                        disabled=packed > 1, width="stretch",
                        help="The worker holds the run after its current step (it stays alive, not interrupted).")
        if right.button("⑂ Fork from here", key=f"{K}fork", width="stretch",
                        help="A new run from this run's last saved weights (end of its last epoch) with the weights "
                             "and learning rate above; Compare draws it from the parent's step."):
            fork(record, values)


def slider(column, run_id: str, key: str, label: str, value: float) -> None:
    """A weight slider whose default is the value the run trains with now (after any earlier move).

    Never a default at the slider's minimum: a reloaded page's browser may send a control's default back as
    if it had been moved (seen in Chromium: a reload of a running run's page set every weight to 0 and the
    learning rate to its lowest step), and a steering control acts on the run at once. The key alone is
    the slider's identity in Streamlit, so a new default does not reset a slider someone is moving.
    """
    wkey = widget_key(run_id, key)
    column.slider(label, 0.0, MAX_SLIDER_WEIGHT, value=min(MAX_SLIDER_WEIGHT, value), step=0.1, key=wkey,
                  on_change=send, args=(run_id, key, wkey), help=f"This task's loss weight. {APPLIES}")


def widget_key(run_id: str, key: str) -> str:
    """One widget per run and setting, so that another run's sliders start from that run's values."""
    return f"{K}steer__{run_id}__{key.replace('.', '_')}"  # no dots: the page's CSS class st-key-<key> names it


def send(run_id: str, key: str, wkey: str | None) -> None:
    """Widget callback: write the change into the store; one sentence back, whatever happens."""
    value = None if wkey is None else float(ss[wkey])
    try:
        ss[f"{K}steer_said"] = ("caption", steering.steer(get_store(), run_id, key, value, by=owner()))
    except (ValueError, StoreError, NotOwnerError) as error:
        ss[f"{K}steer_said"] = ("warning", str(error))


def fork(record, values: dict[str, float]) -> None:
    """Queue the fork with the controls' values and show it in the panel (a full rerun of the page)."""
    changes = {key: ss.get(widget_key(record.id, key), value) for key, value in values.items()}
    try:
        child = steering.fork(get_runner(), record.id, changes, by=owner())
    except (ValueError, StoreError, NotOwnerError, QueueFullError) as error:
        say("warning", str(error))
        return
    ss[f"{K}run"] = child
    chosen_here()
    ss[f"{K}notice"] = ("info", f"Forked run {record.id} into {child}: it starts from the parent's last saved "
                                "weights with your weights and learning rate.")
    st.rerun()


def steering_paused(events: list) -> bool:
    """Whether the last applied pause is not followed by an applied resume."""
    state = False
    for event in events:
        if event.applied and event.key in (steering.PAUSE, steering.RESUME):
            state = event.key == steering.PAUSE
    return state
