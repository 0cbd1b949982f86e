import cvxpy as cp
import numpy as np
import pytest
import torch

from analysis.dictionary import Dictionary
from analysis.geometry import feature_values
from analysis.network import FCAbsNet, ParallelAbsNet


def solve_lasso(X, y, depth, beta, bias=True):
    """Reference optimum of the dictionary Lasso (cvxpy + Clarabel), reduced to a basic solution.

    Identical columns are merged first; then, while ``[A_S 1]`` is rank deficient, moving along a
    null direction leaves the fit unchanged and the l1 norm linear, so a coefficient can be zeroed.
    """
    D = Dictionary(X, depth, bias)
    A, ids = D.materialize()
    _, keep = np.unique(np.round(A, 10), axis=1, return_index=True)
    A, ids = A[:, keep], ids[keep]
    z, xi = cp.Variable(A.shape[1]), cp.Variable()
    cp.Problem(cp.Minimize(0.5 * cp.sum_squares(A @ z + xi - y) + beta * cp.norm1(z))).solve(
        solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    z = np.where(np.abs(z.value) > 1e-9 * np.abs(z.value).max(), z.value, 0.0)
    while True:
        S = np.flatnonzero(z)
        B = np.c_[np.ones(len(y)), A[:, S]][:, : len(y) + 1]   # a null vector among the first N + 1 columns
        _, sv, Vt = np.linalg.svd(B)
        if B.shape[1] <= len(y) and sv[-1] > 1e-9 * sv[0]:
            break
        T, v = S[: B.shape[1] - 1], Vt[-1, 1:]
        v = v if np.sign(z[T]) @ v <= 0 else -v
        shrinking = v * np.sign(z[T]) < 0
        z[T] += np.min(-z[T][shrinking] / v[shrinking]) * v
        z[T[np.argmin(np.abs(z[T]))]] = 0.0
    S = np.flatnonzero(z)
    B = np.c_[A[:, S], np.ones(len(y))]
    sol = np.linalg.solve(B.T @ B, B.T @ y - beta * np.r_[np.sign(z[S]), 0.0])
    z[S] = sol[:-1]
    r = y - A @ z - sol[-1]
    assert np.abs(A.T @ r).max() <= beta * (1 + 1e-8) and abs(r.sum()) < 1e-9, "reference Lasso is not optimal"
    features, _ = D.params(ids[S])
    W, b, C = features.W, features.b, features.C
    return {"objective": 0.5 * r @ r + beta * np.abs(z).sum(), "W": W, "b": b, "C": C, "coef": z[S],
            "intercept": sol[-1], "fitted": A @ z + sol[-1]}


def warm_net(sol, depth, **kw):
    return ParallelAbsNet.from_features(sol["W"], sol["b"], sol["C"], sol["coef"], sol["intercept"], depth, **kw)


def _own_features(X, W, b, C):
    """Independent loop evaluation of phi(x) = | ... ||w.x + b| - c_1| ... - c_m |."""
    out = np.empty((len(X), len(W)))
    for j in range(len(W)):
        for n in range(len(X)):
            u = abs(sum(W[j, i] * X[n, i] for i in range(X.shape[1])) + b[j])
            for c in C[j]:
                u = abs(u - c)
            out[n, j] = u
    return out


@pytest.mark.parametrize("d,depth,bias", [(1, 2, True), (1, 3, True), (1, 4, True), (2, 2, True), (2, 3, True),
                                          (2, 3, False)])
def test_reconstruction_reproduces_the_lasso_objective(d, depth, bias):
    rng = np.random.default_rng(10 * d + depth)
    X, y, beta = rng.normal(size=(7, d)), rng.normal(size=7), 0.1
    sol = solve_lasso(X, y, depth, beta, bias)
    net = warm_net(sol, depth, bias=bias)
    assert net.width == len(sol["coef"])
    np.testing.assert_allclose(net.predict(X), sol["fitted"], rtol=0, atol=1e-12)
    obj = net.objective(X, y, beta).item()
    assert abs(obj - sol["objective"]) <= 1e-9 * sol["objective"]
    # the penalty of each unit is L |z_j|: (beta / L) * penalty = beta ||z||_1
    assert net.penalty().item() == pytest.approx(depth * np.abs(sol["coef"]).sum(), rel=1e-12)


def test_reconstruction_in_float32():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(6, 1)), rng.normal(size=6)
    sol = solve_lasso(X, y, 3, 0.05)
    net = warm_net(sol, 3, dtype=torch.float32)
    assert net.W.dtype == torch.float32
    assert net.objective(X, y, 0.05).item() == pytest.approx(sol["objective"], rel=1e-5)


