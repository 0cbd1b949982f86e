"""Headless Chromium driven over the DevTools protocol (on a pipe), for the report tests: console errors,
exceptions, blocked loads and dialogs, plot rendering (``PLOTS``) and screenshots."""
from __future__ import annotations

import base64
import fcntl
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="headless Chromium not found at /usr/bin/chromium (`make browser` installs it)")
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
                details = p["exceptionDetails"]
                out.append(f"exception: {details.get('text')} {details.get('exception', {})}")
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


# what the report tests read from a page: its plots, how many drew, points per plot, the page's own count
PLOTS = """(() => {
  const divs = [...document.querySelectorAll('.lg-plot')];
  return {plots: divs.length,
          drawn: divs.filter(d => d.querySelector('.main-svg') && d.querySelector('.plot .trace, .plot image')).length,
          points: divs.map(d => d.querySelectorAll('.scatterlayer .point').length),
          rendered: document.body.getAttribute('data-plots-rendered')};
})()"""
