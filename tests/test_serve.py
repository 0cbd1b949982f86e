"""``lookingglass serve``: a real local Prefect server, a short interval schedule, scheduled runs that land
in the store one after another (never interleaved), and SIGTERM in the middle of a scheduled run: serve
exits, the managed server and the run's process with it, and the run is shown as interrupted, not running."""
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from data.store import Store, StoreError
from tests._processes import wait_gone

pytestmark = [pytest.mark.server, pytest.mark.slow, pytest.mark.timeout(420)]


def completed_runs(workspace: Path):
    """Runs marked completed whose report is written (the pipeline writes it right after)."""
    try:
        runs = Store(workspace, read_only=True, lock_timeout=5).list_runs()
    except StoreError:
        return []
    done = runs.loc[runs["status"] == "completed", "run_id"]
    return [r for r in done if (workspace / "reports" / f"{r}.html").is_file()]


def running_runs(workspace: Path):
    try:
        runs = Store(workspace, read_only=True, lock_timeout=5).list_runs()
    except StoreError:
        return []
    return runs.loc[runs["status"] == "running", "run_id"].tolist()


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_served_schedule_runs_land_in_the_store_one_at_a_time(tmp_path):
    workspace = tmp_path / "ws"
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(HF_HUB_OFFLINE="1", PREFECT_RUNNER_POLL_FREQUENCY="2", LOOKINGGLASS_WORKSPACE=str(workspace))
    cmd = [sys.executable, "-m", "flows.cli", "serve", "--interval", "4", "--corpus", "afinn", "--max-points", "24",
           "--depths", "2", "--n-betas", "2", "--no-networks", "--device", "cpu", "--workspace", str(workspace)]
    with open(log, "wb") as out:
        serve = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                 cwd=Path(__file__).resolve().parents[1])
    try:
        deadline = time.monotonic() + 300
        while len(completed_runs(workspace)) < 2 or not running_runs(workspace):   # then stop it mid-run
            assert serve.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, ("no two scheduled runs completed within 300 s:\n"
                                                 + log.read_text()[-3000:])
            time.sleep(0.5)
        in_flight = running_runs(workspace)
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=90)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
    text = log.read_text()
    url = re.search(r"starting a local Prefect server on (http://127\.0\.0\.1:\d+/api)", text).group(1)
    assert not healthy(url), "the managed Prefect server outlived serve"
    assert wait_gone(str(workspace)) == [], "processes outlived serve"
    store = Store(workspace, read_only=True)
    runs = [store.get_run(r) for r in store.list_runs()["run_id"]]
    assert not [r["run_id"] for r in runs if r["status"] == "running"]
    assert {store.get_run(r)["status"] for r in in_flight} <= {"interrupted", "completed"}
    done = [r for r in runs if r["status"] == "completed"]
    assert len(done) >= 2
    for run in done:
        assert [f["depth"] for f in store.load_run(run["run_id"])["fits"]] == [2]
        assert (workspace / "reports" / f"{run['run_id']}.html").is_file()
    # scheduled runs were serialised: each flow run started after the previous run had finished
    assert all(r["info"]["prefect"]["deployment_id"] for r in runs)
    runs.sort(key=lambda r: r["info"]["prefect"]["started_at"])
    for before, after in zip(runs, runs[1:]):
        assert before["finished_at"] is not None, before
        assert before["finished_at"] <= after["info"]["prefect"]["started_at"], (before, after)
