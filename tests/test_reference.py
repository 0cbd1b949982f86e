"""The cvxpy reference is right at any scale (closed form), and certified fits match it in the hard regimes."""
import zlib

import numpy as np
import pytest

from analysis.lasso import cvxpy_lasso


@pytest.mark.parametrize("a_scale, y_scale", [(1.0, 1.0), (1e-6, 1e-8), (1e6, 1e8), (1e-6, 1e8), (1e6, 1e-8)])
def test_cvxpy_reference_matches_the_closed_form_at_every_scale(a_scale, y_scale):
    """Centred orthogonal columns of different norms: z_j = soft(A_j . y, beta) / ||A_j||^2, xi = mean(y)."""
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.normal(size=(40, 6)) - rng.normal(size=(40, 6)).mean(axis=0))
    Q, _ = np.linalg.qr(Q - Q.mean(axis=0))        # orthonormal combinations of centred columns: centred
    A = a_scale * Q * np.array([1e-3, 0.1, 1.0, 3.0, 10.0, 1e3])
    y = y_scale * (rng.normal(size=40) + 5.0)
    score = A.T @ (y - y.mean())
    beta = 0.5 * np.median(np.abs(score))          # about half the columns enter
    exact = np.sign(score) * np.maximum(np.abs(score) - beta, 0.0) / (A ** 2).sum(axis=0)
    z, xi = cvxpy_lasso(A, y, beta)
    big = np.abs(exact).max()
    np.testing.assert_allclose(z, exact, rtol=1e-7, atol=1e-9 * big)
    assert xi == pytest.approx(y.mean() - A.mean(axis=0) @ exact, rel=1e-9, abs=1e-9 * y_scale)


def test_cvxpy_reference_ignores_columns_constant_to_rounding():
    """Duplicated points make some columns constant up to rounding (centred norm ~1e-17), which made Clarabel report
    the Lasso "unbounded"; such a column is the intercept's (as in ``WorkingSet.add``): the closed form holds."""
    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.normal(size=(12, 3)) - rng.normal(size=(12, 3)).mean(axis=0))
    Q, _ = np.linalg.qr(Q - Q.mean(axis=0))
    flat = 0.7 + 3e-17 * rng.choice([-1.0, 1.0], size=(12, 4))          # constant on the data, to rounding
    A = np.hstack([Q * [0.5, 1.0, 2.0], flat])
    y = rng.normal(size=12)
    score = Q.T @ (y - y.mean()) * [0.5, 1.0, 2.0]
    beta = 0.5 * np.median(np.abs(score))
    exact = np.sign(score) * np.maximum(np.abs(score) - beta, 0.0) / np.array([0.25, 1.0, 4.0])
    z, xi = cvxpy_lasso(A, y, beta)
    np.testing.assert_allclose(z[:3], exact, rtol=1e-7, atol=1e-9)
    assert np.all(z[3:] == 0.0)


def _hard_data(kind, rng, N=11):
    X = rng.normal(size=(N, 2))
    if kind == "collinear":                           # on a line, but three points
        t = rng.normal(size=N)
        X = np.c_[t, 2 * t + 1]
        X[:3] += rng.normal(size=(3, 2))
    if kind == "near-duplicates":
        X[N // 2:] = X[: N - N // 2] + 1e-9 * rng.normal(size=(N - N // 2, 2))
    scale = {"tiny": 1e-6, "huge": 1e6, "anisotropic": [1e4, 1e-3]}.get(kind, 1.0)
    return X * scale + (1e6 if kind == "shifted" else 0.0)


@pytest.mark.parametrize("kind", ["tiny", "huge", "shifted", "anisotropic", "collinear", "near-duplicates"])
@pytest.mark.parametrize("target", ["sign", "1e-8 noise", "1e8 step"])
def test_certified_paths_to_1e3_beta_max_match_the_reference_in_hard_regimes(kind, target):
    """A depth-3 path of 6 betas down to 1e-3 beta_max, certified, against cvxpy on the materialised dictionary at
    its last beta (1e-7 relative; the certificate allows tol = 1e-6 on the dictionary ratio)."""
    from analysis import ReflectionLasso
    rng = np.random.default_rng(zlib.crc32(f"{kind} {target}".encode()))
    X = _hard_data(kind, rng)
    Z = (X - X.mean(0)) / X.std(0)
    y = {"sign": np.sign(Z[:, 0] * Z[:, 1]) + 0.1 * rng.normal(size=len(X)),
         "1e-8 noise": 1e-8 * rng.normal(size=len(X)), "1e8 step": 1e8 * (Z[:, 0] > 0)}[target]
    fit = ReflectionLasso(depth=3, n_betas=6, beta_min_ratio=1e-3).fit(X, y)
    ref = ReflectionLasso(depth=3, beta=fit.beta_, solver="cvxpy").fit(X, y)
    assert fit.certificate_["dictionary_ratio"] <= 1 + fit.tol
    assert abs(fit.objective_ - ref.objective_) <= 1e-7 * ref.objective_
