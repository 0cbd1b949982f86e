"""Reduction against scikit-learn's PCA, JSON round trips and the seeded random projection."""
import json

import numpy as np
import pytest
from sklearn.cross_decomposition import PLSRegression
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError

from embeddings.reduce import Reduction, signal_kept


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((60, 12)) @ rng.standard_normal((12, 12)) + 3.0
    return X[:45], X[45:]


def _same_up_to_sign(A, B, atol=1e-9):
    signs = np.sign(np.sum(A * B, axis=0))
    np.testing.assert_allclose(A * signs, B, atol=atol)


@pytest.mark.parametrize("standardize", [True, False])
def test_pca_matches_sklearn(data, standardize):
    train, test = data
    ours = Reduction("pca", n_components=3, standardize=standardize).fit(train)
    ref = PCA(n_components=3).fit(train)
    _same_up_to_sign(ours.components_.T, ref.components_.T)
    np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-10)
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-10)
    scale = ref.transform(train).std(axis=0) if standardize else np.ones(3)
    for X in (train, test):
        _same_up_to_sign(ours.transform(X), ref.transform(X) / scale)
    rows = np.arange(3)
    assert (ours.components_[rows, np.abs(ours.components_).argmax(axis=1)] > 0).all()


@pytest.mark.parametrize("method", ["pca", "random"])
def test_standardised_on_training_split(data, method):
    train, _ = data
    Z = Reduction(method, n_components=4, random_state=3).fit_transform(train)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=0), 1, rtol=1e-12)


@pytest.mark.parametrize("method", ["pca", "random"])
def test_round_trip_through_json(data, method):
    train, test = data
    fitted = Reduction(method, n_components=2, random_state=5).fit(train)
    params = json.loads(json.dumps(fitted.to_dict()))
    assert params["method"] == method and params["n_features_in"] == 12 and len(params["components"]) == 2
    restored = Reduction.from_dict(params)
    for X in (train, test):
        np.testing.assert_array_equal(restored.transform(X), fitted.transform(X))
    if method == "pca":
        assert restored.explained_variance_ratio_.tolist() == fitted.explained_variance_ratio_.tolist()
    else:
        assert params["explained_variance_ratio"] is None


def test_random_projection_is_seeded_gaussian(data):
    train, _ = data
    a = Reduction("random", n_components=5, random_state=1).fit(train)
    b = Reduction("random", n_components=5, random_state=1).fit(train)
    c = Reduction("random", n_components=5, random_state=2).fit(train)
    np.testing.assert_array_equal(a.components_, b.components_)
    assert not np.allclose(a.components_, c.components_)
    # entries N(0, 1/k): squared norms of projected vectors are unbiased for the originals
    X = np.random.default_rng(11).standard_normal((400, 300))  # not the projection's own seed
    big = Reduction("random", n_components=200, standardize=False, random_state=0).fit(X)
    assert abs(big.components_.var() * 200 - 1) < 0.02
    ratio = np.sum(big.transform(X) ** 2, axis=1) / np.sum((X - X.mean(axis=0)) ** 2, axis=1)
    assert abs(ratio.mean() - 1) < 0.05


def test_invalid_inputs(data):
    train, _ = data
    with pytest.raises(ValueError, match=r"n_components must be an integer in .* = 1\.\.12 for 45"):
        Reduction(n_components=13).fit(train)
    with pytest.raises(ValueError, match=r"1\.\.5 for 5 training vectors"):
        Reduction(n_components=6).fit(train[:5])
    with pytest.raises(ValueError, match="n_components"):
        Reduction(n_components=0).fit(train)
    with pytest.raises(ValueError, match="method must be one of pca, random, pls"):
        Reduction("tsne").fit(train)
    with pytest.raises(ValueError, match="zero variance"):
        Reduction(n_components=5).fit(train[:5])  # 5 centred points span 4 dimensions
    bad = train.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Reduction().fit(bad)
    with pytest.raises(NotFittedError):
        Reduction().transform(train)
    fitted = Reduction().fit(train)
    with pytest.raises(ValueError, match="dimension 11, the reduction was fitted on dimension 12"):
        fitted.transform(train[:, :11])
    params = fitted.to_dict()
    with pytest.raises(ValueError, match="missing keys scale"):
        Reduction.from_dict({k: v for k, v in params.items() if k != "scale"})
    with pytest.raises(ValueError, match=r"components has shape \(2, 11\)"):
        Reduction.from_dict({**params, "components": np.zeros((2, 11)).tolist()})


def test_without_standardising_rank_deficient_is_allowed(data):
    train, _ = data
    Z = Reduction(n_components=5, standardize=False).fit_transform(train[:5])
    np.testing.assert_allclose(Z[:, 4], 0, atol=1e-9)


def _targets(X):
    return X @ np.linspace(-1, 1, X.shape[1]) + 0.1 * np.random.default_rng(3).standard_normal(len(X))


@pytest.mark.parametrize("k", [1, 3])
def test_pls_matches_sklearn_and_round_trips(data, k):
    train, test = data
    y = _targets(train)
    ours = Reduction("pls", n_components=k, standardize=False).fit(train, y)
    ref = PLSRegression(n_components=k, scale=False).fit(train, y)
    for X in (train, test):
        np.testing.assert_allclose(ours.transform(X), ref.transform(X), atol=1e-9)
    restored = Reduction.from_dict(json.loads(json.dumps(ours.to_dict())))
    np.testing.assert_array_equal(restored.transform(test), ours.transform(test))
    Z = Reduction("pls", n_components=k).fit_transform(train, y)
    np.testing.assert_allclose(Z.std(axis=0), 1, rtol=1e-12)
    with pytest.raises(ValueError, match="supervised; pass the training targets"):
        Reduction("pls").fit(train)
    with pytest.raises(ValueError, match="45 finite, non-constant targets"):
        Reduction("pls").fit(train, y[:10])


def test_signal_kept_by_a_supervised_projection_beats_pca_on_a_low_variance_signal():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 20)) * np.r_[2.0, 2.0, 2.0, np.ones(17)]
    y = X[:, 10] + 0.1 * rng.standard_normal(1000)       # the signal lives in a low-variance direction
    train = np.arange(1000) < 750
    full = signal_kept(X, y, train, X)
    assert full["full_r2"] == full["reduced_r2"] > 0.9 and full["kept"] == 1.0
    pca = Reduction("pca", n_components=1).fit(X[train])
    pls = Reduction("pls", n_components=1).fit(X[train], y[train])
    kept_pca = signal_kept(X, y, train, pca.transform(X))
    kept_pls = signal_kept(X, y, train, pls.transform(X))
    assert kept_pca["reduced_r2"] < 0.1 < 0.8 < kept_pls["reduced_r2"]
    with pytest.raises(ValueError, match="at least 2 test points"):
        signal_kept(X, y, np.ones(1000, bool), X)
