"""Load time of a large run report in headless Chromium against a small one, measured in the same run.

Large: 2,000 points in d = 5 with 2 x 100 features; small: 80 points in d = 2 with 2 x 8 features (the
synthetic bundles of tests/test_reports.py). Each page is opened ``REPEATS`` times, alternating, in one
browser; the table prints the median and range of the seconds from navigation until every plot is drawn,
the page size and the load average (the timing is wall time of a browser shared with the machine's load).
"""
from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

REPEATS = 3


def main() -> None:
    from reports import build_report
    from tests._browser import CHROMIUM, PLOTS, Browser
    from tests.test_reports import make_bundle
    if not CHROMIUM.exists():
        print(f"skipped: no headless Chromium at {CHROMIUM} (`make browser` installs it)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pages = {"small (80 points, 2 x 8 features)": build_report(make_bundle(n=80, d=2, n_features=8),
                                                                   tmp / "small.html"),
                 "large (2,000 points, 2 x 100 features)": build_report(
                     make_bundle(n=2000, d=5, n_features=100, seed=4), tmp / "large.html")}
        browser = Browser(tmp / "profile")
        try:
            times = {name: [] for name in pages}
            for _ in range(REPEATS):
                for name, page in pages.items():
                    times[name].append(browser.open(page, timeout=120))
                    plots = browser.evaluate(PLOTS)
                    if plots["drawn"] != plots["plots"] or browser.problems():
                        raise RuntimeError(f"{name}: {plots['drawn']} of {plots['plots']} plots drawn, "
                                           f"problems {browser.problems()}")
        finally:
            browser.close()
        print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; {REPEATS} opens each, alternating")
        print(f"{'report':42s} {'MB':>6s} {'median s':>9s} {'min s':>7s} {'max s':>7s}")
        for name, page in pages.items():
            t = times[name]
            print(f"{name:42s} {page.stat().st_size / 1e6:6.2f} {statistics.median(t):9.2f} {min(t):7.2f} "
                  f"{max(t):7.2f}")
        small, large = (statistics.median(t) for t in times.values())
        print(f"large / small: {large / small:.1f}x")


if __name__ == "__main__":
    main()
