"""ReflectionLasso against cvxpy + Clarabel, and the scale case (issue 2, "make bench").

1. depth 3, d = 2, N = 40 random points: fit time of ReflectionLasso (column generation with
   implicit pricing) against cvxpy + Clarabel on the materialised dictionary, same beta; the
   relative objective difference (goal: >= 30x faster at 1e-7).
2. N = 300, d = 2, depth 3 (tens of millions of columns): time to a certified optimum
   (dictionary ratio <= 1 + 1e-6), peak memory (process high-water mark, measured first),
   columns priced. Both timings exclude the one-off numba compilation.
"""
from __future__ import annotations

import resource
import time

import numpy as np

from analysis import ReflectionLasso
from analysis.dictionary import Dictionary
from analysis.lasso import cvxpy_lasso, objective


def _data(N: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(N, 2))
    return X, np.sin(2 * X[:, 0]) + np.abs(X[:, 1]) + 0.1 * rng.normal(size=N)


def _versus_cvxpy() -> list[tuple[str, str]]:
    X, y = _data(40)
    ReflectionLasso(depth=3).fit(X[:12], y[:12])            # compile the numba kernels outside the timing
    t0 = time.perf_counter()
    model = ReflectionLasso(depth=3).fit(X, y)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    A, _ = Dictionary(X, 3).materialize()
    z, xi = cvxpy_lasso(A, y, model.beta_)
    ref = time.perf_counter() - t0
    ref_obj = objective(A, z, xi, y, model.beta_)
    return [("N=40 d=2 L=3: columns", f"{A.shape[1]:,}"),
            ("ReflectionLasso fit s", f"{ours:.3f}"),
            ("cvxpy+Clarabel (materialise + solve) s", f"{ref:.3f}"),
            ("speed-up", f"{ref / ours:.1f}x"),
            ("objective ReflectionLasso", f"{model.objective_:.12g}"),
            ("objective cvxpy", f"{ref_obj:.12g}"),
            ("relative difference", f"{(model.objective_ - ref_obj) / ref_obj:.2e}"),
            ("features (basic solution) / cvxpy non-zeros > 1e-6", f"{len(model.features_)} / "
                                                                    f"{int(np.sum(np.abs(z) > 1e-6))}")]


def _scale() -> list[tuple[str, str]]:
    X, y = _data(300)
    ReflectionLasso(depth=3).fit(X[:12], y[:12])            # compile the numba kernels outside the timing
    t0 = time.perf_counter()
    model = ReflectionLasso(depth=3, tol=1e-6).fit(X, y)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cert = model.certificate_
    history = model.history_.to_dict(orient="records")
    return [("N=300 d=2 L=3: candidate columns", f"{model.n_candidates_:,}"),
            ("time to certified s", f"{wall:.1f}"),
            ("  of which beta_max pass s", f"{model.timings_['beta_max_s']:.1f}"),
            ("dictionary ratio", f"{cert['dictionary_ratio']:.9f}"),
            ("duality gap", f"{cert['duality_gap']:.2e}"),
            ("pricing passes (complete)", f"{len(history)} ({sum(h['complete'] for h in history)})"),
            ("columns priced", f"{sum(h['evaluated'] for h in history) + model.n_candidates_:,}"),
            ("working set atoms", f"{history[-1]['working_set']:,}"),
            ("features", f"{len(model.features_)}"),
            ("peak RSS MB (whole process, before the cvxpy case)", f"{peak:.0f}")]


def main() -> None:
    rows = _scale() + _versus_cvxpy()
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value:>16}")


if __name__ == "__main__":
    main()
