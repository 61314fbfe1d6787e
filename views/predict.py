"""Predict: one picture in, every task's prediction out.

Upload a picture, take one with the camera or draw one; the page shows the
picture as the model sees it after the dataset's preprocessing and each
task's prediction. Thin page: loading and predicting live in ``mtlcore.predict``.
"""
from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st
from PIL import Image

from mtlcore import dataset_info
from mtlcore.calibration import softmax
from mtlcore.ensemble import combine_predictions, ensemble_runs
from mtlcore.charts import probability_figure, temperature_figure
from mtlcore.export import COVERED, dataset_bytes, export_bytes, model_metadata, render_script, script_problem
from mtlcore.images import ImageError
from mtlcore.predict import CheckpointError, LoadedModel, input_warning, load_model, predict_tensor, preprocess
from ui.page import header
from ui.pickers import live_selectbox
from ui.safe_text import md, say
from mtlcore.studies import StudyStore
from ui.live_camera import LiveResult, live_camera
from ui.session import get_store, state_badge

DISPLAY_SIZE = 256  # pixels of the "as the model sees it" picture: an 8x8 digit becomes 32x larger
CANVAS_SIZE = 280
SOURCES = ("Upload a file", "Take a photo", "Draw", "Live camera")
LIVE = SOURCES[3]  # streams frames (ui.live_camera) instead of giving one picture


@st.cache_resource(max_entries=8, show_spinner="Loading the model...")
def cached_model(path: str, modified: float) -> LoadedModel:
    """The model of a checkpoint, loaded once per version of the file (its modification time)."""
    return load_model(path, device="cpu")


@dataclass
class Prediction:
    seen: Image.Image  # the input as the model sees it, upscaled for display
    predictions: dict[str, dict[str, Any]]
    milliseconds: float
    size: tuple[int, int]  # the model's input size, width x height


def handle_image(data: bytes, loaded: LoadedModel) -> Prediction:
    """Preprocess ``data`` like the run's dataset and predict every task.

    Raises ImageError (one sentence) for an empty, unreadable, corrupt or
    huge file.
    """
    started = time.perf_counter()
    # The run's own dataset options (e.g. shapes' image_size) decide the input size.
    x = preprocess(data, loaded.config.dataset.name, loaded.config.dataset.options)
    predictions = predict_tensor(loaded, x)
    milliseconds = (time.perf_counter() - started) * 1000
    return Prediction(as_seen(x.detach().cpu().numpy()), predictions, milliseconds, (x.shape[-1], x.shape[-2]))


def as_seen(x: np.ndarray) -> Image.Image:
    """A C x H x W input in [-1, 1] as a picture, enlarged with nearest-neighbour so each pixel shows."""
    pixels = np.clip(x * 0.5 + 0.5, 0.0, 1.0)
    pixels = np.rint(pixels * 255).astype(np.uint8)
    image = Image.fromarray(pixels[0], "L") if pixels.shape[0] == 1 else Image.fromarray(pixels.transpose(1, 2, 0)[..., :3], "RGB")
    scale = max(1, DISPLAY_SIZE // max(image.size))
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)


# ----- choosing the run ------------------------------------------------------------------

def pick_run(store):
    """Runs that have a checkpoint, newest first; the finished ones preferred. None when there is none."""
    runs = [r for r in store.list_runs() if store.checkpoint_path(r.id).is_file()]
    if not runs:
        st.info("No run has a checkpoint yet. Start one on the Train page: a run writes a checkpoint at the end "
                "of each epoch, so a running run can be tried after its first epoch.")
        return None
    by_id = {r.id: r for r in runs}
    wanted = st.query_params.get("run")
    if wanted in by_id and wanted != st.session_state.get("predict_url_run"):
        st.session_state["predict_run"] = wanted  # a link with ?run=ID picks that run, once
    elif st.session_state.get("predict_run") not in by_id:
        st.session_state["predict_run"] = default_run(runs).id
        st.session_state["predict_auto_run"] = st.session_state["predict_run"]
    st.session_state["predict_url_run"] = wanted
    labels = {i: (f"{r.label or 'unnamed'} · {r.id} · {r.owner} · {r.config.dataset.name}: "
                  f"{', '.join(r.config.tasks)} · {r.state}") for i, r in by_id.items()}
    run_id = live_selectbox(  # a run's state in its label moves (running, then finished)
        "Run", labels, "predict_run",
        help="Runs with a checkpoint, newest first: finished runs, and running ones after their first epoch "
             "(their latest epoch is used).",
    )
    if run_id == st.session_state.get("predict_auto_run"):
        st.caption(f"Chosen for you: {auto_choice_reason(by_id[run_id])} Pick another run above.")
    return by_id[run_id]


