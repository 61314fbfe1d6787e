"""Every chart of ``mtlcore.charts`` drawn in Chromium at the widths a 1024 px screen gives it, measured and shot.

    python benchmarks/chart_gallery.py OUT [--widths 230,340,700]

For each builder (tests/chart_samples.py) and width, Plotly.js draws the
figure in a column of that width and the page measures what a projector
user would notice:

- the legend's box overlapping the title's box;
- a title, legend entry, axis title or tick label that reaches outside the
  chart (cut off: "adar", "backg...");
- a heatmap cell whose label is wider than the cell.

It writes OUT/<builder>@<width>.png and OUT/report.json, prints one line
per problem, and exits 1 when there is any. The widths: 230 px is the
run column at 1024 px the issue measured, 340 px a half column of the main
area (two charts side by side), 700 px the whole main area beside the sidebar.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

CHROMIUM = "/usr/bin/chromium"
DEFAULT_WIDTHS = "230,340,700"
# The columns each family is drawn in at 1024x768 (measured in the app, Dec 2026): the Train page's run column
# (243 px), Compare's and Home's half columns (259 px), Learn's quarter columns (180 px), the Studies page (a half
# or the whole main area), the Class board (the whole main area, for a projector).
WIDTHS = {"studies": [340, 700], "class_board": [700]}

MEASURE = """(slack) => {
  const box = el => { const r = el.getBoundingClientRect(); return {l: r.left, t: r.top, r: r.right, b: r.bottom,
                                                                     w: r.width, h: r.height}; };
  const overlap = (a, b) => a.l < b.r - slack && b.l < a.r - slack && a.t < b.b - slack && b.t < a.b - slack;
  const root = document.getElementById('chart');
  const frame = box(root);
  const problems = [];
  const title = root.querySelector('.g-gtitle .gtitle');
  const legend = root.querySelector('.legend');
  if (title && legend && title.textContent.trim() && overlap(box(title), box(legend)))
    problems.push('the legend overlaps the title');
  const size = root._fullLayout._size;  // the plot area, in px from the chart's top left corner
  if (title && title.textContent.trim() && box(title).b > frame.t + size.t + slack)
    problems.push('the title runs into the plot');
  if (legend)
    for (const t of root.querySelectorAll('.xtitle, .g-xtitle text, .xtick text, .annotation-text')) {
      if (t.textContent.trim() && overlap(box(t), box(legend)))
        problems.push(`the legend overlaps "${t.textContent.trim().slice(0, 30)}"`);
    }
  const texts = root.querySelectorAll('.gtitle, .legendtext, .xtitle, .ytitle, .xtick text, .ytick text, '
                                      + '.annotation-text, .g-xtitle text, .g-ytitle text');
  for (const t of texts) {
    if (!t.textContent.trim()) continue;
    const b = box(t);
    if (b.w === 0) continue;
    if (b.l < frame.l - slack || b.r > frame.r + slack || b.t < frame.t - slack || b.b > frame.b + slack)
      problems.push(`cut: "${t.textContent.trim().slice(0, 40)}" reaches outside the chart`);
  }
  const div = root;
  for (const [k, trace] of (div._fullData || []).entries()) {
    if (trace.type !== 'heatmap' || !trace.text) continue;
    const cols = trace.z[0].length;
    const cellW = div._fullLayout._size.w / cols;  // the plot area's width in px
    for (const t of root.querySelectorAll('.heatmaplayer text, .hm text')) {
      const b = box(t);
      if (b.w > cellW) problems.push(`heatmap label "${t.textContent}" (${Math.round(b.w)} px) wider than `
                                         + `its cell (${Math.round(cellW)} px)`);
    }
  }
  return problems;
}"""


def draw(page, figure: dict, width: int) -> None:
    """Draw ``figure`` (Plotly JSON) in the page's chart column, ``width`` px wide."""
    page.evaluate("""([fig, width]) => { const div = document.getElementById('chart');
        div.style.width = width + 'px'; Plotly.purge(div);
        fig.layout.width = width; return Plotly.newPlot(div, fig.data, fig.layout, {staticPlot: true}); }""",
                  [figure, width])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--widths", default=DEFAULT_WIDTHS,
                        help="comma list of column widths in px (default: those each family gets at 1024 px)")
    parser.add_argument("--only", default="", help="comma list of builders (module.name) to draw")
    args = parser.parse_args(argv)
    import plotly
    from playwright.sync_api import sync_playwright

    from chart_samples import samples

    default = [int(w) for w in args.widths.split(",")]
    chosen = samples()
    if args.only:
        chosen = {k: v for k, v in chosen.items() if k in args.only.split(",")}
    args.out.mkdir(parents=True, exist_ok=True)
    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    report: dict[str, dict[str, list[str]]] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1024, "height": 768})
        page.set_content("<html><body style='margin:0;font-family:sans-serif'><div id='chart'></div></body></html>")
        page.add_script_tag(path=str(plotly_js))
        for name, build in chosen.items():
            figure = json.loads(build().to_json())
            widths = default if args.widths != DEFAULT_WIDTHS else WIDTHS.get(name.split(".")[0], default)
            for width in widths:
                try:
                    draw(page, figure, width)
                except Exception as error:  # Plotly refused to draw it at all: the worst layout problem
                    report.setdefault(name, {})[str(width)] = [f"not drawn: {str(error).splitlines()[0]}"]
                    print(f"{name} @ {width} px: not drawn: {str(error).splitlines()[0]}")
                    continue
                problems = page.evaluate(MEASURE, 1)
                report.setdefault(name, {})[str(width)] = problems
                page.locator("#chart").screenshot(path=str(args.out / f"{name}@{width}.png"))
                for problem in problems:
                    print(f"{name} @ {width} px: {problem}")
        browser.close()
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    bad = sum(bool(p) for by_width in report.values() for p in by_width.values())
    print(f"{len(report)} builders drawn at their widths; {bad} figure x width with problems. Pictures in {args.out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
