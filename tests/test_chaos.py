"""Chaos: ``lookingglass run`` killed with SIGKILL at random moments (while embedding, fitting, training or
writing the report), each kill followed by ``lookingglass runs`` and ``run --resume``, plus one run stopped by
SIGTERM. At the end every completed run is byte-identical to its first snapshot, every resumed run completed,
and no process of the project is left (the process table is scanned for the test's folder).

Real processes on a tiny BERT (``tests._tiny_bert``): the first run starts its own temporary Prefect server
(which must die with it), the others share one server to keep the test short.
"""
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data.store import Store
from tests._processes import process_table, wait_gone
from tests._tiny_bert import WORDS

pytestmark = [pytest.mark.slow, pytest.mark.server, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[1]

# a log line that shows the run at this point; the kill follows after a random 0-0.3 s
KILL_POINTS = {"embedding": "loading transformers model", "fitting": "fitting the Lasso on",
               "training": "stored fit of run", "report": "reports.sections - report of run"}


def run_digest(workspace: Path, run_id: str) -> str:
    """SHA-256 of everything the store holds for a run and of its report file."""
    bundle = Store(workspace, read_only=True).load_run(run_id)
    h = hashlib.sha256(json.dumps(bundle["run"], sort_keys=True, default=str).encode())
    h.update(bundle["points"].to_json().encode())
    for fit in bundle["fits"]:
        h.update(json.dumps({k: v for k, v in fit.items() if k not in ("features", "path")}, sort_keys=True,
                            default=str).encode())
        h.update(fit["features"].to_json().encode())
    h.update(json.dumps(bundle["networks"], sort_keys=True, default=str).encode())
    h.update((workspace / "reports" / f"{run_id}.html").read_bytes())
    return h.hexdigest()


class Cli:
    def __init__(self, tmp: Path, workspace: Path, corpus: Path, model: Path):
        self.tmp, self.workspace = tmp, workspace
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LOOKINGGLASS_"))}
        self.env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", CHAOS_TEST=str(tmp))
        self.args = ["--corpus", str(corpus), "--text-column", "text", "--target", "score", "--max-points", "30",
                     "--model", str(model), "--device", "cpu", "--depths", "2", "--n-betas", "2", "--widths", "4",
                     "--epochs", "1500", "--network-seeds", "0", "--workspace", str(workspace)]
        self.n_logs = 0

    def start(self, *args: str, api_url: str | None) -> tuple[subprocess.Popen, Path]:
        env = {**self.env, **({"PREFECT_API_URL": api_url} if api_url else {})}
        self.n_logs += 1
        log = self.tmp / f"cli-{self.n_logs}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "flows.cli", *args], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, cwd=ROOT)
        return proc, log

    def call(self, *args: str, api_url: str | None = None, timeout: float = 300) -> tuple[int, str]:
        proc, log = self.start(*args, api_url=api_url)
        proc.wait(timeout)
        return proc.returncode, log.read_text(errors="replace")

    def runs(self) -> dict[str, str]:
        code, out = self.call("runs", "--workspace", str(self.workspace), "--json")
        assert code == 0, out
        return {r["run_id"]: r["status"] for r in json.loads(out.strip().splitlines()[-1])}


def wait_for(log: Path, proc: subprocess.Popen, marker: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while marker not in log.read_text(errors="replace"):
        assert proc.poll() is None, f"the run ended before {marker!r}:\n" + log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"no {marker!r} within {timeout} s:\n" + log.read_text()[-3000:]
        time.sleep(0.05)


@pytest.fixture(scope="module")
def chaos_inputs(tmp_path_factory, tiny_bert):
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, 3, replace=False)) for _ in range(36)]
    path = tmp_path_factory.mktemp("chaos-corpus") / "words.csv"
    pd.DataFrame({"text": texts, "score": rng.uniform(-1, 1, len(texts)).round(3)}).to_csv(path, index=False)
    return path, tiny_bert


