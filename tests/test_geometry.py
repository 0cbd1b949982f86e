import numpy as np
import pytest

from analysis.dictionary import Dictionary, column_id
from analysis.features import FoldFeatures
from analysis.geometry import (
    cross_product,
    feature_values,
    fold_parameters,
    hyperplanes_through,
    reflect,
    signed_distance,
)


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_cross_product_is_the_determinant_and_the_volume(k):
    rng = np.random.default_rng(k)
    V = rng.normal(size=(k - 1, k))
    c = cross_product(V)
    x = rng.normal(size=k)
    assert np.isclose(c @ x, np.linalg.det(np.vstack([x, V])))
    assert np.allclose(V @ c, 0, atol=1e-12)
    assert np.isclose(np.linalg.norm(c), np.sqrt(np.linalg.det(V @ V.T)))


def test_cross_product_is_vectorised():
    rng = np.random.default_rng(0)
    V = rng.normal(size=(5, 4, 2, 3))
    c = cross_product(V)
    assert c.shape == (5, 4, 3)
    assert np.allclose(c[2, 1], np.cross(V[2, 1, 0], V[2, 1, 1]))


@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_hyperplane_passes_through_its_points(d):
    rng = np.random.default_rng(d)
    P = rng.normal(size=(6, d, d))
    w, b, ok = hyperplanes_through(P)
    assert ok.all()
    assert np.allclose(np.linalg.norm(w, axis=-1), 1)
    assert np.allclose(np.einsum("nkd,nd->nk", P, w) + b[:, None], 0, atol=1e-10)


def test_hyperplane_without_bias_passes_through_the_origin():
    rng = np.random.default_rng(3)
    P = rng.normal(size=(4, 2, 3))
    w, b, ok = hyperplanes_through(P, bias=False)
    assert ok.all() and np.all(b == 0)
    assert np.allclose(np.einsum("nkd,nd->nk", P, w), 0, atol=1e-12)


def test_degenerate_sets_are_flagged_not_nan():
    P = np.array([[[1.0, 2.0], [1.0, 2.0]]])
    w, b, ok = hyperplanes_through(P)
    assert not ok[0] and np.all(np.isfinite(w)) and np.isfinite(b[0])


@pytest.mark.parametrize("d,m", [(1, 1), (2, 1), (3, 1), (1, 2), (2, 2)])
def test_fold_parameters_put_points_on_their_level_sets(d, m):
    rng = np.random.default_rng(10 * d + m)
    k = d + m
    n_valid = 0
    for _ in range(60):
        P = rng.normal(size=(k, d))
        S = np.zeros((k, m))  # fold labels: non-zero prefixes, level 1 not constant
        S[:, 0] = [0] + list(rng.choice([-1, 1], size=k - 1))
        if m == 2:
            S[1:, 1] = rng.choice([-1, 1], size=k - 1)
        w, b, c, ok = fold_parameters(P, S)
        if not ok:  # some sign patterns cannot make every offset non-negative
            continue
        n_valid += 1
        assert np.isclose(np.linalg.norm(w), 1) and np.all(c >= 0)
        assert np.allclose(P @ w + b, S @ c, atol=1e-9)
    assert n_valid >= 5


def test_single_fold_points_are_zeros_of_the_feature():
    rng = np.random.default_rng(2)
    P = rng.normal(size=(3, 2))
    S = np.array([[0.0], [1.0], [-1.0]])
    w, b, c, ok = fold_parameters(P, S)
    assert ok
    assert np.allclose(feature_values(P[1:], w[None], [b], c[None]), 0, atol=1e-10)
    assert np.isclose(feature_values(P[:1], w[None], [b], c[None])[0, 0], c[0])


def test_feature_values_closed_form_1d():
    x = np.linspace(-2, 3, 11)[:, None]
    vals = feature_values(x, np.array([[1.0]]), np.array([-0.5]), np.array([[1.0]]))[:, 0]
    assert np.allclose(vals, np.abs(np.abs(x[:, 0] - 0.5) - 1.0))


def test_fold_features_pad_ragged_offsets_and_evaluate_the_nested_folds():
    X = np.random.default_rng(1).normal(size=(7, 2))
    W, b, offsets = [[0.6, 0.8], [1.0, 0.0], [0.0, -1.0]], [0.1, -0.2, 0.3], [(), (0.5,), (0.4, 0.2)]
    f = FoldFeatures.of(W, b, offsets)
    assert (f.n, f.dim, f.depth) == (3, 2, 4)
    np.testing.assert_array_equal(f.C, [[0, 0], [0.5, 0], [0.4, 0.2]])
    own = np.empty((7, 3))                                  # | ... ||w.x + b| - c_1| ... - c_m |, loop by loop
    for j in range(3):
        for n in range(7):
            u = abs(np.dot(W[j], X[n]) + b[j])
            for c in offsets[j]:
                u = abs(u - c)
            own[n, j] = u
    np.testing.assert_allclose(f.values(X), own, atol=1e-14)
    np.testing.assert_allclose(f[[2, 0]].values(X), own[:, [2, 0]], atol=1e-14)
    np.testing.assert_allclose(f[np.array([False, True, False])].values(X), own[:, [1]], atol=1e-14)
    np.testing.assert_allclose(f.with_offsets(3).values(X), own, atol=1e-14)      # a zero offset folds nothing
    both = FoldFeatures.concat([f[:1].with_offsets(0), f[1:]])
    np.testing.assert_allclose(both.values(X), own, atol=1e-14)


def test_fold_features_refuse_inconsistent_rows_and_lost_offsets():
    with pytest.raises(ValueError, match="one row per feature"):
        FoldFeatures.of(np.ones((2, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="one row per feature"):
        FoldFeatures.of(np.ones((2, 2)), np.zeros(2), [(0.1,)])
    with pytest.raises(ValueError, match="more than a depth-2 network holds"):
        FoldFeatures.of(np.ones((1, 2)), None, [(0.3,)]).with_offsets(0)
    assert FoldFeatures.of(np.ones((1, 2)), None, [(0.0,)]).with_offsets(0).depth == 2


def test_column_ids_have_one_text_form():
    D = Dictionary(np.random.default_rng(0).normal(size=(6, 2)), 3)
    for e in D.explain(np.arange(0, D.n_candidates, 7)):
        labels = [[{"+": 1, "-": -1, "0": 0}[ch] for ch in text] for text in e["labels"]]
        assert e["id"] == column_id(e["depth"], e["points"], np.array(labels).reshape(len(e["points"]), -1))
    assert column_id(2, (4, 1), np.zeros((2, 0))) == "L2:4-1"
    assert column_id(4, (0, 3, 5), [[1, 0], [-1, 1], [0, 0]]) == "L4:0-3-5:+0,-+,00"


def test_reflection_is_an_isometric_involution_fixing_the_plane():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(20, 3))
    w, b = rng.normal(size=3), 0.7
    R = reflect(X, w, b)
    assert np.allclose(reflect(R, w, b), X)
    assert np.allclose(signed_distance(R, w, b), -signed_distance(X, w, b))
    on_plane = X - np.outer(signed_distance(X, w, b), w / np.linalg.norm(w))
    assert np.allclose(reflect(on_plane, w, b), on_plane)
    assert np.allclose(np.linalg.norm(R[:, None] - R[None], axis=-1), np.linalg.norm(X[:, None] - X[None], axis=-1))
