"""The restricted Lasso and column generation against cvxpy + Clarabel on materialised dictionaries."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import ReflectionLasso, lasso
from analysis.dictionary import Dictionary
from analysis.features import FoldFeatures
from analysis.lasso import DictionaryPricing, WorkingSet, column_generation, cvxpy_lasso, objective, solve_restricted
from analysis.pricing import price


def _rel(a, b):
    return abs(a - b) / max(abs(b), 1e-12)


@pytest.mark.parametrize("beta", [0.01, 0.3, 2.0])
def test_restricted_solve_is_exact_basic_and_matches_cvxpy(beta):
    rng = np.random.default_rng(3)
    A = rng.normal(size=(12, 30))
    A = np.hstack([A, A[:, :6], 2.0 - A[:, 6:9]])          # repeated and sign-flipped columns
    y = rng.normal(size=12)
    z, xi = solve_restricted(A, y, beta)
    zc, xc = cvxpy_lasso(A, y, beta)
    assert _rel(objective(A, z, xi, y, beta), objective(A, zc, xc, y, beta)) < 1e-9
    r = y - A @ z - xi
    S = np.flatnonzero(z)
    assert abs(r.sum()) < 1e-10
    assert np.allclose(A[:, S].T @ r, beta * np.sign(z[S]), rtol=0, atol=1e-10 * beta)
    assert np.abs(A.T @ r).max() <= beta * (1 + 1e-9)
    assert np.linalg.matrix_rank(A[:, S] - A[:, S].mean(axis=0)) == S.size   # basic: independent support


@pytest.mark.parametrize("N, ratio, seed", [(30, 3e-4, 2), (40, 3e-4, 3)])   # a basis exchange; rounding
def test_near_interpolating_restricted_solves_are_exact_without_the_interior_point_fallback(N, ratio, seed, caplog):
    """Noise on reflection-like columns at small beta: the support reaches rank N - 1 (entering columns in its
    span) and the KKT residual cannot reach 1e-10 beta in floating point; both once ended in Clarabel."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=(N, 2))
    W, b = rng.normal(size=(2, 2 * N)), rng.uniform(-1, 1, 2 * N)
    A = np.abs(np.abs(x @ W + b) - rng.uniform(0, 1, 2 * N))
    y = rng.normal(size=N)
    Ac = A - A.mean(axis=0)
    beta = ratio * np.abs(Ac.T @ (y - y.mean())).max()
    with caplog.at_level("INFO", logger="analysis.lasso"):
        z, xi = solve_restricted(A, y, beta)
    assert not caplog.records                                # no fallback, no unpolished solution
    zc, xc = cvxpy_lasso(A, y, beta)
    assert _rel(objective(A, z, xi, y, beta), objective(A, zc, xc, y, beta)) < 1e-7
    S = np.flatnonzero(z)
    assert S.size >= N - 3
    assert np.linalg.matrix_rank(Ac[:, S]) == S.size         # basic: independent support
    r = y - A @ z - xi
    assert np.allclose(A[:, S].T @ r, beta * np.sign(z[S]), rtol=0, atol=1e-6 * beta)
    assert np.abs(A.T @ r).max() <= beta * (1 + 1e-6)


def test_working_set_merges_equal_columns_up_to_sign_and_constant():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 2))
    ws = WorkingSet(6, 1, 0)
    added = ws.add(np.column_stack([a, a[:, 0], 5 - a[:, 1], np.ones(6)]), ["p", "q", "p2", "q2", "const"],
                   FoldFeatures.of(np.ones((5, 1))))
    assert added == 2 and len(ws) == 2
    p, q = ws.locate("p")[0], ws.locate("q")[0]
    assert {p, q} == {0, 1} and ws.locate("p2") == (p, 1.0) and ws.locate("q2") == (q, -1.0)
    assert ws.locate("const")[0] == -1
    assert ws.equivalents(p) == ["p2"] and ws.equivalents(q) == ["q2"]


CASES = [(d, depth, bias) for d in (1, 2, 3) for depth in (2, 3) for bias in (True, False)]


