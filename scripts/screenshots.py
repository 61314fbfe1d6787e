"""Screenshots of the main pages at a desktop's, a projector's and a phone's size (issue 16, section 3).

    python scripts/screenshots.py [OUT]      # OUT defaults to docs/screenshots

Starts the app with its own data folder (as the browser tests do), trains a
short three-task shapes run and its single-task baselines (for Compare and
Predict), then presses Start on
Train in the browser for a long run and shoots it while it trains, with its
steering sliders. Each page is shot at 1400x900, 1024x768 and 390x844, only
the first screen (what a class sees without scrolling). Needs Debian's
chromium and the playwright package (requirements-dev.txt); takes a few
minutes on 2 cores.
"""
from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers import BROWSER_ARGS, CHROMIUM, serve_app, wait_for  # noqa: E402

SIZES = [(1400, 900), (1024, 768), (390, 844)]
FINISHED = {"tasks": "shape,color,size", "train.epochs": "3", "train.max_samples": "600", "device": "cpu"}
# Long enough to be shot at three sizes while it trains; stopped at the end.
LIVE_QUERY = ("dataset.name=shapes&tasks=shape,color,size&train.epochs=100&train.max_samples=400"
              "&train.batch_size=32&device=cpu")


def settle(page, ready: str = "[data-testid=stMain] h1") -> None:
    """Until the page shows ``ready`` (a selector), Streamlit has finished its script and every widget is drawn."""
    page.wait_for_selector("[data-testid=stApp]")
    page.wait_for_selector(ready, state="attached")
    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')"
                           " || !document.querySelector('[data-testid=stStatusWidget]').innerText.includes('Running')")
    page.wait_for_function("() => !document.querySelector('[data-testid=stSkeleton]')")  # widgets drawn
    page.wait_for_timeout(2500)  # charts draw after the script's last message


def shoot(page, base: str, path: str, name: str, out: Path, ready: str = "[data-testid=stMain] h1") -> None:
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{base}/{path}")
        settle(page, ready)
        for _ in range(10):  # a live chart is drawn anew at each poll (Streamlit remounts a changed Plotly
            page.wait_for_selector(ready, state="attached")  # figure): shoot it while it is drawn
            page.screenshot(path=str(out / f"{name}-{width}x{height}.png"))
            if page.locator(ready).count():
                break
        print(f"{name} at {width}x{height}", flush=True)


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    from mtlcore import ExperimentConfig
    from mtlcore.runs import RunStore

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        with serve_app(home, Path(tmp) / "streamlit.log", env={"MTL_WORKERS": "1"}) as base, \
                sync_playwright() as playwright:
            from mtlcore.runs import Runner

            from mtlcore.compare import baseline_config

            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
            page = chromium.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(120_000)
            page.goto(base)  # the app's first visit creates the data folder and starts its worker
            settle(page)

            store = RunStore(home)
            runner = Runner(store, max_workers=0)
            config = ExperimentConfig.from_flat(FINISHED)
            done = runner.submit(config, label="three tasks")
            alone = [runner.submit(baseline_config(config, task), label=f"{task} alone", owner=f"baseline {task}")
                     for task in config.tasks]  # another owner each: the queue cap is per person
            wait_for(lambda: all(store.get_run(r).state == "finished" for r in [done, *alone]),
                     "the short runs to finish", 900)

            shoot(page, base, "", "home", out, ".js-plotly-plot")
            shoot(page, base, f"compare?run={done}", "compare", out, "[data-testid=stDataFrame]")
            shoot(page, base, f"predict?run={done}", "predict", out, "input[type=file]")

            page.set_viewport_size({"width": 1400, "height": 900})
            page.goto(f"{base}/train?{LIVE_QUERY}")
            settle(page)
            page.get_by_role("button", name=re.compile(r"^\W*Start", re.I)).first.click()
            live = wait_for(lambda: next(iter(store.list_runs(states=["running"])), None), "the live run", 300)
            wait_for(lambda: len(store.step_metrics(live.id)) > 50, "its first steps", 300)
            shoot(page, base, f"train?run={live.id}", "train-live", out,
                  ".st-key-train_chart_steps .js-plotly-plot .main-svg .legend")
            store.cancel_run(live.id)
            chromium.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots")