def default_run(runs):
    """The run Predict opens with: the newest finished multi-task run (a study's single-task baselines are
    often newer), else the newest finished run, else the newest one."""
    finished = [r for r in runs if r.state == "finished"]
    return next((r for r in finished if len(r.config.tasks) > 1), finished[0] if finished else runs[0])


def auto_choice_reason(run) -> str:
    if run.state == "finished" and len(run.config.tasks) > 1:
        return "the newest finished multi-task run."
    if run.state == "finished":
        return "the newest finished run (no finished run trains two or more tasks)."
    return "the newest run with a checkpoint (none has finished yet)."


# ----- getting a picture -------------------------------------------------------------------

def default_ink(dataset: str) -> str:
    return "#e53935" if dataset == "shapes" else "#000000"


def image_from_source(dataset: str) -> bytes | None:
    """The bytes of the picture from the chosen source, or None while there is none."""
    source = st.radio(
        "Picture from", SOURCES, horizontal=True, key="predict_source",
        help="Upload a PNG or JPEG file, take a photo with this device's camera, draw on the canvas, or "
             "let the predictions follow the live camera.",
    )
    if source == LIVE:
        return None  # the page streams the camera itself
    if source == SOURCES[0]:
        # No ``type=`` filter: Streamlit would refuse a wrong extension with an exception that also
        # hides the uploader; read_image checks the content instead and says what is wrong in a sentence.
        upload = st.file_uploader(
            "Picture (PNG or JPEG)", key="predict_upload",
            help="A PNG or JPEG picture, at most 50 megapixels. It is not stored: it is only used for this prediction.",
        )
        return None if upload is None else upload.getvalue()
    if source == SOURCES[1]:
        photo = st.camera_input(
            "Photo", key="predict_camera",
            help="Take a picture with this device's camera (your browser asks for permission first).",
        )
        return None if photo is None else photo.getvalue()
    return drawing(dataset)


def drawing(dataset: str) -> bytes | None:
    from streamlit_drawable_canvas import st_canvas  # imported here: it needs a running Streamlit

    tools = {"Freehand": "freedraw", "Rectangle": "rect", "Circle": "circle", "Polygon": "polygon"}
    colour_column, width_column, tool_column = st.columns(3)
    colour = colour_column.color_picker(
        "Ink colour", default_ink(dataset), key=f"predict_ink_{dataset}",
        help="Colour of the pen and of filled shapes. The shapes dataset knows red, green, blue and yellow; "
             "for digits any dark colour on the white paper works.",
    )
    width = width_column.slider(
        "Pen width", 1, 60, 24, key="predict_pen",
        help="Stroke width in canvas pixels. Thick strokes look like the training data once shrunk.",
    )
    tool = tool_column.selectbox(
        "Tool", list(tools), key="predict_tool",
        help="Freehand draws lines; Rectangle, Circle and Polygon draw filled shapes (click the first point "
             "again to close a polygon).",
    )
    result = st_canvas(
        fill_color=colour, stroke_width=width, stroke_color=colour, background_color="#ffffff",
        height=CANVAS_SIZE, width=CANVAS_SIZE, drawing_mode=tools[tool], return_image_data=True,
        key="predict_canvas",
    )
    pixels = getattr(result, "image_data", None)
    if pixels is None or not np.any(pixels[..., 3] > 0):
        st.caption("Draw on the white canvas; the prediction appears when you lift the pen.")
        return None
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), "RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


# ----- showing predictions -------------------------------------------------------------------

