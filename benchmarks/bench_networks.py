"""Convex Lasso against non-convex Adam training of the same parallel network (issue 4).

N = 100 points in 1-D and 2-D, depth 2 and 3, beta = 0.05 beta_max: Lasso solve time against
Adam's time until its objective is within 1% of the Lasso objective, from one run, with the
final relative gap (negative in 2-D means the network beat the dictionary, a restriction there).
"""
from __future__ import annotations

import time

import numpy as np

from analysis.dictionary import Dictionary
from analysis.pricing import price
from analysis.training import compare_with_lasso

N = 100
CASES = [(1, 2), (1, 3), (2, 2), (2, 3)]
CVXPY_MAX_COLUMNS = 20_000


def _data(d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(N, d))
    y = np.sin(2 * X[:, 0]) + (np.abs(X[:, 1]) if d > 1 else 0.0) + 0.1 * rng.normal(size=N)
    return X, y


def _lasso(X, y, depth, beta):
    """``(objective, seconds, n_features, lower_bound, solver)`` from ReflectionLasso,
    else cvxpy on small dictionaries."""
    try:
        from analysis.estimator import ReflectionLasso
    except ImportError:
        ReflectionLasso = None
    t0 = time.perf_counter()
    if ReflectionLasso is not None:
        est = ReflectionLasso(depth=depth, beta=beta).fit(X, y)
        return (est.objective_, time.perf_counter() - t0, int(np.count_nonzero(est.coef_)),
                est.certificate_.get("lower_bound"), "ReflectionLasso")
    D = Dictionary(X, depth)
    if D.n_candidates > CVXPY_MAX_COLUMNS:
        return None
    import cvxpy as cp

    A, _ = D.materialize()
    z, xi = cp.Variable(A.shape[1]), cp.Variable()
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(A @ z + xi - y) + beta * cp.norm1(z)))
    prob.solve(solver=cp.CLARABEL)
    return prob.value, time.perf_counter() - t0, int(np.sum(np.abs(z.value) > 1e-6)), None, "cvxpy"


def main() -> None:
    print(f"{'case':<14}{'solver':<16}{'lasso s':>9}{'adam s':>9}{'to 1% s':>9}{'adam/lasso':>11}"
          f"{'lasso obj':>11}{'adam obj':>11}{'gap':>9}{'gap LB':>9}")
    for d, depth in CASES:
        X, y = _data(d)
        beta = 0.05 * price(Dictionary(X, depth), y - y.mean(), top_k=1).max_score
        case = f"d={d} L={depth}"
        lasso = _lasso(X, y, depth, beta)
        if lasso is None:
            print(f"{case:<14}skipped: needs analysis.estimator.ReflectionLasso (dictionary too large for cvxpy)")
            continue
        objective, seconds, nnz, lower_bound, solver = lasso
        width = max(2 * nnz, 16)
        report = compare_with_lasso(X, y, depth, beta, objective, lower_bound=lower_bound, widths=(width,),
                                    seeds=(0,), architectures=("parallel",), max_epochs=5000,
                                    plateau=(300, 1e-7), lasso_time_s=seconds, progress=False)
        run = report.runs[0].to_dict()
        hit = run["time_to_1pct_s"]
        cells = [(run["wall_time_s"], ".2f"), (hit, ".2f"), (None if hit is None else hit / seconds, ".2f"),
                 (objective, ".5f"), (run["best_objective"], ".5f"), (run["relative_gap"], ".2%"),
                 (run["gap_to_lower_bound"], ".2%")]
        widths = (9, 9, 11, 11, 11, 9, 9)
        row = "".join(f"{'-' if v is None else format(v, spec):>{w}}" for (v, spec), w in zip(cells, widths))
        print(f"{case:<14}{solver:<16}{seconds:>9.2f}{row}")
    print("adam/lasso = Adam time to within 1% of the Lasso objective / Lasso solve time ('-': never within 1%); "
          f"parallel network, width max(2 nnz, 16), one seed, <= 5000 epochs, N={N}")


if __name__ == "__main__":
    main()
