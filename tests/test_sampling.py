"""Sampled candidates: real dictionary columns, local search, an honest certificate."""
import numpy as np
import pytest

from analysis import ReflectionLasso
from analysis.dictionary import Dictionary
from analysis.features import FoldFeatures
from analysis.pricing import price
from analysis.sampling import Sampler


@pytest.mark.parametrize("d,depth,bias", [(2, 3, True), (3, 2, True), (2, 3, False)])
def test_sampled_columns_are_dictionary_columns(d, depth, bias):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(9, d))
    r = rng.normal(size=9)
    r -= r.mean()
    A, keys, features, scores = Sampler(X, depth, bias, random_state=1).propose(r, n_samples=300, keep=40)
    D = Dictionary(X, depth, bias)
    M, ids = D.materialize()
    by_id = {e["id"]: j for j, e in enumerate(D.explain(ids))}
    assert len(keys) == len(set(keys)) > 0
    for j, key in enumerate(keys):
        assert key in by_id, key
        assert np.allclose(A[:, j], M[:, by_id[key]], atol=1e-9)
    assert np.allclose(scores, np.abs(r @ A))
    assert features.n == len(keys) and features.depth == depth and np.allclose(features.values(X), A, atol=1e-12)


def test_local_search_reaches_the_best_column_of_a_small_dictionary():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(12, 2))
    r = rng.normal(size=12)
    r -= r.mean()
    best = price(Dictionary(X, 3), r, top_k=1).max_score
    sampler = Sampler(X, 3, random_state=0)
    _, _, _, no_search = sampler.propose(r, n_samples=50, n_steps=0, keep=1)
    _, _, _, searched = sampler.propose(r, n_samples=50, n_steps=60, keep=1)
    assert searched[0] >= no_search[0] - 1e-12
    assert searched[0] >= 0.98 * best and searched[0] <= best + 1e-9


def test_sampled_fit_is_honest_and_close_to_the_dictionary_optimum():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(14, 2))
    y = np.abs(X[:, 0]) - X[:, 1] + 0.1 * rng.normal(size=14)
    exact = ReflectionLasso(depth=3, beta=0.2).fit(X, y)
    sampled = ReflectionLasso(depth=3, beta=0.2, candidates="sampled", random_state=0).fit(X, y)
    cert = sampled.certificate_
    assert cert["scope"] == "sampled" and cert["exact"] is False and "not certified" in cert["statement"]
    assert "lower_bound" not in cert
    assert (sampled.features_["source"] == "sampled").all()
    assert sampled.objective_ >= exact.objective_ - 1e-9          # a restriction of the dictionary
    assert sampled.objective_ <= exact.objective_ * 1.05


def test_dictionary_mode_never_switches_to_sampling():
    X = np.random.default_rng(0).normal(size=(40, 3))
    with pytest.raises(ValueError, match=r"max_candidates=1,000.*candidates='sampled'"):
        ReflectionLasso(depth=3, max_candidates=1000).fit(X, X[:, 0])
    model = ReflectionLasso(depth=3, max_candidates=1000, candidates="sampled", n_samples=300, max_iter=3,
                            random_state=0).fit(X, X[:, 0] ** 2)
    assert model.n_candidates_ > 1000 and model.certificate_["scope"] == "sampled"


@pytest.mark.parametrize("depth", [2, 3])
def test_a_neuron_on_a_dictionary_column_snaps_to_that_column(depth):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(10, 2))
    D = Dictionary(X, depth)
    features, valid = D.params(np.arange(D.n_candidates))
    W, b, C = features.W, features.b, features.C
    js = [j for j in rng.permutation(D.n_candidates) if valid[j] and (depth == 2 or C[j, 0] > 0.2)][:3]
    explained = D.explain(np.array(js))
    s = Sampler(X, depth, neurons=FoldFeatures(3 * W[js], 3 * b[js], 3 * C[js]))    # 3 phi_j: the same columns
    keys, _, A, n = s.seeds
    assert n == 3 and keys[:3] == [f"N{depth}:seed{i}" for i in range(3)]
    np.testing.assert_allclose(A[:, :3], D.columns(np.array(js)), atol=1e-9)   # as columns, scale removed
    snapped = keys[3:]
    assert {e["id"] for e in explained} <= set(snapped)
    M = D.columns(np.array(js))
    for e, col in zip(explained, M.T):
        np.testing.assert_allclose(A[:, keys.index(e["id"])], col, atol=1e-9)
    assert s.searched["trained_neurons"] == 3 and s.searched["snapped_neurons"] == len(snapped)


def test_seeded_sampled_lasso_is_never_worse_than_the_trained_network():
    from analysis.network import ParallelAbsNet
    from analysis.training import train
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    y = np.abs(X @ rng.normal(size=4)) - np.abs(X[:, 0] - 0.3) + 0.1 * rng.normal(size=30)
    beta = 0.5
    res = train(ParallelAbsNet(4, 3, 16), X, y, beta, max_epochs=1500, seeds=[0], progress=False)
    W, b, C, _, _ = res.net.unit_features()
    est = ReflectionLasso(depth=3, beta=beta, candidates="sampled", n_samples=200, random_state=0,
                          init_neurons=(W, b, C)).fit(X, y)
    assert est.objective_ <= res.best_objective * (1 + 1e-9)
    searched = est.certificate_["searched"]
    assert searched["trained_neurons"] == 16 and searched["random_draws_per_round"] == 200
    assert "sampled" in est.certificate_["statement"]


def test_init_neurons_as_arrays_or_fold_features_seed_the_same_fit():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(12, 2))
    y = np.abs(X[:, 0] - 0.2) + 0.05 * rng.normal(size=12)
    W, b, C = np.array([[1.0, 0.0], [0.6, 0.8]]), np.array([-0.2, 0.1]), [(0.3,), ()]
    fits = [ReflectionLasso(depth=3, beta=0.05, candidates="sampled", n_samples=200, random_state=0,
                            init_neurons=seeds).fit(X, y)
            for seeds in ((W, b, C), [W, b, C], FoldFeatures.of(W, b, C))]
    assert fits[0].certificate_["searched"]["trained_neurons"] == 2
    assert fits[0].objective_ == fits[1].objective_ == fits[2].objective_
    assert fits[0].features_["id"].tolist() == fits[2].features_["id"].tolist()