def temperature_slider(task: str, prediction: dict[str, Any]) -> float:
    """The temperature the page shows ``task``'s probabilities at; it starts at the fitted value."""
    fitted = float(prediction.get("temperature", 1.0))
    key = f"predict_temperature_{task}"
    if st.session_state.get(f"{key}_fitted") != fitted:  # another run (or a newer checkpoint): start at its T
        st.session_state[key] = round(min(10.0, max(0.1, fitted)), 2)
        st.session_state[f"{key}_fitted"] = fitted
    return st.slider(
        f"Temperature of {md(task)}", 0.1, 10.0, step=0.05, key=key,
        help=(f"Probabilities are softmax(logits / T). Fitted on the validation split: T = {fitted:.2f} "
              "(Guo et al. 2017). Below 1 the probabilities sharpen, above 1 they flatten; the predicted class "
              "never changes."),
    )


def show_classification(task: str, prediction: dict[str, Any], spec) -> None:
    """The task's probabilities at the slider's temperature, and how they move with it."""
    names = list(prediction["probabilities"])
    fitted = float(prediction.get("temperature", 1.0))
    temperature = temperature_slider(task, prediction) if "logits" in prediction else fitted
    probabilities = dict(zip(names, softmax(prediction["logits"], temperature))) if "logits" in prediction \
        else prediction["probabilities"]
    best = prediction["class"]
    st.markdown(f"**{md(task)}**: {md(best)} ({probabilities[best]:.0%} sure) at T = {temperature:.2f}; "
                f"fitted T = {fitted:.2f})", help=md(spec.description) if spec.description else None)
    bars_column, curve_column = st.columns(2)
    bars_column.plotly_chart(probability_figure(probabilities, best), key=f"predict_bars_{task}",
                             config={"displayModeBar": False})
    if "logits" in prediction:
        curve_column.plotly_chart(temperature_figure(prediction["logits"], names, temperature, fitted, task),
                                  key=f"predict_temperature_curve_{task}", config={"displayModeBar": False})


def show_regression(task: str, prediction: dict[str, Any], spec) -> None:
    unit = f" {prediction['unit']}" if prediction.get("unit") else ""
    if "std" in prediction:  # gaussian_nll: the model also says how sure it is
        low, high = prediction["value"] - 1.645 * prediction["std"], prediction["value"] + 1.645 * prediction["std"]
        st.metric(md(task), f"{prediction['value']:.2f} ± {prediction['std']:.2f}{unit}",
                  help=(f"Mean ± one standard deviation of the predicted Gaussian (Kendall & Gal 2017); "
                        f"90 % interval {low:.2f} to {high:.2f}{md(unit)}. {md(spec.description or '')}").strip())
    else:
        st.metric(md(task), f"{prediction['value']:.2f}{unit}",
                  help=md(spec.description) if spec.description else None)


def show_reconstruction(task: str, prediction: dict[str, Any], spec) -> None:
    """The input and the model's reconstruction of it, side by side (the auxiliary autoencoder task)."""
    st.markdown(f"**{md(task)}**: the picture rebuilt from the shared features (per-pixel MSE "
                f"{prediction['mse']:.3f} in the normalised input space)",
                help=md(spec.description) if spec.description else None)
    left, right = st.columns(2)
    left.image(as_seen(np.asarray(prediction["input"], dtype=np.float32)), caption="Input")
    right.image(as_seen(np.asarray(prediction["image"], dtype=np.float32)), caption="Reconstruction")


def show_predictions(result: Prediction, loaded: LoadedModel) -> None:
    seen_column, prediction_column = st.columns([1, 2])
    with seen_column:
        width, height = result.size
        st.image(result.seen, caption=f"As the model sees it: {width} x {height} pixels, shown enlarged")
    with prediction_column:
        show_each_task(result.predictions, loaded)
    st.caption(f"Prediction took {result.milliseconds:.1f} ms (preprocessing and model, on the CPU).")


def show_each_task(predictions: dict[str, dict[str, Any]], loaded: LoadedModel) -> None:
    for task, prediction in predictions.items():
        spec = loaded.tasks[task]
        if prediction["kind"] == "classification":
            show_classification(task, prediction, spec)
        elif prediction["kind"] == "reconstruction":
            show_reconstruction(task, prediction, spec)
        else:
            show_regression(task, prediction, spec)