@pytest.mark.parametrize("d,depth,bias", CASES)
def test_column_generation_matches_cvxpy(d, depth, bias):
    """Same objective as cvxpy on the whole materialised dictionary, 1e-7 relative."""
    rng = np.random.default_rng(10 * d + depth + int(bias))
    N = {1: 12, 2: 10, 3: 8}[d]
    X = rng.normal(size=(N, d))
    y = rng.normal(size=N)
    fast = ReflectionLasso(depth=depth, bias=bias, beta=None).fit(X, y)
    ref = ReflectionLasso(depth=depth, bias=bias, beta=fast.beta_, solver="cvxpy").fit(X, y)
    assert _rel(fast.objective_, ref.objective_) < 1e-7
    assert fast.certificate_["dictionary_ratio"] <= 1 + 1e-6
    assert abs(fast.certificate_["duality_gap"]) < 1e-9 * max(1.0, fast.objective_)
    A, _ = Dictionary(X, depth, bias).materialize()
    zc, xc = cvxpy_lasso(A, y, fast.beta_)
    assert _rel(fast.objective_, objective(A, zc, xc, y, fast.beta_)) < 1e-7


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 10_000), depth=st.sampled_from([2, 3]), frac=st.floats(0.01, 0.9))
def test_random_instances_match_cvxpy(seed, depth, frac):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(9, 2))
    y = rng.normal(size=9)
    D = Dictionary(X, depth)
    beta = frac * price(D, y - y.mean()).max_score
    ws = WorkingSet(9, 2, depth - 2)
    sol = column_generation(DictionaryPricing(D), y, beta, ws, tol=1e-9)
    A, _ = D.materialize()
    zc, xc = cvxpy_lasso(A, y, beta)
    assert _rel(sol.objective, objective(A, zc, xc, y, beta)) < 1e-7
    assert np.abs(A.T @ sol.residual).max() <= beta * (1 + 1e-9)


def test_path_warm_starts_equal_cold_fits():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(12, 2))
    y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=12)
    model = ReflectionLasso(depth=3, n_betas=5).fit(X, y)
    path = model.path_
    assert list(path.columns) == ["beta", "objective", "n_features", "dictionary_ratio", "duality_gap"]
    assert len(path) == 5 and np.all(np.diff(path["beta"]) < 0)
    assert np.isclose(path["beta"].iloc[0], model.beta_max_)
    assert _rel(path["objective"].iloc[0], 0.5 * np.sum((y - y.mean()) ** 2)) < 1e-12
    assert np.isclose(path["beta"].iloc[-1], model.beta_) and np.isclose(model.beta_, 0.1 * model.beta_max_)
    for beta, obj in zip(path["beta"][1:], path["objective"][1:]):
        cold = ReflectionLasso(depth=3, beta=beta).fit(X, y)
        assert _rel(obj, cold.objective_) < 1e-9
    assert np.all(path["dictionary_ratio"] <= 1 + 1e-6)


def test_beta_above_beta_max_selects_nothing():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(8, 1)), rng.normal(size=8)
    model = ReflectionLasso(depth=2, beta=1.0).fit(X, y)
    big = ReflectionLasso(depth=2, beta=1.01 * model.beta_max_).fit(X, y)
    assert len(big.features_) == 0 and np.isclose(big.intercept_, y.mean())
    assert np.isclose(big.objective_, 0.5 * np.sum((y - y.mean()) ** 2))


def _cached(seed: int, N: int, size: int):
    """A cache of ``size`` columns filled by a complete pass at a random centred residual on random data:
    ``(rng, materialised A, its ids, r, source)``."""
    rng = np.random.default_rng(seed)
    D = Dictionary(rng.normal(size=(N, 2)), 3)
    A, ids = D.materialize()
    r = rng.normal(size=N)
    r -= r.mean()
    src = DictionaryPricing(D, cache_size=size)
    src.first_pass(r, 0.0, 8)
    return rng, A, ids, r, src


def test_near_cache_keeps_the_best_columns_of_a_complete_pass_and_scores_them_exactly():
    """A complete pass refills the cache with its ``size`` best columns above the floor (brute force on the
    materialised dictionary); re-scoring the cache at another residual gives ``|A_j . r|`` exactly."""
    rng, A, ids, r, src = _cached(11, 13, 500)
    brute = np.abs(A.T @ r)
    assert len(src.cache) == 500
    assert set(src.cache.ids.tolist()) == set(ids[np.argsort(-brute, kind="stable")[:500]].tolist())
    r2 = rng.normal(size=13)
    r2 -= r2.mean()
    pos = np.searchsorted(ids, src.cache.ids)
    assert np.allclose(src.cache.scores(r2), np.abs(A[:, pos].T @ r2), rtol=1e-12, atol=1e-12)


