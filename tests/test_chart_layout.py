"""Every chart stays readable in a 240 px column (a 1024 px projector): what the layout of each builder says.

A teacher at a projector saw legends written over titles and labels cut
("adar", "backg..."). These tests read each figure's layout (no browser):
the legend sits below the plot, the title has room above it for all its
lines, and no title line or legend entry is longer than a narrow column
holds. benchmarks/chart_gallery.py draws the same figures in Chromium at
the widths the app gives them and measures the boxes.
"""
import importlib
import inspect
import pkgutil
import re

import pytest

from chart_samples import FULL_WIDTH, samples
from mtlcore import charts
from mtlcore.charts import style

SAMPLES = samples()


def builders() -> list[str]:
    """"module.name" of every public ``*_figure`` function defined in the charts package."""
    found = []
    for info in pkgutil.iter_modules(charts.__path__):
        module = importlib.import_module(f"mtlcore.charts.{info.name}")
        for name, value in inspect.getmembers(module, inspect.isfunction):
            if name.endswith("_figure") and not name.startswith("_") and value.__module__ == module.__name__:
                found.append(f"{info.name}.{name}")
    return sorted(found)


def wider(name: str) -> int:
    """How many narrow columns wide the app draws this figure (the class board fills the projector)."""
    return 3 if name in FULL_WIDTH else 1


def plain_lines(text: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", line).strip() for line in (text or "").split("<br>")]


def test_every_figure_builder_has_a_sample_to_check():
    missing = [b for b in builders() if b not in SAMPLES]
    assert not missing, f"add a sample to tests/chart_samples.py for: {missing}"


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_legend_is_below_the_plot_never_beside_the_title(name):
    fig = SAMPLES[name]()
    shown = [t for t in fig.data if t.showlegend is not False]
    if fig.layout.showlegend is False or len(shown) < 2:
        return  # no legend drawn
    assert fig.layout.legend.yanchor == "top" and fig.layout.legend.y < 0, name
    assert fig.layout.legend.orientation == "h", name
    # Below the axis title too: a margin at least as tall as the tick labels, the axis title and one row.
    assert fig.layout.margin.b >= 50 + style.LEGEND_ROW_PX, name
    for trace in shown:
        assert len(plain_lines(trace.name)[0]) <= style.LEGEND_CHARS * wider(name), (name, trace.name)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_title_fits_a_narrow_column_and_has_room_above_the_plot(name):
    fig = SAMPLES[name]()
    text = fig.layout.title.text or ""
    if not text:
        return
    lines = plain_lines(text)
    for line in lines:  # Plotly never wraps a title: a longer line is cut at 240 px
        assert len(line) <= (style.SUBTITLE_CHARS + 2) * wider(name), (name, line)
    # Plotly draws a multi-line title's lines downwards from the first: the top margin holds them all.
    needed = style.TITLE_TOP_PX + style.TITLE_LINE_PX * len(lines)
    assert fig.layout.margin.t >= needed, (name, fig.layout.margin.t, needed)
    if len(lines) > 1:  # placed from the top in pixels, or the later lines run into the plot
        assert fig.layout.title.yref == "container" and fig.layout.title.yanchor == "top", name


def test_a_long_title_is_wrapped_and_a_long_run_label_shortened_in_the_legend():
    curves = [charts.Curve("pcgrad all four tasks · STL background · mx5g6wna-peik", [(1, 0.5)]),
              charts.Curve("another run", [(1, 0.6)])]
    fig = charts.curves_figure("background", "accuracy", curves, higher_is_better=True)
    assert [t.name for t in fig.data] == ["pcgrad all…x5g6wna-peik", "another run"]  # the run id stays
    assert "mx5g6wna-peik" in fig.data[0].hovertemplate  # the whole label is still in the hover
    assert plain_lines(fig.layout.title.text) == ["background", "validation accuracy, higher is", "better"]


def test_the_temperature_marks_are_labelled_where_their_lines_are_on_the_log_axis():
    import math

    fig = charts.temperature_figure([2.0, 0.5], ["circle", "square"], 1.0, fitted=2.5)
    marks = {a.text: a.x for a in fig.layout.annotations}
    assert marks == {"T = 1.00": pytest.approx(0.0), "fitted 2.50": pytest.approx(math.log10(2.5))}
    assert [s.x0 for s in fig.layout.shapes] == [1.0, 2.5]