def show_live(live: LiveResult, loaded: LoadedModel) -> None:
    """The latest camera frame's predictions, beside the video (ui.live_camera lays it out)."""
    if live.warning:
        st.warning(live.warning, icon=":material/warning:")
    show_each_task(live.predictions, loaded)
    width, height = live.x.shape[-1], live.x.shape[-2]
    st.image(as_seen(live.x), width=96, caption=f"As the model sees it: {width} x {height} pixels")


# ----- taking the model away ---------------------------------------------------------------

def export_section(run, loaded: LoadedModel) -> None:
    """Downloads: the model for plain PyTorch, its JSON, and the run as a standalone script with its data."""
    with st.expander("Take the model with you: a PyTorch file, and the code that trains it"):
        st.markdown("The model file loads with plain PyTorch, no MTL Lab needed: "
                    "`model = torch.export.load('model.pt2').module()`, then `model(x)` gives a dict of every "
                    "task's output for inputs preprocessed as the JSON says.")
        left, right = st.columns(2)
        left.download_button("Download the model (.pt2)", lambda: export_bytes(loaded), file_name=f"{run.id}.pt2",
                             mime="application/octet-stream", key="predict_download_model", on_click="ignore")
        right.download_button("Download its JSON (tasks, classes, preprocessing)",
                              lambda: json.dumps(model_metadata(loaded, f"{run.id}.pt2"), indent=2),
                              file_name=f"{run.id}.json", mime="application/json", key="predict_download_json",
                              on_click="ignore")
        problem = script_problem(loaded.config)
        if problem:
            st.info(f"Show the code: {problem}")
            return
        script_name, data_name = f"train_{run.id}.py", f"train_{run.id}_data.pt"
        st.markdown(f"**Show the code.** The whole run as one readable PyTorch script: the model's layers, each "
                    f"task's loss with your weights, the optimiser and the training loop. It covers {COVERED}. "
                    f"Run it with `python {script_name} --data {data_name}`.")
        code = render_script(loaded.config, run=run.id, script_name=script_name, data_name=data_name)
        left, right = st.columns(2)
        left.download_button("Download the script", code, file_name=script_name, mime="text/x-python",
                             key="predict_download_script", on_click="ignore")
        right.download_button("Download its data (tensors)", lambda: dataset_bytes(loaded.config),
                              file_name=data_name, mime="application/octet-stream", key="predict_download_data",
                              on_click="ignore")
        st.code(code, language="python")


# ----- an ensemble ---------------------------------------------------------------------------

