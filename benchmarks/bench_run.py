"""The default run as `make run` starts it once installed: ``lookingglass run --workspace WS`` in a fresh
workspace (Prefect creates its database, every text is embedded), then the same command again (Prefect's
database exists, the embeddings come from the cache). Wall time of each against the product's promise of
3 minutes on 2 cores, and the steps' own wall times from the store (fits, trainings and subsample refits run
partly at the same time, so they do not add up to the run).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMISE_S = 180.0      # README: the default run, installed, on 2 cores


def _load() -> float:
    return os.getloadavg()[0]


def _run(workspace: Path) -> tuple[str, float]:
    """``(run id, wall seconds)`` of ``lookingglass run --workspace workspace`` in a clean environment."""
    command = Path(sys.executable).with_name("lookingglass")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != "LOOKINGGLASS_WORKSPACE"}
    t0 = time.perf_counter()
    done = subprocess.run([str(command), "run", "--workspace", str(workspace)], capture_output=True, text=True,
                          env=env, cwd=workspace.parent)
    seconds = time.perf_counter() - t0
    if done.returncode:
        raise RuntimeError(f"lookingglass run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout.split()[1].rstrip(":"), seconds


def main() -> None:
    from data.store import Store
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "workspace"
        rows = []
        for label in ("first run (fresh workspace)", "second run (embeddings cached)"):
            load0 = _load()
            run_id, seconds = _run(workspace)
            timings = Store(workspace, read_only=True).get_run(run_id)["timings"] or {}
            rows.append((label, seconds, load0, _load(), timings))
    print(f"{'default run':<34}{'wall s':>8}{'/ promise':>10}{'load':>12}   steps s")
    for label, seconds, load0, load1, timings in rows:
        steps = ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
        print(f"{label:<34}{seconds:>8.1f}{seconds / PROMISE_S:>10.2f}{f'{load0:.1f}->{load1:.1f}':>12}   {steps}")
    print(f"second / first: {rows[1][1] / rows[0][1]:.2f}; promise: {PROMISE_S:.0f} s installed, on 2 cores")
