import numpy as np
import pytest

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