def ensemble_page(store) -> None:
    """An ensemble of a finished mtl-vs-ensemble study: each member's vote next to the average."""
    try:
        studies = [s for s in StudyStore(store).list(states=("finished",)) if s.kind == "mtl-vs-ensemble"]
    except Exception as error:  # an unreadable store: one sentence
        say("error", f"The studies cannot be read: {error}")
        return
    ensembles = {(s.id, task, seed): (s, runs) for s in studies for (task, seed), runs in ensemble_runs(s).items()}
    if not ensembles:
        st.info("No ensemble yet. On the Studies page, run a study of the kind *Multi-task vs an ensemble*; "
                "when it has finished, its ensembles can be tried here.")
        return
    chosen = st.selectbox(
        "Ensemble", list(ensembles), key="predict_ensemble",
        format_func=lambda k: f"{ensembles[k][0].label} · task {k[1]} · seed {k[2]} · {len(ensembles[k][1])} members",
        help="The bagged single-task models of one task, from a finished mtl-vs-ensemble study.")
    record, run_ids = ensembles[chosen]
    task = chosen[1]
    models = []
    for run_id in run_ids:
        path = store.checkpoint_path(run_id)
        try:
            models.append(cached_model(str(path), path.stat().st_mtime))
        except (CheckpointError, OSError) as error:
            say("error", f"Member run {run_id} cannot be loaded: {error}")
            return
    info = dataset_info(record.spec.base.dataset.name)
    if info.input_kind != "image" or info.preprocess is None:
        st.info(f"This ensemble learned from the {info.name} dataset, whose inputs are not pictures.")
        return
    data = image_from_source(info.name)
    if st.session_state.get("predict_source") == LIVE:
        st.info("The live camera predicts with one run's model: choose **A run** above, or take a photo.")
        return
    if data is None:
        return
    try:
        first = handle_image(data, models[0])
        x = preprocess(data, models[0].config.dataset.name, models[0].config.dataset.options)
    except ImageError as error:
        say("error", str(error))
        return
    combined = combine_predictions([first.predictions[task]] + [predict_tensor(m, x)[task] for m in models[1:]])
    seen_column, result_column = st.columns([1, 2])
    seen_column.image(first.seen, caption="As the members see it")
    with result_column:
        if combined["kind"] == "classification":
            st.markdown(f"**{md(task)}**: average of the members' probabilities says "
                        f"**{md(combined['average_class'])}** ({combined['average'][combined['average_class']]:.0%}); "
                        f"majority vote says **{md(combined['vote'])}** ({combined['vote_count']} of "
                        f"{len(combined['votes'])} votes).")
            st.dataframe([{"member": k + 1, "vote": vote, "its probability": round(max(probs), 3)}
                          for k, (vote, probs) in enumerate(zip(combined["votes"], combined["members"]))],
                         hide_index=True, key="predict_ensemble_votes")
            st.plotly_chart(probability_figure(combined["average"], combined["average_class"]),
                            key="predict_ensemble_average", config={"displayModeBar": False})
        else:
            unit = f" {combined['unit']}" if combined.get("unit") else ""
            st.metric(f"{md(task)} (mean of {len(combined['values'])} members)", f"{combined['mean']:.2f}{unit}")
            st.dataframe([{"member": k + 1, "value": round(v, 3)} for k, v in enumerate(combined["values"])],
                         hide_index=True, key="predict_ensemble_values")


# ----- the page --------------------------------------------------------------------------

def page() -> None:
    header("Predict", "Give a trained model one picture and see every task's prediction at once.")
    mode = st.radio("Model", ("A run", "An ensemble"), horizontal=True, key="predict_mode",
                    help="A run's model, or an ensemble of bagged single-task models from a finished "
                         "mtl-vs-ensemble study (each member's vote next to the average).")
    if mode == "An ensemble":
        try:
            ensemble_page(get_store())
        except Exception as error:  # an unreadable data folder: say so, do not crash
            say("error", f"The run store cannot be read: {error}")
        return
    try:
        store = get_store()
        run = pick_run(store)
    except Exception as error:  # an unreadable data folder: say so, do not crash
        st.error(f"The run store cannot be read: {md(error)}")
        return
    if run is None:
        return
    info = dataset_info(run.config.dataset.name)
    path = store.checkpoint_path(run.id)
    try:
        loaded = cached_model(str(path), path.stat().st_mtime)
    except (CheckpointError, OSError) as error:
        say("error", f"The model of run {run.id} cannot be loaded: {error}")
        return
    if info.input_kind != "image" or info.preprocess is None:
        st.info(f"Run {run.id} learned from the {info.name} dataset, whose inputs are vectors of numbers, not "
                "pictures: prediction from an image is not available for it. Pick a run on an image dataset.")
        export_section(run, loaded)  # its model and code can still be taken away
        return
    epochs = run.config.train.epochs
    note = f"epoch {loaded.epoch} of {epochs}"
    if run.state != "finished":
        note += f"; this run is {run.state}, so its latest checkpoint is used"
    st.markdown(f"{state_badge(run.state)} Model from {note}.")
    st.info(f"**What this model expects:** {info.image_hint}", icon=":material/lightbulb:")
    export_section(run, loaded)

    data = image_from_source(info.name)
    if st.session_state.get("predict_source") == LIVE:
        live_camera(loaded, run.id, lambda live: show_live(live, loaded))
        return
    if data is None:
        return
    try:
        result = handle_image(data, loaded)
    except ImageError as error:
        say("error", str(error))
        return
    warning = input_warning(data)  # a 1x1 or blank picture: the model still answers, sure of itself
    if warning:
        st.warning(warning, icon=":material/warning:")
    show_predictions(result, loaded)


page()
