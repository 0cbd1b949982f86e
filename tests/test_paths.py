"""Regularisation paths down to small beta against cvxpy + Clarabel on the materialised dictionary,
and the working-set policy (it scales with the support, not with the pricing batch)."""
import numpy as np
import pytest

from analysis import ReflectionLasso
from analysis.dictionary import Dictionary
from analysis.lasso import cvxpy_lasso, objective


def _rel(a, b):
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("d,depth,N,target,group", [(1, 3, 16, "smooth", 8), (2, 2, 16, "sign", 2),
                                                   (2, 3, 12, "noise", 4)])
def test_path_to_small_beta_matches_cvxpy_at_every_beta(d, depth, N, target, group, monkeypatch):
    monkeypatch.setattr("analysis.estimator.PATH_GROUP", group)
    rng = np.random.default_rng(100 * d + 10 * depth + N)
    X = rng.uniform(-1, 1, size=(N, d))
    noise = rng.normal(size=N)
    y = {"smooth": np.sin(3 * X[:, 0]) + 0.1 * noise, "sign": np.sign(X[:, 0] * X[:, -1]) + 0.1 * noise,
         "noise": noise}[target]
    model = ReflectionLasso(depth=depth, n_betas=6, beta_min_ratio=2e-3).fit(X, y)
    path = model.path_
    assert len(path) == 6 and path["beta"].min() < 1e-2 * model.beta_max_
    assert set(model.history_["beta"]) == set(path["beta"])            # every beta's passes are recorded
    A, _ = Dictionary(X, depth).materialize()
    scale = 0.5 * np.sum((y - y.mean()) ** 2)
    for row in path.itertuples():
        z, xi = cvxpy_lasso(A, y, row.beta)
        ref = objective(A, z, xi, y, row.beta)
        assert _rel(row.objective, ref) < 1e-7, row.beta
        assert row.dictionary_ratio <= 1 + 1e-6
        assert abs(row.duality_gap) <= 1e-9 * scale
    r = y - model.predict(X)                                            # the final fit, over the whole dictionary
    assert np.abs((A - A.mean(axis=0)).T @ r).max() <= model.beta_ * (1 + 1e-6)


