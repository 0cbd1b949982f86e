"""Reports in a real browser: headless Chromium over the DevTools protocol (on a pipe), checking
console errors, that every plot rendered, that tables show texts, that untrusted texts run
nothing, and that a 2,000-point report opens with its content (its load time: benchmarks/bench_report.py)."""
import re
import time

import numpy as np
import pytest

from reports import build_report
from tests._browser import PLOTS, needs_chromium
from tests.test_reports import XSS, make_bundle

pytestmark = [pytest.mark.browser, needs_chromium]


def test_report_renders_without_errors_and_escapes_texts(browser, tmp_path):
    page = build_report(make_bundle(n=80, d=2, n_features=8), tmp_path / "report.html")
    seconds = browser.open(page)
    assert browser.problems() == []
    plots = browser.evaluate(PLOTS)
    assert plots["plots"] == 7 and plots["drawn"] == 7 and plots["rendered"] == "7"
    assert plots["points"][0] == 80                             # every point drawn in the data plot
    # the features table shows the defining texts, untrusted ones literally
    cells = browser.evaluate("[...document.querySelectorAll('table.features .txt')].map(e => e.textContent)")
    assert len(cells) > 8 and XSS[0] in cells and XSS[1] in cells
    assert browser.evaluate("document.querySelectorAll('img, iframe, object, embed').length") == 0
    assert browser.evaluate("document.scripts.length") == 3
    # hovering the point whose text is an <img onerror> shows it as text and creates nothing
    hover = browser.evaluate("""(() => { const d = document.querySelector('.lg-plot');
        Plotly.Fx.hover(d, [{curveNumber: 0, pointNumber: 1}]);
        return d.querySelector('.hoverlayer').textContent; })()""")
    assert XSS[1] in hover
    assert browser.evaluate("document.querySelectorAll('img').length") == 0
    assert browser.problems() == []
    shot = browser.screenshot(tmp_path / "report.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    print(f"report opened in {seconds:.2f} s; screenshot {shot}")


# the tick labels Plotly drew on each axis of each plot, keyed "figure axis" (e.g. "path2 x", "training0 y")
TICKS = """Object.fromEntries([...document.querySelectorAll('.lg-plot')].flatMap(d => ['x', 'y'].map(a =>
  [d.dataset.figure + ' ' + a, [...d.querySelectorAll('.' + a + 'tick text')].map(t => t.textContent)])))"""


def test_log_axes_label_every_tick_with_its_full_value(browser, tmp_path):
    # the default run's ranges: beta 1.1 .. 22 (1.3 decades), objectives 11 .. 250; and beta over 3 decades
    bundle = make_bundle(n=40, d=2, n_features=4, seed=5)
    path = bundle["fits"][0]["path"]
    bundle["fits"][0].update(beta=1.116, path=path.assign(beta=np.geomspace(22.33, 1.116, len(path))))
    for fit in bundle["fits"]:
        fit["certificate"].update(lower_bound=10.5, upper_bound=11.0)
    for net in bundle["networks"]:
        net.update(lasso={"objective": 11.0, "lower_bound": 10.5}, lasso_objective=11.0)
        for run in [net, *net.get("runs", [])]:
            for key in ("curve", "curves"):
                if run.get(key):
                    curve = list(11.0 + 240.0 * np.exp(-np.arange(300) / 40.0))
                    run[key] = curve if key == "curve" else [curve, curve]
    browser.open(build_report(bundle, tmp_path / "ticks.html"))
    assert browser.problems() == []
    ticks = browser.evaluate(TICKS)
    plain = re.compile(r"^\d+(\.\d+)?$")                  # 0.001, 20, 200: no exponent, no bare leading digit
    for key in ("path2 x", "path3 x", "training0 y", "training1 y"):
        labels = ticks[key]
        assert len(labels) >= 3 and all(plain.match(t) for t in labels), (key, labels)
        values = [float(t) for t in labels]
        assert values == sorted(set(values)), (key, labels)  # "1 2 … 9 10 2" would fail here
    assert [1, 2, 5, 10, 20] == [float(t) for t in ticks["path2 x"]]
    assert [0.001, 0.01, 0.1, 1] == [float(t) for t in ticks["path3 x"]]
    assert ticks["training0 y"] == ticks["training1 y"] and {20, 50, 100, 200} <= set(map(float, ticks["training0 y"]))


@pytest.mark.slow
def test_large_report_opens_and_shows_its_content(browser, tmp_path):
    """Functional only; its load time against a small report is benchmarks/bench_report.py."""
    bundle = make_bundle(n=2000, d=5, n_features=100, seed=4)
    page = build_report(bundle, tmp_path / "big.html")
    browser.open(page, timeout=120)
    assert browser.problems() == []
    plots = browser.evaluate(PLOTS)
    assert plots["drawn"] == plots["plots"] == 7
    assert plots["points"][0] == 2000
    rows = browser.evaluate("[...document.querySelectorAll('table.features')].map(t => t.tBodies[0].rows.length)")
    assert rows == [len(f["features"]) for f in bundle["fits"]] == [100, 100]
    ids = browser.evaluate("[...document.querySelectorAll('table.features .fid')].map(e => e.textContent)")
    assert sorted(ids) == sorted(i for f in bundle["fits"] for i in f["features"]["id"])


def test_the_checks_see_alerts_errors_and_failed_loads(browser, tmp_path):
    # the harness itself: an unescaped script, a console error, an exception and a blocked load are caught
    page = tmp_path / "bad.html"
    page.write_text('<!doctype html><meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
                    'script-src \'unsafe-inline\'"><body><script>alert(1)</script><script>console.error("boom")'
                    '</script><script>undefinedFunction()</script><img src="https://example.invalid/x.png">',
                    encoding="utf-8")
    browser.open(page)
    time.sleep(0.2)
    problems = "\n".join(browser.problems())
    assert "dialog (alert): 1" in problems and "boom" in problems and "undefinedFunction" in problems
    assert "Content Security Policy" in problems
