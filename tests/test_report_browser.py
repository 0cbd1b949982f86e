"""Reports in a real browser: headless Chromium over the DevTools protocol (on a pipe), checking
console errors, that every plot rendered, that tables show texts, that untrusted texts run
nothing, and the load time of a 2,000-point report."""
import time

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


@pytest.mark.slow
def test_large_report_opens_in_under_5_seconds(browser, tmp_path):
    page = build_report(make_bundle(n=2000, d=5, n_features=100, seed=4), tmp_path / "big.html")
    seconds = browser.open(page)
    print(f"2,000 points, 2 x 100 features: {page.stat().st_size / 1e6:.1f} MB, rendered in {seconds:.2f} s")
    assert seconds < 5
    assert browser.problems() == []
    plots = browser.evaluate(PLOTS)
    assert plots["drawn"] == plots["plots"] == 7
    assert plots["points"][0] == 2000
    browser.screenshot(tmp_path / "big.png", height=2400)


def test_the_checks_see_alerts_errors_and_failed_loads(browser, tmp_path):
    # the harness itself: an unescaped script, a console error, an exception and a blocked load are caught
    page = tmp_path / "bad.html"
    page.write_text('<!doctype html><meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
                    'script-src \'unsafe-inline\'"><body><script>alert(1)</script><script>console.error("boom")'
                    '</script><script>undefinedFunction()</script><img src="https://example.invalid/x.png">', encoding="utf-8")
    browser.open(page)
    time.sleep(0.2)
    problems = "\n".join(browser.problems())
    assert "dialog (alert): 1" in problems and "boom" in problems and "undefinedFunction" in problems
    assert "Content Security Policy" in problems
