"""Small helpers shared by the tests that wait on background processes."""
from __future__ import annotations

import contextlib
import time


def wait_for(condition, what: str, timeout: float = 60.0):
    """Poll ``condition`` until it returns something truthy and return that.

    Not a timing assertion: the limit is generous and only stops a test that
    would otherwise hang.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what}.")


# ----- the app in a real browser ------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"  # Debian's chromium; Playwright drives it (no `playwright install`)
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


# The Gradients page's charts, read in the browser (its browser test and benchmarks/bench_first_paths.py).
# JavaScript: how many points the traces named NAME hold in the chart whose title has TITLE.
POINTS_OF = """([title, name]) => Array.from(document.querySelectorAll('.js-plotly-plot'))
    .filter(div => (((div.layout || {}).title || {}).text || '').includes(title))
    .flatMap(div => div._fullData || []).filter(trace => trace.name === name)
    .reduce((n, trace) => n + Array.from(trace.x || []).filter(v => v !== null && !Number.isNaN(v)).length, 0)"""
PATHS, ARROWS = "Paths on the average loss", "Directions at"
# The title of the arrows chart ("Directions at (x1, x2), unit length"; Streamlit may wrap it in <b>).
ARROWS_TITLE = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
    .map(div => ((div.layout || {}).title || {}).text || '').find(t => t.includes('Directions at')) || ''"""


def choose_from_list(page, open_list, option, settle, tries: int = 3) -> None:
    """Open a Streamlit list (``open_list()``), click ``option`` in it and let the app settle (``settle(page)``).

    A rerun still under way when the list opens (one a typed name or an earlier
    choice set off) redraws the widget and closes its list, and the option is
    gone from the page: open the list again, as a person would, up to ``tries``
    times. Each try waits generously; only the last one's failure is raised.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(tries):
        settle(page)
        open_list()
        try:
            option.click(timeout=30_000)
            break
        except PlaywrightTimeout:
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")
    settle(page)


def streamlit_settings() -> dict:
    """The app's ``.streamlit/config.toml``, read as Streamlit reads it."""
    import tomllib
    from pathlib import Path

    return tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text())


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(base: str, server, timeout: float = 60.0) -> None:
    """Until Streamlit answers its health check; one sentence if it exits or never answers."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"streamlit exited with code {server.returncode} before serving the app.")
        try:
            with urllib.request.urlopen(base + "/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"The app did not answer at {base} within {timeout:.0f} s.")


@contextlib.contextmanager
def serve_app(home, log_path, env: dict | None = None, timeout: float = 180.0, stop_workers: bool = True):
    """``streamlit run app.py`` on a free port with data folder ``home``; yields its base URL.

    Stops the server afterwards, and the workers it started (they are detached from the app on
    purpose, so that a rerun cannot kill them), and prints the tail of its log for a failing test.
    """
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    port = free_port()
    log = open(log_path, "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=root, env={**os.environ, "MTL_HOME": str(home), "CUDA_VISIBLE_DEVICES": "", **(env or {})},
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, server, timeout)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        if stop_workers and Path(home).exists():
            from mtlcore.runs import Runner, RunStore
            Runner(RunStore(home), max_workers=1).stop_workers(timeout=5)
        print("--- streamlit log (tail) ---\n" + Path(log_path).read_text(errors="replace")[-3000:])