def test_working_set_scales_with_the_support():
    """Issue 9: at 2.4e-3 beta_max the working set used to grow by ~1,024 atoms per pass (6,798 atoms
    for 54 features); now each restricted solve uses at most max(2 |support|, 64) atoms."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(40, 2))
    y = np.sign(X[:, 0] * X[:, 1]) + 0.1 * rng.normal(size=40)
    beta_max = ReflectionLasso(depth=3, beta=1e9).fit(X, y).beta_max_
    model = ReflectionLasso(depth=3, beta=3e-3 * beta_max).fit(X, y)
    h = model.history_
    assert model.certificate_["dictionary_ratio"] <= 1 + 1e-6
    n_features = len(model.features_)
    assert n_features >= 20
    assert h["working_set"].max() <= max(2 * h["support"].max(), 64) + 2
    assert h["working_set"].max() <= 3 * n_features + 64


def test_pricing_collects_near_violators_and_screens_per_point_set():
    """``collect`` returns every column above it; cells of one point set are skipped only when safe."""
    from analysis.pricing import price
    rng = np.random.default_rng(7)
    X = rng.normal(size=(14, 2))
    r = rng.normal(size=14)
    r -= r.mean()
    D = Dictionary(X, 3)
    A, ids = D.materialize()
    brute = np.abs(A.T @ r)
    t, c = np.quantile(brute, 0.99), np.quantile(brute, 0.95)
    first = price(D, r, top_k=10**6, threshold=t, collect=c)
    assert set(first.ids.tolist()) == set(ids[brute > c].tolist())
    r2 = r + 1e-3 * rng.normal(size=14)
    r2 -= r2.mean()
    brute2 = np.abs(A.T @ r2)
    again = price(D, r2, top_k=10**6, threshold=t, screen=first.screen)
    assert set(again.ids.tolist()) == set(ids[brute2 > t].tolist())
    assert again.bound >= brute2.max() - 1e-12 and again.n_evaluated < 0.5 * len(ids)


def test_a_fine_path_prices_the_whole_dictionary_about_once_per_beta():
    """Issue 9: along a fine path (consecutive betas within NearCache's reach) the columns a beta needs come
    from the cache of the previous complete pass, so most betas take one complete pass, the certifying one;
    beta_max is certified by the beta_max pass itself. Two betas checked against cvxpy, one below 1e-2."""
    rng = np.random.default_rng(3)
    X = rng.uniform(-2, 2, size=(22, 2))
    y = np.sign(X[:, 0] * X[:, 1]) + 0.1 * rng.normal(size=22)
    model = ReflectionLasso(depth=3, n_betas=14, beta_min_ratio=3e-3).fit(X, y)
    h, path = model.history_, model.path_
    priced = h[h["complete"].astype(bool) & (h["evaluated"] > 0)]
    first = h[h["beta"] == path["beta"].iloc[0]]
    assert len(first) == 1 and first["evaluated"].iloc[0] == 0 and first["complete"].iloc[0]
    assert first["certified_by"].iloc[0] == 0                     # by the beta_max pass
    n_passes = (1.0 / priced["shared"]).sum()                      # complete passes, each shared by its betas
    assert n_passes <= len(path) / 2                               # one per beta before passes were shared
    certified = h[h["certified_by"] >= 0]
    assert sorted(certified["beta"]) == sorted(path["beta"])       # every beta certified once, by a known pass
    assert np.all(path["dictionary_ratio"] <= 1 + 1e-6)
    A, _ = Dictionary(X, 3).materialize()
    for row in path.iloc[[6, -1]].itertuples():
        z, xi = cvxpy_lasso(A, y, row.beta)
        assert _rel(row.objective, objective(A, z, xi, y, row.beta)) < 1e-7, row.beta


@pytest.mark.parametrize("cache,group,stale", [(False, 3, False), (True, 5, False), (True, 4, True)])
def test_a_beta_is_certified_only_when_no_column_of_the_dictionary_violates(cache, group, stale):
    """``path_generation`` directly, against the materialised dictionary: a beta's reported bound is the
    brute-force maximum of ``|A_j . r|`` at its residual, it is certified only when that is <= beta (1 + tol),
    and betas a shared pass did not certify (many without the cache, or with a cache never refilled, where
    ``column_generation`` finishes them) are certified by a later one."""
    from analysis.lasso import DictionaryPricing, WorkingSet, add_dictionary_columns, beta_grid, path_generation
    rng = np.random.default_rng(11)
    X = rng.uniform(-2, 2, size=(18, 2))
    y = np.sign(X[:, 0] * X[:, 1]) + 0.1 * rng.normal(size=18)
    D = Dictionary(X, 3)
    A, _ = Dictionary(X, 3).materialize()
    Ac = A - A.mean(axis=0)
    source = DictionaryPricing(D, cache=cache)
    first = source.first_pass(y - y.mean(), 0.0, 64)
    if stale:
        source.cache.refill = lambda *a, **k: source.cache.drop_collected()
    ws = WorkingSet(18, 2, 1)
    add_dictionary_columns(ws, D, first.ids)
    betas = beta_grid(first.max_score, 2e-3 * first.max_score, 9)
    tol = 1e-6
    sols = path_generation(source, y, betas, ws, tol=tol, group=group)
    failed = 0
    for beta, sol in zip(betas, sols):
        brute = np.abs(Ac.T @ sol.residual).max()
        assert np.isclose(sol.bound, brute, rtol=1e-9, atol=1e-12 * beta)
        assert brute <= beta * (1 + tol) * (1 + 1e-12)
        rows = sol.history
        assert [r["certified_by"] >= 0 for r in rows] == [False] * (len(rows) - 1) + [True]
        failed += len(rows) - 1
        z, xi = cvxpy_lasso(A, y, beta)
        assert _rel(sol.objective, objective(A, z, xi, y, beta)) < 1e-7
    assert failed > 0 or (cache and not stale)                    # the retry of uncertified betas ran
    if stale:
        assert any(h.get("shared") == 1 for sol in sols for h in sol.history)    # column_generation finished
