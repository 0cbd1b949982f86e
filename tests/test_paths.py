"""Regularisation paths down to small beta against cvxpy + Clarabel on the materialised dictionary,
and the working-set policy (it scales with the support, not with the pricing batch)."""
import numpy as np
import pytest

from analysis import ReflectionLasso
from analysis.dictionary import Dictionary
from analysis.lasso import cvxpy_lasso, objective


def _rel(a, b):
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("d,depth,N,target", [(1, 3, 16, "smooth"), (2, 2, 16, "sign"), (2, 3, 12, "noise")])
def test_path_to_small_beta_matches_cvxpy_at_every_beta(d, depth, N, target):
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


def test_pricing_collects_near_violators_and_screens_per_point_set(monkeypatch):
    """``collect`` returns every column above it; cells of one point set are skipped only when safe."""
    from analysis.pricing import price
    monkeypatch.setattr("analysis.pricing.GAP_POINT_EVALS", 0)
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
    priced = h[h["complete"].astype(bool) & (h["evaluated"] > 0)].groupby("beta").size()
    first = h[h["beta"] == path["beta"].iloc[0]]
    assert len(first) == 1 and first["evaluated"].iloc[0] == 0 and first["complete"].iloc[0]
    assert priced.sum() <= len(path) and priced.max() <= 2        # 18 complete passes before the cache
    assert np.all(path["dictionary_ratio"] <= 1 + 1e-6)
    A, _ = Dictionary(X, 3).materialize()
    for row in path.iloc[[6, -1]].itertuples():
        z, xi = cvxpy_lasso(A, y, row.beta)
        assert _rel(row.objective, objective(A, z, xi, y, row.beta)) < 1e-7, row.beta
