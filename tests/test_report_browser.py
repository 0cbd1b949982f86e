"""Reports in a real browser: headless Chromium over the DevTools protocol (on a pipe), checking
console errors, that every plot rendered, that tables show texts, that untrusted texts run
nothing, and the load time of a 2,000-point report."""
from __future__ import annotations

import base64
import fcntl
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from reports import build_report
from tests.test_reports import XSS, make_bundle

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.browser, pytest.mark.skipif(
    not CHROMIUM.exists(), reason="headless Chromium not found at /usr/bin/chromium (`make browser` installs it)")]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-pipe"]


class Browser:
    """Headless Chromium driven by DevTools messages on fds 3 (commands) and 4 (replies)."""

    def __init__(self, profile: Path):
        cmd_r, self._cmd_w = os.pipe()
        self._out_r, out_w = os.pipe()

        def fds():          # move the pipe ends to 3 and 4 in the child, via numbers above both
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (cmd_r, out_w)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.proc = subprocess.Popen([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}"], preexec_fn=fds,
                                     pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(out_w)
        self._buf, self._id, self.events, self.session = b"", 0, [], None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=1360, height=900, deviceScaleFactor=1, mobile=False)

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:
                raise TimeoutError("no message from chromium")
            chunk = os.read(self._out_r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, timeout: float = 30, **params) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self._event(reply)

    def _event(self, msg: dict):
        self.events.append(msg)
        if msg.get("method") == "Page.javascriptDialogOpening":   # an alert would block the page
            os.write(self._cmd_w, json.dumps({"id": 0, "method": "Page.handleJavaScriptDialog", "sessionId":
                                              self.session, "params": {"accept": True}}).encode() + b"\0")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, path: Path, timeout: float = 30) -> float:
        """Load ``path`` and wait until its plots are drawn; returns seconds from navigation."""
        self.events.clear()
        t0 = time.monotonic()
        self.call("Page.navigate", url=path.resolve().as_uri())
        while time.monotonic() - t0 < timeout:
            if self.evaluate("document.readyState === 'complete' && "
                             "(document.body.hasAttribute('data-plots-rendered') || !window.Plotly)"):
                return time.monotonic() - t0
            time.sleep(0.05)
        raise TimeoutError(f"{path} did not finish rendering in {timeout} s")

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions, error log entries (CSP, loads) and dialogs."""
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append(f"exception: {p['exceptionDetails'].get('text')} {p['exceptionDetails'].get('exception', {})}")
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(f"console.{p['type']}: {[a.get('value', a.get('description')) for a in p['args']]}")
            elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(f"log: {p['entry']['text']}")
            elif m == "Page.javascriptDialogOpening":
                out.append(f"dialog ({p['type']}): {p['message']}")
        return out

    def screenshot(self, path: Path, height: int | None = None) -> Path:
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], height or size["height"]),
                "scale": 1}
        data = self.call("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self):
        self.proc.kill()
        self.proc.wait(timeout=10)
        os.close(self._cmd_w)
        os.close(self._out_r)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


PLOTS = """(() => {
  const divs = [...document.querySelectorAll('.lg-plot')];
  return {plots: divs.length,
          drawn: divs.filter(d => d.querySelector('.main-svg') && d.querySelector('.plot .trace, .plot image')).length,
          points: divs.map(d => d.querySelectorAll('.scatterlayer .point').length),
          rendered: document.body.getAttribute('data-plots-rendered')};
})()"""


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
