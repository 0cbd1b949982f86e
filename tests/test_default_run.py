"""The default pipeline as a user runs it: ``lookingglass run --workspace WS`` in its own process with the
environment the Makefile sets (adjectives corpus, 200 points, the packaged all-MiniLM-L6-v2, PCA to 2, depths
2 and 3 over a beta path, networks), then a lighter second run on the same corpus and model (depth 2 only, no
networks, no subsample refits). The printed report opens in headless Chromium without errors, the second run
takes its embeddings from the cache and says so, and the store holds both runs with fits whose certificates
hold, the depth-2 ones checked against the whole plane dictionary by brute force and equal across the runs.
How long the default run takes is a benchmark (``python -m benchmarks run``), not a test."""
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from data.store import Store
from flows.config import RunConfig
from tests._browser import PLOTS, needs_chromium

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(900)]
N_POINTS = 200
SECOND_RUN = ("--depths", "2", "--no-networks", "--stability-resamples", "0")


@dataclass
class Run:
    run_id: str
    report: Path
    lines: list[str]
    seconds: float


def lookingglass_run(workspace: Path, *options: str) -> Run:
    """``lookingglass run --workspace workspace [options]``; its printed run id, report and lines."""
    command = Path(sys.executable).with_name("lookingglass")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != "LOOKINGGLASS_WORKSPACE"}
    t0 = time.monotonic()
    done = subprocess.run([str(command), "run", "--workspace", str(workspace), *options], capture_output=True,
                          text=True, env=env, cwd=workspace.parent, timeout=600)
    seconds = time.monotonic() - t0
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    lines = done.stdout.strip().splitlines()
    run_id = re.fullmatch(r"run (\S+): completed", lines[0]).group(1)
    return Run(run_id, Path(lines[-1]), lines, seconds)


@pytest.fixture(scope="module")
def default_runs(tmp_path_factory) -> tuple[Path, Run, Run]:
    workspace = tmp_path_factory.mktemp("default-run") / "workspace"
    first = lookingglass_run(workspace)
    print(f"first default run: {first.seconds:.1f} s")
    return workspace, first, lookingglass_run(workspace, *SECOND_RUN)


def training_set(bundle: dict) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Stored training coordinates, targets and texts, in the order feature point indices refer to."""
    pts = bundle["points"]
    train = (pts["split"] == "train").to_numpy()
    return np.array(pts["coords"].tolist())[train], pts["target"].to_numpy()[train], list(pts["text"][train])


def residual(fit: dict, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``y - f(X)`` with ``f = xi + sum_j z_j | ... | |w_j.x + b_j| - c_1 | ... |`` from the stored features."""
    f = np.full(len(X), fit["intercept"])
    for feat in fit["features"].itertuples():
        phi = np.abs(X @ np.asarray(feat.w) + feat.b)
        for c in feat.offsets:
            phi = np.abs(phi - c)
        f += feat.coef * phi
    return y - f


def plane_ratio(X: np.ndarray, r: np.ndarray, beta: float) -> float:
    """``max_j |A_j . r| / beta`` over every plane through two training points, ``A_j = |w_j.x + b_j|`` (d = 2)."""
    i, j = np.array(list(combinations(range(len(X)), 2))).T
    normal = (X[j] - X[i]) @ np.array([[0.0, 1.0], [-1.0, 0.0]])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    columns = np.abs(X @ normal.T - np.sum(normal * X[i], axis=1))
    return float(np.abs(r @ columns).max() / beta)


def test_first_run_embeds_every_text_and_prints_its_report(default_runs):
    workspace, first, _ = default_runs
    assert first.report == workspace.resolve() / "reports" / f"{first.run_id}.html" and first.report.is_file()
    assert f"corpus adjectives: {N_POINTS} points (160 train, 40 test)" in first.lines
    assert f"embeddings (all-MiniLM-L6-v2): 0 distinct texts from the cache, {N_POINTS} embedded now" in first.lines


