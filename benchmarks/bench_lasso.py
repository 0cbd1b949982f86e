"""ReflectionLasso against cvxpy + Clarabel, the scale case and paths to small beta (issues 2 and 9, "make bench").

d = 2, depth 3 throughout; every timing (wall clock, and CPU seconds of the process, all threads,
which a shared machine distorts less) excludes the one-off numba compilation and every fit is
certified over the whole dictionary (dictionary ratio <= 1 + 1e-6, printed as "certified"). Targets:
smooth (sin 2 x0 + |x1|), sign (XOR of the coordinates' signs, sign(x0 x1)) and noise, all + 0.1 N(0, 1)
except noise (N(0, 1)). Each case runs in a fresh process, so its peak RSS is its own.

1. N = 40 at 0.1 beta_max and N = 60 at 2e-3 beta_max: fit time against cvxpy + Clarabel on the
   materialised dictionary, same beta, and the relative objective difference (goal: >= 30x at 1e-7).
2. N = 300 (53.5M candidate columns) at 0.1 beta_max: time to a certified optimum, columns priced.
3. N = 300, one fit at 5e-4 beta_max on the sign target (goal: <= 60 s).
4. N = 300, a warm-started path of 20 betas from beta_max to 1e-3 beta_max for each target, every beta
   certified (goal: <= 60 s each and <= 4 GB in all).

The reference of the scale cases, measured in the same process: one complete pricing pass over the
whole dictionary (the beta_max pass); their time is also printed in those passes, which the machine's
load affects less than seconds. ``LG_BENCH_N`` shrinks N = 300 for a quick run (e.g. 120: 3.4M columns);
``LG_BENCH_CASES`` runs some cases only, by their index in ``CASES`` (0: N = 300 at 0.1 beta_max, 1-2: against
cvxpy, 3: 5e-4 beta_max, 4-6: the paths).
"""
from __future__ import annotations

import os
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np

from analysis import ReflectionLasso
from analysis.dictionary import Dictionary
from analysis.lasso import cvxpy_lasso, objective


def _data(N: int, target: str = "smooth", seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(N, 2))
    noise = rng.normal(size=N)
    y = {"smooth": np.sin(2 * X[:, 0]) + np.abs(X[:, 1]) + 0.1 * noise,
         "sign": np.sign(X[:, 0] * X[:, 1]) + 0.1 * noise, "noise": noise}[target]
    return X, y


def _compile() -> None:
    """Every numba kernel a case reaches, compiled (or loaded from numba's cache) outside the timings: a single fit,
    and a short path down to 1e-3 beta_max, which reaches the cache's kernels (``NearCache``) and the passes
    against several residuals."""
    X, y = _data(12)
    ReflectionLasso(depth=3).fit(X, y)
    X, y = _data(30, "sign")
    ReflectionLasso(depth=3, n_betas=3, beta_min_ratio=1e-3).fit(X, y)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _beta_max(X, y) -> float:
    return ReflectionLasso(depth=3, beta=1e300).fit(X, y).beta_max_


def _versus_cvxpy(N: int, ratio: float | None, target: str) -> list[tuple[str, str]]:
    X, y = _data(N, target)
    beta = None if ratio is None else ratio * _beta_max(X, y)
    t0, c0 = time.perf_counter(), time.process_time()
    model = ReflectionLasso(depth=3, beta=beta).fit(X, y)
    ours, ours_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    A, _ = Dictionary(X, 3).materialize(max_columns=10**6)
    z, xi = cvxpy_lasso(A, y, model.beta_)
    ref, ref_cpu = time.perf_counter() - t0, time.process_time() - c0
    ref_obj = objective(A, z, xi, y, model.beta_)
    tag = f"N={N} {target} {model.beta_ / model.beta_max_:.3g} beta_max"
    return [(f"{tag}: columns", f"{A.shape[1]:,}"),
            ("  ReflectionLasso fit s (wall / CPU)", f"{ours:.3f} / {ours_cpu:.3f}"),
            ("  cvxpy+Clarabel (materialise + solve) s (wall / CPU)", f"{ref:.3f} / {ref_cpu:.3f}"),
            ("  speed-up (wall / CPU)", f"{ref / ours:.1f}x / {ref_cpu / ours_cpu:.1f}x"),
            ("  objective ReflectionLasso / cvxpy", f"{model.objective_:.12g} / {ref_obj:.12g}"),
            ("  relative difference", f"{(model.objective_ - ref_obj) / ref_obj:.2e}"),
            ("  features (basic solution) / cvxpy non-zeros > 1e-6", f"{len(model.features_)} / "
                                                                      f"{int(np.sum(np.abs(z) > 1e-6))}")]


