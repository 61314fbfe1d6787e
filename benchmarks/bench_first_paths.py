"""The Gradients page in Chromium: from pressing Start to the first paths on the chart.

Starts ``streamlit run app.py`` on a free port with a new data folder, then,
``--trials`` times, opens the page anew (``?methods=...&steps=50000``), waits
until it has drawn and ``--pause`` seconds more, presses Start, and times
until every picked method has points on the paths chart (polled every 50 ms
in the page). The first trial meets a server just started: its forkserver
and warm-up are still loading. Prints one line a trial, then the median.
Needs Debian's ``chromium`` and Playwright's Python package, as the browser
tests do. A latency, not a ratio: read it on a quiet machine.

    python benchmarks/bench_first_paths.py                       # four methods, 7 trials, 3 s pause
    python benchmarks/bench_first_paths.py --pause 0.3 --trials 3
    python benchmarks/bench_first_paths.py --finish --trials 1 --methods equal,famo,pcgrad,uncertainty,rlw,dwa

``--finish``: also wait, in each trial, until the comparison has finished
(the page says "finished"), and time Start to that: the whole comparison
as a user of the app sees it, with the browser and the server on the same
cores as the computing processes.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers import ARROWS_TITLE, BROWSER_ARGS, CHROMIUM, PATHS, POINTS_OF, serve_app  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="equal,famo,pcgrad,upgrad")
    parser.add_argument("--trials", type=int, default=7)
    parser.add_argument("--pause", type=float, default=3.0, help="seconds between the page drawn and Start")
    parser.add_argument("--finish", action="store_true", help="also time Start to the comparison finished")
    args = parser.parse_args()
    from playwright import sync_api

    methods = args.methods.split(",")
    every_method_drawn = " && ".join(f"({POINTS_OF})(['{PATHS}', '{m}']) > 0" for m in methods)
    seconds, finished = [], []
    with tempfile.TemporaryDirectory() as home, \
            serve_app(home, Path(home) / "server.log") as base, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        for trial in range(args.trials):
            page = browser.new_page(viewport={"width": 1400, "height": 2200})
            page.set_default_timeout(300_000)
            opened = time.time()
            page.goto(f"{base}/gradients?methods={args.methods}&steps=50000")
            page.wait_for_function(f"() => ({ARROWS_TITLE})().includes('(-2.00, 2.00)')")  # the page is drawn
            drawn = time.time()
            time.sleep(args.pause)
            page.get_by_role("button", name=re.compile(r"Start")).click()
            pressed = time.time()
            page.wait_for_function(f"() => {every_method_drawn}", polling=50)
            seconds.append(time.time() - pressed)
            print(f"trial {trial}: page drawn {drawn - opened:.1f} s after opening, "
                  f"first paths {seconds[-1]:.2f} s after Start", flush=True)
            if args.finish:
                page.get_by_text(re.compile(r"^finished · ")).wait_for(timeout=3_600_000)
                finished.append(time.time() - pressed)
                print(f"trial {trial}: finished {finished[-1]:.1f} s after Start (the page redraws every second)",
                      flush=True)
            else:
                page.get_by_role("button", name=re.compile(r"Stop")).click()
            time.sleep(3)  # let the processes end before the next trial
            page.close()
        browser.close()
    print(f"median: {statistics.median(seconds):.2f} s (min {min(seconds):.2f}, max {max(seconds):.2f}, "
          f"{len(seconds)} trials)")
    if finished:
        print(f"finished: median {statistics.median(finished):.1f} s after Start (min {min(finished):.1f}, "
              f"max {max(finished):.1f}, {len(finished)} trials)")


if __name__ == "__main__":
    main()