def test_near_cache_violators_are_every_cached_column_above_the_threshold():
    """``NearCache.violators`` scores only the columns its bound (the scores kept at earlier residuals plus the
    column norm times the distance to their span) cannot exclude: it must still return exactly the cached
    columns above the threshold (brute force), for residuals near the earlier ones (bound used) and far."""
    rng, A, ids, r, src = _cached(5, 14, 2000)
    src.cache.violators(r, np.inf)                                      # the cache's parameters: invalid ids dropped
    Ac = A[:, np.searchsorted(ids, src.cache.ids)]
    Ac = Ac - Ac.mean(axis=0)
    scored, step, dots = [], rng.normal(size=14), src.cache._dots
    src.cache._dots = lambda r_, where, floor: \
        scored.append(len(src.cache) if where is None else len(where)) or dots(r_, where, floor)
    for k in range(12):
        rk = r + (0.01 if k % 3 else 1.0) * k * step + 1e-3 * rng.normal(size=14)
        rk -= rk.mean()
        brute = np.abs(Ac.T @ rk)
        threshold = np.unique(brute.round(9))[-41:-39].mean()               # equal columns: no score at it
        where, s = src.cache.violators(rk, threshold)
        assert set(where.tolist()) == set(np.flatnonzero(brute > threshold).tolist()), k
        assert np.allclose(s, brute[where], rtol=1e-12, atol=1e-12)
    assert min(scored) < 0.5 * len(src.cache)                          # the bound excluded columns some time


@pytest.mark.parametrize("x_scale, shift, r_scale", [(1.0, 0.0, 1.0), (1e-6, 0.0, 1e6), (1e6, 0.0, 1e-6),
                                                     (1.0, 1e6, 1.0), (1e-3, 0.0, 1e-30)])
def test_float32_cache_dots_stay_within_their_rigorous_bound(x_scale, shift, r_scale):
    """``_dots32``: every float32 value is within its bound of the exact ``A_j . r`` (``math.fsum`` of the float64
    column values), at hard scales of the data (x1e-6, x1e6, shifted by 1e6: the offset cancels 1e6) and the
    residual; the bound is not vacuous; with a floor, every column at or above it is exact (float64) and only
    columns below it keep a float32 value."""
    rng = np.random.default_rng(8)
    N = 37
    X = rng.normal(size=(N, 2)) * x_scale + shift
    W = rng.normal(size=(3000, 2))
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    b, C = -W @ X.mean(axis=0) + x_scale * rng.normal(size=3000), x_scale * np.abs(rng.normal(size=(3000, 1)))
    f = FoldFeatures(W, b, C)
    A = f.values(X)                                  # random folds through the data: b cancels w . x at the shift
    r = rng.normal(size=N) * r_scale
    r -= r.mean()
    exact = np.array([math.fsum(A[:, j] * r) for j in range(A.shape[1])])
    v, e = lasso._dots32(X, r, f.W, f.b, f.C, 1e300, True)                  # float32 for every column
    assert np.all(e > 0) and np.all(np.abs(v - exact) <= e)
    h = np.abs(f.b) + f.C.sum(axis=1) + (np.abs(X) @ np.abs(f.W.T)).max(axis=0)     # bounds every |phi_i|
    assert np.all(e <= 1e-4 * np.abs(r).sum() * h)                        # float32 accuracy, not a vacuous bound
    floor = np.quantile(np.abs(exact), 0.8)
    v, e = lasso._dots32(X, r, f.W, f.b, f.C, floor, True)
    exact_at = e == 0
    assert np.all(exact_at[np.abs(exact) >= floor * (1 + 1e-12)])
    assert np.all(np.abs(v[~exact_at]) + e[~exact_at] < floor)
    assert np.all(np.abs(v - exact)[exact_at] <= 1e-13 * np.abs(r).sum() * h[exact_at])     # float64 rounding only
    assert np.mean(~exact_at) <= 0.8 and (shift or np.mean(~exact_at) > 0.5)   # unshifted: most stayed in float32


def test_make_basic_removes_dependent_columns_keeping_the_fit_and_not_raising_l1():
    """A support with two dependent columns (a repeat, and a sum of two others): ``_make_basic`` moves along null
    directions until the support is independent, with the same fitted values and an l1 norm no larger."""
    from analysis.lasso import _make_basic
    rng = np.random.default_rng(5)
    Ac = rng.normal(size=(12, 6))
    Ac[:, 3] = Ac[:, 0]
    Ac[:, 5] = Ac[:, 1] + Ac[:, 2]
    Ac -= Ac.mean(axis=0)
    z = np.array([0.7, 0.4, -0.3, 0.5, 0.0, 0.2])
    basic = _make_basic(Ac, z.copy())
    S = np.flatnonzero(basic)
    assert np.linalg.matrix_rank(Ac[:, S]) == S.size and S.size <= 3
    assert np.allclose(Ac @ basic, Ac @ z, atol=1e-12)
    assert np.abs(basic).sum() <= np.abs(z).sum() + 1e-12
    independent = np.array([0.7, 0.0, -0.3, 0.0, 0.1, 0.0])
    assert np.array_equal(_make_basic(Ac, independent.copy()), independent)