def _fit_rows(tag: str, model, wall: float, cpu: float, ref: tuple[float, float]) -> list[tuple[str, str]]:
    h = model.history_
    cert = model.certificate_
    worst = model.path_["dictionary_ratio"].max()
    complete = h[h["complete"].astype(bool) & (h["evaluated"] > 0)]
    shared = h["shared"].clip(lower=1) if "shared" in h else 1       # betas that one pass of a path priced
    n_complete = (1.0 / shared[complete.index]).sum() if "shared" in h else len(complete)
    priced = int((h["evaluated"] / shared).sum()) + model.n_candidates_
    return [(f"{tag}: time to certified s (wall / CPU)", f"{wall:.1f} / {cpu:.1f}"),
            ("  in complete passes of the same run (wall / CPU)", f"{wall / ref[0]:.1f} / {cpu / ref[1]:.1f}"),
            ("  beta_max pass / restricted solves / pricing s",
             f"{model.timings_['beta_max_s']:.1f} / {h['solve_s'].sum():.1f} / {h['price_s'].sum():.1f}"),
            ("  certified (dictionary ratio, worst beta)",
             f"{'yes' if worst <= 1 + model.tol else 'NO'} ({worst:.9f})"),
            ("  duality gap", f"{cert['duality_gap']:.2e}"),
            ("  betas / passes / complete passes that priced", f"{len(model.path_)} / {len(h)} / {n_complete:.0f}"),
            ("  columns priced (beta_max pass included)", f"{priced:,}"),
            ("  largest working set / support / atoms cached",
             f"{int(h['working_set'].max())} / {int(h['support'].max())} / {int(h['atoms'].max()):,}"),
            ("  features", f"{len(model.features_)}")]


def _scale(ratio: float | None, target: str, path: int | None = None) -> list[tuple[str, str]]:
    N = int(os.environ.get("LG_BENCH_N", 300))
    X, y = _data(N, target)
    t0, c0 = time.perf_counter(), time.process_time()
    beta_max = _beta_max(X, y)                           # the reference: one complete pass
    ref = time.perf_counter() - t0, time.process_time() - c0
    beta = None if path or ratio is None else ratio * beta_max
    t0, c0 = time.perf_counter(), time.process_time()
    model = ReflectionLasso(depth=3, beta=beta, n_betas=path or 1, beta_min_ratio=ratio if path else None).fit(X, y)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    what = f"path of {path} betas to {ratio:g}" if path else f"{model.beta_ / model.beta_max_:.3g}"
    return [(f"N={N} one complete pass (reference) s (wall / CPU)", f"{ref[0]:.1f} / {ref[1]:.1f}")] + \
        _fit_rows(f"N={N} {target} {what} beta_max ({model.n_candidates_:,} columns)", model, wall, cpu, ref)


CASES = [(_scale, None, "smooth"), (_versus_cvxpy, 40, None, "smooth"), (_versus_cvxpy, 60, 2e-3, "sign"),
         (_scale, 5e-4, "sign")] + [(_scale, 1e-3, t, 20) for t in ("smooth", "sign", "noise")]


def _run(case) -> list[tuple[str, str]]:
    """One case in this (fresh) process, its own peak RSS last."""
    _compile()
    rows = case[0](*case[1:])
    return rows + [("  peak RSS MB (this case's process)", f"{_peak_mb():.0f}")]


def main() -> None:
    """Every case, or those whose indices in ``CASES`` are listed in ``LG_BENCH_CASES`` (e.g. "4,5,6": the paths)."""
    pick = os.environ.get("LG_BENCH_CASES")
    for i, case in enumerate(CASES):
        if pick and str(i) not in pick.replace(" ", "").split(","):
            continue
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            rows = pool.submit(_run, case).result()
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            print(f"{key:<{width}}  {value:>28}", flush=True)


if __name__ == "__main__":
    main()
