"""Every chart drawn by Plotly.js in Chromium at the column widths a 1024 px projector gives it (issue 16):
no legend over a title, no label cut at the chart's edge, no heatmap label wider than its cell.

The teacher saw PCGrad's task weights reach 3.7e10 (the sample draws that, on a
log axis), "67 % conflict" labels overflowing the cosine heatmap's cells, and
legends over titles. ``benchmarks/chart_gallery.py`` draws every builder's
sample (tests/chart_samples.py) and measures the boxes; this test runs it and
fails on any problem it prints.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from helpers import CHROMIUM

ROOT = Path(__file__).resolve().parents[1]
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium to run the browser test.", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
sys.path.insert(0, str(ROOT / "benchmarks"))

import chart_gallery  # noqa: E402


def test_every_chart_is_readable_at_the_widths_a_projector_gives_it(tmp_path):
    code = chart_gallery.main([str(tmp_path)])
    report = json.loads((tmp_path / "report.json").read_text())
    assert "training.weights_figure" in report and "diagnostics.cosine_figure" in report
    problems = {f"{name} @ {width} px": found for name, by_width in report.items()
                for width, found in by_width.items() if found}
    assert code == 0 and not problems, problems
