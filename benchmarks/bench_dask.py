"""Pricing on a Dask cluster (issue 10, "make bench-dask").

1. N = 300, d = 2, depth 3 at 0.1 beta_max: one complete pricing pass (threshold at 0.97 of the
   maximum, as a certifying pass near the optimum; no screen) and the certified fit in one
   process (numba on every core, as a plain fit prices) against a LocalCluster of 1 and 2 worker
   processes (one thread each); parallel efficiency ``T(1 worker) / (2 T(2 workers))`` (goal >= 85%).
2. N = 1,000, d = 2, depth 3 at 0.1 beta_max, certified, on a LocalCluster of one worker per core:
   wall time (goal <= 20 min on 2 cores), columns priced per second per worker (task compute time
   from the task stream), per-task overhead ``(P * pricing wall - task compute) / tasks`` (idle
   and tails included) and the time projected on 64 workers:
   ``serial + compute / 64 + tasks * overhead / 64 + passes * mean task time`` (one task's tail per pass).
   ``BENCH_DASK_N=600`` (any N) runs case 2 at another size.

Timings exclude numba compilation (every worker loads the kernels before the first pass).
"""
from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager

import joblib
import numba

from analysis import ReflectionLasso, estimator, lasso
from analysis.dictionary import Dictionary
from analysis.parallel import parallel_scorer
from analysis.pricing import price
from benchmarks.bench_lasso import _data

PROJECT_TO = 64


@contextmanager
def _cluster(n_workers: int):
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client, joblib.parallel_config(backend="dask"):
        yield client


@contextmanager
def _timed_pricing():
    """Wall time and columns of every ``price`` call made by a fit."""
    seen = {"s": 0.0, "columns": 0, "passes": 0}

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        res = price(*args, **kwargs)
        seen["s"] += time.perf_counter() - t0
        seen["columns"] += res.n_evaluated + res.n_degenerate
        seen["passes"] += 1
        return res

    lasso.price = estimator.price = timed
    try:
        yield seen
    finally:
        lasso.price = estimator.price = price


def _pass_s(D, r, scorer, threshold) -> float:
    """Wall seconds of a complete pass with the threshold of a certifying pass near the optimum (no screen:
    every column is evaluated; the first pass of a fit, which also takes the screening norms)."""
    t0 = time.perf_counter()
    res = price(D, r, top_k=256, threshold=threshold, scorer=scorer)
    assert res.complete and res.n_evaluated + res.n_degenerate == D.n_candidates
    return time.perf_counter() - t0


def _fit(X, y):
    t0 = time.perf_counter()
    model = ReflectionLasso(depth=3, max_candidates=10**10).fit(X, y)
    return model, time.perf_counter() - t0


def _efficiency() -> list[tuple[str, str]]:
    X, y = _data(300)
    D = Dictionary(X, 3)
    rc = y - y.mean()
    ReflectionLasso(depth=3).fit(X[:12], y[:12])              # compile the kernels in this process
    threshold = 0.97 * price(D, rc, top_k=1).max_score
    local_pass = _pass_s(D, rc, None, threshold)
    local, local_s = _fit(X, y)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    one_thread_pass = _pass_s(D, rc, None, threshold)
    numba.set_num_threads(threads)
    rows = [("N=300 d=2 L=3 at 0.1 beta_max: candidate columns", f"{D.n_candidates:,}"),
            (f"one process ({threads} numba threads): complete pass s", f"{local_pass:.2f}"),
            ("one process, one numba thread: complete pass s", f"{one_thread_pass:.2f}"),
            (f"one process ({threads} numba threads): certified fit s", f"{local_s:.1f}")]
    times = {}
    for workers in (1, 2):
        with _cluster(workers):
            scorer = parallel_scorer(D)
            pass_s = _pass_s(D, rc, scorer, threshold)
            tasks = scorer.n_tasks - workers
            model, fit_s = _fit(X, y)
        times[workers] = pass_s, fit_s
        rows += [(f"LocalCluster {workers} worker(s): complete pass s ({tasks} tasks)", f"{pass_s:.2f}"),
                 (f"LocalCluster {workers} worker(s): certified fit s", f"{fit_s:.1f}"),
                 ("  objective relative to one process",
                  f"{(model.objective_ - local.objective_) / local.objective_:.1e}")]
    (p1, f1), (p2, f2) = times[1], times[2]
    rows += [("parallel efficiency, pass: T(1 worker) / (2 T(2 workers))", f"{p1 / (2 * p2):.0%}"),
             ("parallel efficiency, fit", f"{f1 / (2 * f2):.0%}"),
             ("2 workers against one process, pass speed-up", f"{local_pass / p2:.2f}x")]
    return rows


def _large(N: int) -> list[tuple[str, str]]:
    from distributed import get_task_stream
    X, y = _data(N)
    workers = os.cpu_count() or 1
    with _cluster(workers) as client, get_task_stream(client) as stream, _timed_pricing() as seen:
        model, wall = _fit(X, y)
    tasks = [t for t in stream.data if str(t["key"]).startswith("_score_task")][workers:]     # minus warm-up
    compute = sum(s["stop"] - s["start"] for t in tasks for s in t["startstops"] if s["action"] == "compute")
    thr = seen["columns"] / compute
    overhead = max(0.0, workers * seen["s"] - compute) / len(tasks)
    serial = wall - seen["s"]
    complete = int(model.history_["complete"].sum())
    n_passes = seen["passes"]
    projected = serial + compute / PROJECT_TO + len(tasks) * overhead / PROJECT_TO + n_passes * compute / len(tasks)
    cert = model.certificate_
    return [(f"N={N:,} d=2 L=3 at 0.1 beta_max: candidate columns", f"{model.n_candidates_:,}"),
            (f"LocalCluster {workers} workers: time to certified s", f"{wall:.1f}"),
            ("  dictionary ratio", f"{cert['dictionary_ratio']:.9f}"),
            ("  pricing passes (complete at the final beta)", f"{n_passes} ({complete})"),
            ("  columns priced", f"{seen['columns']:,}"),
            ("  pricing wall s / outside pricing s", f"{seen['s']:.1f} / {serial:.1f}"),
            ("  pricing tasks / mean task s", f"{len(tasks)} / {compute / len(tasks):.3f}"),
            ("columns priced per second per worker", f"{thr / 1e6:.2f}M"),
            ("per-task overhead s (idle and tails included)", f"{overhead:.4f}"),
            ("  overhead / task time", f"{overhead / (compute / len(tasks)):.1%}"),
            (f"projected time on {PROJECT_TO} workers s", f"{projected:.1f}")]


def _print(rows) -> None:
    for key, value in rows:
        print(f"{key:<62}  {value:>16}", flush=True)


def main() -> None:
    _print(_efficiency())
    passes = logging.getLogger("analysis.lasso")                 # one line per pass of the long case
    passes.setLevel(logging.INFO)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("  %(asctime)s %(message)s"))
    passes.addHandler(handler)
    _print(_large(int(os.environ.get("BENCH_DASK_N", "1000"))))


if __name__ == "__main__":
    main()