def test_feature_bookkeeping_against_an_independent_evaluation():
    """Depths 2..4 mixed (lower depths padded with zero offsets), signs of coef both ways."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(9, 2))
    W = rng.normal(size=(4, 2))
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    b = rng.normal(size=4)
    C = np.array([[0.0, 0.0], [0.7, 0.0], [0.4, 0.2], [1.3, 0.5]])
    coef, xi = np.array([0.8, -1.7, 0.3, -0.05]), 0.25
    net = ParallelAbsNet.from_features(W, b, C, coef, xi, depth=4)
    expected = xi + _own_features(X, W, b, C) @ coef
    np.testing.assert_allclose(net.predict(X), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(feature_values(X, W, b, C) @ coef + xi, expected, atol=1e-12)


def test_unit_features_inverts_the_reconstruction():
    rng = np.random.default_rng(1)
    W = rng.normal(size=(3, 2))
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    b, C, coef = rng.normal(size=3), np.abs(rng.normal(size=(3, 1))), np.array([2.0, -0.3, 0.9])
    Wb, bb, Cb, coefb, xib = ParallelAbsNet.from_features(W, b, C, coef, -0.4, 3).unit_features()
    np.testing.assert_allclose(Wb, W, atol=1e-12)
    np.testing.assert_allclose(bb, b, atol=1e-12)
    np.testing.assert_allclose(Cb, C, atol=1e-12)
    np.testing.assert_allclose(coefb, coef, atol=1e-12)
    assert xib == pytest.approx(-0.4, abs=1e-12)


@pytest.mark.parametrize("depth", [2, 3, 4, 5])
def test_unit_features_describe_any_network_exactly(depth):
    """Random nets, offsets of both signs: f = intercept + phi(X) coef with every offset >= 0."""
    X = np.random.default_rng(depth).normal(size=(40, 2))
    for seed in range(3):
        net = ParallelAbsNet(2, depth, 6, seed=seed)
        with torch.no_grad():
            net.c.mul_(10.0)
            net.W[0] = 0.0                          # a dead unit (constant |b|) goes into the intercept
        W, b, C, coef, intercept = net.unit_features()
        assert np.all(C >= 0) and coef[0] == 0
        np.testing.assert_allclose(net.predict(X), intercept + feature_values(X, W, b, C) @ coef, atol=1e-12)


def test_penalties_match_their_formulas():
    net = ParallelAbsNet(3, 3, 4, seed=0)
    L = 3
    expected = sum(np.linalg.norm(net.W[k].detach().numpy()) ** L + np.sum(np.abs(net.V[k].detach().numpy()) ** L)
                   + abs(net.alpha[k].item()) ** L for k in range(4))
    assert net.penalty().item() == pytest.approx(expected, rel=1e-12)
    fc = FCAbsNet(3, 3, 4, seed=0)
    expected = sum(np.linalg.norm(M.detach().numpy()) ** L for M in [fc.W[0], fc.W[1], fc.alpha])
    assert fc.penalty().item() == pytest.approx(expected, rel=1e-12)


def test_depth2_fc_network_equals_the_parallel_network():
    X, y = np.random.default_rng(2).normal(size=(10, 2)), np.arange(10.0)
    fc, par = FCAbsNet(2, 2, 5, seed=4), ParallelAbsNet(2, 2, 5, seed=0)
    with torch.no_grad():
        par.W.copy_(fc.W[0]), par.b.copy_(fc.biases[0]), par.alpha.copy_(fc.alpha), par.xi.fill_(0.3)
        fc.xi.fill_(0.3)
    assert fc.objective(X, y, 0.2).item() == pytest.approx(par.objective(X, y, 0.2).item(), rel=1e-13)


def test_without_bias_the_first_layer_has_none():
    net = ParallelAbsNet(2, 3, 3, bias=False, seed=0)
    assert net.b is None
    X = np.random.default_rng(0).normal(size=(5, 2))
    np.testing.assert_allclose(net.predict(-X), net.predict(X), atol=1e-12)   # |w.x| is even
    fc = FCAbsNet(2, 2, 3, bias=False, seed=0)
    np.testing.assert_allclose(fc.predict(-X), fc.predict(X), atol=1e-12)


@pytest.mark.parametrize("cls", [ParallelAbsNet, FCAbsNet])
def test_bad_shapes_and_beta_are_rejected(cls):
    with pytest.raises(ValueError, match="depth must be >= 2"):
        cls(2, 1, 4)
    with pytest.raises(ValueError, match="width must be >= 1"):
        cls(2, 3, 0)
    with pytest.raises(ValueError, match="beta must be a positive"):
        cls(1, 2, 2).objective(np.zeros((3, 1)), np.zeros(3), 0.0)


def test_from_features_rejects_inconsistent_parameters():
    W, b, C, coef = np.array([[1.0]]), np.array([0.2]), np.array([[0.5]]), np.array([1.0])
    with pytest.raises(ValueError, match=r"\|\|w\|\| = 1"):
        ParallelAbsNet.from_features(2 * W, b, C, coef, 0.0, 3)
    with pytest.raises(ValueError, match="offsets must be >= 0"):
        ParallelAbsNet.from_features(W, b, -C, coef, 0.0, 3)
    with pytest.raises(ValueError, match="more than a depth-2 network holds"):
        ParallelAbsNet.from_features(W, b, C, coef, 0.0, 2)
    with pytest.raises(ValueError, match="bias=False"):
        ParallelAbsNet.from_features(W, b, C, coef, 0.0, 3, bias=False)
    with pytest.raises(ValueError, match="one row per feature"):
        ParallelAbsNet.from_features(W, b, C, np.ones(2), 0.0, 3)


def test_ragged_offsets_of_a_features_table_are_padded():
    X = np.random.default_rng(5).normal(size=(6, 1))
    offsets = [(), (0.5,), (0.3, 0.1)]
    net = ParallelAbsNet.from_features([[1.0], [-1.0], [1.0]], [0.1, 0.2, -0.4], offsets, [1.0, 2.0, -1.0], 0.0, 4)
    C = np.array([[0.0, 0.0], [0.5, 0.0], [0.3, 0.1]])
    expected = _own_features(X, np.array([[1.0], [-1.0], [1.0]]), [0.1, 0.2, -0.4], C) @ [1.0, 2.0, -1.0]
    np.testing.assert_allclose(net.predict(X), expected, atol=1e-12)


def test_zero_solution_gives_the_constant_network():
    net = ParallelAbsNet.from_features(np.ones((2, 1)), np.zeros(2), None, np.zeros(2), 1.5, 3)
    assert net.width == 0
    np.testing.assert_allclose(net.predict(np.zeros((3, 1))), 1.5)
