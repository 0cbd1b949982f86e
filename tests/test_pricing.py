import numpy as np
import pytest

from analysis.dictionary import Dictionary
from analysis.pricing import price


def _setup(d, depth, bias=True, N=14, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, d))
    r = rng.normal(size=N)
    r -= r.mean()
    D = Dictionary(X, depth, bias)
    A, ids = D.materialize()
    return D, A, ids, r


@pytest.mark.parametrize("d,depth,bias", [(1, 3, True), (1, 4, True), (2, 2, True), (2, 3, True),
                                          (2, 3, False), (3, 3, True), (4, 2, True)])
def test_pricing_equals_brute_force(d, depth, bias):
    D, A, ids, r = _setup(d, depth, bias, N=10 if depth == 4 else 14)
    brute = np.abs(A.T @ r)
    res = price(D, r, top_k=7)
    assert res.complete and res.n_evaluated == len(ids)
    assert np.isclose(res.max_score, brute.max(), rtol=1e-12)
    assert np.allclose(res.scores, np.sort(brute)[::-1][:7], rtol=1e-12)
    pos = {c: i for i, c in enumerate(ids)}
    assert np.allclose(brute[[pos[c] for c in res.ids]], res.scores, rtol=1e-12)


def test_threshold_returns_exactly_the_violators():
    D, A, ids, r = _setup(2, 3)
    brute = np.abs(A.T @ r)
    top = np.sort(brute)[::-1]
    t = (top[20] + top[21]) / 2
    res = price(D, r, top_k=10**6, threshold=t)
    assert set(res.ids.tolist()) == set(ids[brute > t].tolist())


def test_screening_is_safe_and_skips_blocks(monkeypatch):
    monkeypatch.setattr("analysis.pricing.COLUMNS_PER_BLOCK", 64)
    D, A, ids, r = _setup(2, 3, N=16, seed=3)
    first = price(D, r, top_k=5)
    rng = np.random.default_rng(1)
    for eps in [1e-4, 1e-2, 0.3]:
        r2 = r + eps * (rng.normal(size=r.size))
        r2 -= r2.mean()
        brute = np.abs(A.T @ r2)
        t = 0.9 * brute.max()
        res = price(D, r2, top_k=10**6, threshold=t, screen=first.screen)
        assert set(res.ids.tolist()) == set(ids[brute > t].tolist())
        assert res.bound >= brute.max() - 1e-12
        if eps == 1e-4:
            assert res.n_blocks_skipped > 0
        first = res


def test_partial_pricing_stops_early(monkeypatch):
    monkeypatch.setattr("analysis.pricing.COLUMNS_PER_BLOCK", 64)
    D, A, ids, r = _setup(2, 3, N=16, seed=5)
    brute = np.abs(A.T @ r)
    t = np.quantile(brute, 0.5)
    res = price(D, r, top_k=1000, threshold=t, stop_after=10)
    assert not res.complete and res.bound == np.inf
    assert 10 <= len(res.ids) < (brute > t).sum()
    assert np.all(res.scores > t)


def test_pricing_rejects_wrong_residual_shape():
    D, *_ = _setup(1, 2)
    with pytest.raises(ValueError, match="residual"):
        price(D, np.zeros(3))
