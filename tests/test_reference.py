"""The cvxpy reference solver is right at any scale of the data and the target (closed form: orthogonal columns)."""
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