def test_second_run_takes_its_embeddings_from_the_cache(default_runs):
    workspace, first, second = default_runs
    assert second.run_id != first.run_id and second.report.is_file() and first.report.is_file()
    assert f"embeddings (all-MiniLM-L6-v2): {N_POINTS} distinct texts from the cache, 0 embedded now" in second.lines
    print(f"second run (cached embeddings, depth 2, no networks, no refits): {second.seconds:.1f} s")


def test_store_holds_both_runs_completed_with_certified_fits(default_runs):
    workspace, first, second = default_runs
    store = Store(workspace, read_only=True)
    runs = store.list_runs()
    assert sorted(zip(runs["run_id"], runs["status"])) == [(first.run_id, "completed"), (second.run_id, "completed")]
    bundles = [store.load_run(run.run_id) for run in (first, second)]
    configs = (RunConfig(workspace=str(workspace)),
               RunConfig(workspace=str(workspace), depths=(2,), networks=False, stability_resamples=0))
    for bundle, config in zip(bundles, configs):
        assert RunConfig.from_dict(bundle["run"]["config"]) == config
        assert bundle["run"]["info"]["embeddings"]["dim"] == 384
        assert len(bundle["points"]) == N_POINTS and len(bundle["points"]["coords"][0]) == 2
        assert [f["depth"] for f in bundle["fits"]] == list(config.depths)
        assert [n["depth"] for n in bundle["networks"]] == (list(config.depths) if config.networks else [])
        X, y, _ = training_set(bundle)
        for fit in bundle["fits"]:
            cert, r = fit["certificate"], residual(fit, X, y)
            assert cert["dictionary_ratio"] <= 1 + cert["tol"] and len(fit["path"]) == RunConfig.n_betas
            # the stored objective is that of the stored features on the stored points
            objective = 0.5 * r @ r + fit["beta"] * np.abs(fit["features"]["coef"]).sum()
            assert objective == pytest.approx(fit["objective"], rel=1e-9)
            # no plane through two training points violates the optimality bound (all of depth 2's dictionary,
            # the planes of depth 3's); at depth 2 the brute-force ratio is the certificate's
            ratio = plane_ratio(X, r, fit["beta"])
            assert ratio <= 1 + cert["tol"]
            if fit["depth"] == 2:
                assert ratio == pytest.approx(cert["dictionary_ratio"], rel=1e-6)
    # the same corpus, model and reduction give the same points, and depth 2 the same optimum
    np.testing.assert_array_equal(*(np.array(b["points"]["coords"].tolist()) for b in bundles))
    assert bundles[0]["fits"][0]["objective"] == bundles[1]["fits"][0]["objective"]


@needs_chromium
def test_default_report_reads_cleanly_in_a_browser(default_runs, browser, tmp_path):
    workspace, first, _ = default_runs
    seconds = browser.open(first.report)
    assert browser.problems() == []
    plots = browser.evaluate(PLOTS)
    assert plots["plots"] >= 5 and plots["drawn"] == plots["plots"] and plots["rendered"] == str(plots["plots"])
    assert plots["points"][0] == N_POINTS                        # every point in the data plot
    # each features table lists, row by row, the texts of the training points that define the stored feature
    tables = browser.evaluate("""[...document.querySelectorAll('table.features')].map(t => [...t.tBodies[0].rows]
        .map(r => [...r.cells[4].querySelectorAll('.txt')].map(e => e.textContent)))""")
    bundle = Store(workspace, read_only=True).load_run(first.run_id)
    _, _, texts = training_set(bundle)
    assert len(tables) == len(bundle["fits"])
    for table, fit in zip(tables, bundle["fits"]):
        assert len(table) == len(fit["features"]) > 0
        for cells, points in zip(table, fit["features"]["points"]):
            assert len(cells) == len(points)
            for cell, p in zip(cells, points):
                assert cell and texts[p].startswith(cell.removesuffix("…").rstrip()), (cell, texts[p])
    shot = browser.screenshot(tmp_path / "default-report.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    print(f"default report ({first.report.stat().st_size / 1e6:.1f} MB) rendered in {seconds:.2f} s; screenshot {shot}")
