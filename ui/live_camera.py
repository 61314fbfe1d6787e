"""Live camera on the Predict page: every task's prediction, several times a second.

Teachable Machine's reason to exist in class is that a prediction follows the
webcam as you move. Streamlit's own ``st.camera_input`` takes one photo at a
time, so the live mode uses ``streamlit-webrtc`` (Yuichiro Tachibana's
maintained component, https://github.com/whitphx/streamlit-webrtc): the
browser streams the camera over WebRTC to this server, each frame arrives in
``video_frame_callback`` on a worker thread, and a fragment of the page
redraws the latest prediction a few times a second.

Why the prediction lives in a ``LivePrediction`` object and not in
``st.session_state``: the frame callback runs on another thread, outside the
script run, where Streamlit's API must not be called. The object is shared
between that thread and the fragment behind a lock.

Offline: the ICE server list is empty on both sides, so nothing contacts a
STUN server on the internet. The browser and this server still find each
other on one machine or one local network (host candidates). A browser only
opens the camera on a secure page: http://localhost, or https.
"""
from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import streamlit as st
from PIL import Image

from mtlcore.images import ImageError
from mtlcore.predict import LoadedModel, input_warning, predict_tensor, preprocess

# At most this many predictions a second: the fragment redraws a few times a second,
# so predicting all 30 frames a second would only heat the CPU of a shared classroom server.
MAX_PREDICTIONS_PER_SECOND = 10
REDRAW_SECONDS = 0.3
FRAME_SIDE = 256  # a frame is shrunk to this before preprocessing: the models see 8-64 pixels
NO_ICE_SERVERS = {"iceServers": []}  # offline: no STUN/TURN server on the internet is asked


@dataclass
class LiveResult:
    """The latest prediction made from the camera, for the page to draw."""
    x: Any  # the frame as the model saw it (C x H x W numpy array in [-1, 1])
    predictions: dict[str, dict[str, Any]]
    milliseconds: float
    warning: str | None
    frames: int  # how many frames have been predicted since the camera started
    per_second: float  # predictions per second over the last few seconds


@dataclass
class LivePrediction:
    """Predicts camera frames with one model; thread-safe between the frame thread and the page."""
    loaded: LoadedModel
    min_interval: float = 1.0 / MAX_PREDICTIONS_PER_SECOND
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _latest: LiveResult | None = None
    _error: str | None = None
    _last: float | None = None  # when the last prediction began (None: none yet)
    _frames: int = 0
    _times: list[float] = field(default_factory=list)

    def predict_picture(self, picture: Image.Image) -> None:
        """Predict one frame (a PIL image) unless the last prediction was too recent."""
        now = time.perf_counter()
        # perf_counter counts from an arbitrary point (the machine's boot, on Linux): the first frame is
        # always predicted, not skipped when the machine started less than min_interval ago.
        if self._last is not None and now - self._last < self.min_interval:
            return
        self._last = now
        picture = picture.convert("RGB")
        picture.thumbnail((FRAME_SIDE, FRAME_SIDE))
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        data = buffer.getvalue()
        try:
            x = preprocess(data, self.loaded.config.dataset.name, self.loaded.config.dataset.options)
            predictions = predict_tensor(self.loaded, x)
        except ImageError as error:  # e.g. an empty frame: say so, keep streaming
            with self._lock:
                self._error = str(error)
            return
        milliseconds = (time.perf_counter() - now) * 1000
        with self._lock:
            self._frames += 1
            self._times = [t for t in self._times if now - t < 3.0] + [now]
            span = self._times[-1] - self._times[0]
            per_second = (len(self._times) - 1) / span if span > 0 else 0.0
            self._latest = LiveResult(x.detach().cpu().numpy(), predictions, milliseconds, input_warning(data), self._frames, per_second)
            self._error = None

    def __call__(self, frame):
        """streamlit-webrtc's ``video_frame_callback``: predict, and send the frame back unchanged."""
        self.predict_picture(frame.to_image())
        return frame

    def latest(self) -> tuple[LiveResult | None, str | None]:
        with self._lock:
            return self._latest, self._error


def live_camera(loaded: LoadedModel, run_id: str, show: Callable[[LiveResult], None]) -> None:
    """The live camera: a START button, the video, and the latest prediction redrawn by ``show``."""
    try:
        from streamlit_webrtc import WebRtcMode, webrtc_streamer
    except ImportError:  # an install without it: the other sources still work
        st.info("The live camera needs the `streamlit-webrtc` package: `pip install -r requirements.txt` "
                "installs it. Meanwhile, take a photo or upload a picture.")
        return
    # One predictor per run and browser session: a new run's model gets a new one.
    slot = f"predict_live_{run_id}"
    if slot not in st.session_state or st.session_state[slot].loaded is not loaded:
        st.session_state[slot] = LivePrediction(loaded)
    predictor: LivePrediction = st.session_state[slot]
    st.caption("Press **START** and allow the camera: the predictions below follow the picture "
               f"(up to {MAX_PREDICTIONS_PER_SECOND} times a second). The browser only opens the camera on "
               "http://localhost or an https address.")
    video, predictions = st.columns([2, 3])  # the prediction beside the video, both on one screen
    with video:
        context = webrtc_streamer(
            key=f"predict_live_camera_{run_id}",
            mode=WebRtcMode.SENDRECV,
            rtc_configuration=NO_ICE_SERVERS,
            server_rtc_configuration=NO_ICE_SERVERS,
            frontend_rtc_configuration=NO_ICE_SERVERS,
            media_stream_constraints={"video": True, "audio": False},
            video_frame_callback=predictor,
            async_processing=True,
        )

    @st.fragment(run_every=REDRAW_SECONDS if context.state.playing else None)
    def latest_prediction() -> None:
        result, error = predictor.latest()
        if error:
            st.warning(error, icon=":material/warning:")
        if result is None:
            if context.state.playing:
                st.caption("Waiting for the first frame...")
            return
        st.caption(f"Frame {result.frames} predicted, {result.per_second:.1f} predictions a second.")
        show(result)

    with predictions:
        latest_prediction()