def test_runs_killed_at_random_moments_resume_and_leave_nothing_behind(tmp_path, chaos_inputs, capsys):
    from flows.serve import LocalServer
    corpus, model = chaos_inputs
    workspace = tmp_path / "ws"
    cli = Cli(tmp_path, workspace, corpus, model)
    seed = int(os.environ.get("CHAOS_SEED", time.time_ns() % 10_000))
    rng = random.Random(seed)
    before = process_table()
    points = list(KILL_POINTS)
    rng.shuffle(points)
    snapshots, covered, resumed = {}, [], []
    with LocalServer(tmp_path / "shared-prefect") as shared:
        for i, point in enumerate(points):
            api = shared.api_url if i else None   # the first run starts its own temporary Prefect server
            proc, log = cli.start("run", *cli.args, api_url=api)
            wait_for(log, proc, KILL_POINTS[point])
            time.sleep(rng.uniform(0, 0.3))
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            if i == 0:   # its server (and the watchdog) go with it
                assert wait_gone(str(workspace)) == [], "processes outlived a killed run"
            statuses = cli.runs()
            new = [r for r in statuses if r not in snapshots]
            assert len(new) == 1, (statuses, log.read_text()[-2000:])
            run_id = new[0]
            assert statuses[run_id] in ("interrupted", "completed"), statuses   # never "running" for ever
            covered.append(point)
            if statuses[run_id] == "interrupted":
                code, out = cli.call("run", "--resume", run_id, "--workspace", str(workspace), api_url=shared.api_url)
                assert code == 0, out[-3000:]
                resumed.append(run_id)
            assert Store(workspace, read_only=True).get_run(run_id)["status"] == "completed"
            snapshots[run_id] = run_digest(workspace, run_id)
            for earlier, digest in snapshots.items():
                assert run_digest(workspace, earlier) == digest, f"run {earlier} changed"

        # SIGTERM while training: the run stops, is recorded as interrupted, and its report matches the store
        proc, log = cli.start("run", *cli.args, api_url=shared.api_url)
        wait_for(log, proc, KILL_POINTS["training"])
        stopped_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        stop_s = time.monotonic() - stopped_at
        text = log.read_text()
        assert proc.returncode in (128 + signal.SIGTERM, 128 + signal.SIGINT), text[-3000:]
        run_id = [r for r in cli.runs() if r not in snapshots][0]
        time.sleep(1.0)                                  # nothing is written after the process ended
        bundle = Store(workspace, read_only=True).load_run(run_id)
        assert bundle["run"]["status"] == "interrupted" and "interrupted" in bundle["run"]["error"]
        shown = re.findall(rf"report of run {run_id}: \d+ points, (\d+) depths, (\d+) trainings", text)
        assert shown and shown[-1] == (str(len(bundle["fits"])), str(len(bundle["networks"]))), (shown, text[-2000:])
        assert (workspace / "reports" / f"{run_id}.html").is_file()

    left = wait_gone(str(tmp_path))
    after = process_table()
    with capsys.disabled():
        print(f"\nchaos (seed {seed}): {len(points)} SIGKILL loops, killed while {', '.join(covered)}; "
              f"{len(resumed)} resumed to completion; SIGTERM stop in {stop_s:.1f} s\n"
              f"process table before:\n{before}\nprocess table after:\n{after}")
    assert left == [], left
    assert set(covered) == set(KILL_POINTS)
    assert all(Store(workspace, read_only=True).get_run(r)["status"] == "completed" for r in snapshots)
    for run_id, digest in snapshots.items():
        assert run_digest(workspace, run_id) == digest


WATCHED = """
import subprocess, sys, time
from flows import _watchdog
_watchdog.watch()
adopted = subprocess.Popen(["sleep", "120"], start_new_session=True)   # its own session, as serve's server
_watchdog.adopt(adopted.pid)
found = subprocess.Popen(["sh", "-c", "sleep 120 & wait"])           # a child and a grandchild, found in /proc
time.sleep(1.5)
print(adopted.pid, found.pid, flush=True)
time.sleep(120)
"""


@pytest.mark.timeout(60)
def test_the_watchdog_ends_the_children_of_a_killed_process(tmp_path):
    from flows._watchdog import alive, start_time
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CHAOS_TEST": str(tmp_path)}
    parent = subprocess.Popen([sys.executable, "-c", WATCHED], stdout=subprocess.PIPE, env=env, text=True)
    adopted, found = map(int, parent.stdout.readline().split())
    children = {pid: start_time(pid) for pid in (adopted, found)}
    assert all(children.values()), "the children did not start"
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    assert wait_gone(str(tmp_path)) == []
    assert not any(alive(pid, started) for pid, started in children.items())
