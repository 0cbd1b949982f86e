"""Certificates: the continuum oracle against brute force, the docs/MATH.md example, 1-D exactness."""
import numpy as np
import pytest
import torch

from analysis import ReflectionLasso
from analysis.certificate import continuum_oracle
from analysis.dictionary import Dictionary
from analysis.geometry import feature_values
from analysis.lasso import objective, solve_restricted


def _brute(V, r, W):
    return np.abs(np.abs(W @ V.T) @ r).max()


def _residual(X, y, r_seed):
    r = np.random.default_rng(r_seed).normal(size=len(X))
    return r - r.mean()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("bias", [True, False])
def test_arcs_oracle_equals_a_fine_angle_grid(seed, bias):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(11, 2))
    r = _residual(X, None, seed + 10)
    o = continuum_oracle(X, r, bias)
    assert o.method == "exact-arcs" and o.exact
    th = np.linspace(0, np.pi, 100_001)
    W = np.column_stack([np.cos(th), np.sin(th)])
    anchors = range(len(X)) if bias else [None]
    Vs = [X - X[k] if k is not None else X for k in anchors]
    grid = max(_brute(V, r, W) for V in Vs)
    lipschitz = max(np.abs(r) @ np.linalg.norm(V, axis=1) for V in Vs)
    best = o.values.max()
    assert best >= grid - 1e-12                      # nothing on the grid beats it
    assert best <= grid + lipschitz * (th[1] - th[0]) / 2   # and the grid comes within its resolution
    k = o.best                                       # the reported neuron attains the value
    V = X - X[o.anchors[k]] if bias else X
    assert np.isclose(_brute(V, r, o.W[k][None]), best, rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_cell_enumeration_is_never_beaten_by_dense_search(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(8, 3))
    r = _residual(X, None, seed + 20)
    o = continuum_oracle(X, r)
    assert o.method == "cell-enumeration" and o.exact
    W = rng.normal(size=(200_000, 3))
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    dense = max(_brute(X - x, r, W) for x in X)
    search = continuum_oracle(X, r, method="search", random_state=seed).values.max()
    assert o.values.max() >= max(dense, search) - 1e-10
    assert o.values.max() <= dense * (1 + 2e-3)       # the dense sample gets close to it


def test_degenerate_grid_points_in_3d():
    X = np.array([[i, j, k] for i in range(2) for j in range(2) for k in range(2)], dtype=float)
    r = _residual(X, None, 3)
    o = continuum_oracle(X, r)
    W = np.random.default_rng(0).normal(size=(200_000, 3))
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    assert o.values.max() >= max(_brute(X - x, r, W) for x in X) - 1e-10


MATH_X = np.array([[-2.0, -2.0], [1.0, 2.0], [0.0, 1.0]])
MATH_Y = np.array([-1.0, 1.0, -1.0])


def _train_width8(beta, seed):
    """Full-batch L-BFGS on a width-8 two-layer abs network: ``1/2||f - y||^2 + beta/2 (||W||^2 + ||a||^2)``."""
    g = torch.Generator().manual_seed(seed)
    X, y = torch.tensor(MATH_X), torch.tensor(MATH_Y)
    W = torch.randn(8, 2, generator=g, dtype=torch.float64).requires_grad_()
    b = torch.randn(8, generator=g, dtype=torch.float64).requires_grad_()
    a = (0.5 * torch.randn(8, generator=g, dtype=torch.float64)).requires_grad_()
    xi = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b, a, xi], lr=1, max_iter=3000, tolerance_grad=1e-12, tolerance_change=1e-15,
                            line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        f = xi + (X @ W.T + b).abs() @ a
        out = 0.5 * ((f - y) ** 2).sum() + beta / 2 * ((W ** 2).sum() + (a ** 2).sum())
        out.backward()
        return out

    opt.step(loss)
    return float(loss().detach())


def test_math_example_restriction_lower_bound_and_continuum_optimum():
    plain = ReflectionLasso(beta=0.1).fit(MATH_X, MATH_Y)
    cert = plain.certificate_
    assert np.isclose(plain.objective_, 0.6221, atol=1e-4)
    assert cert["exact"] is False and cert["scope"] == "dictionary" and "restriction" in cert["statement"]
    assert cert["continuum_method"] == "exact-arcs" and np.isclose(cert["continuum_ratio"], 10.15, atol=0.01)
    assert np.isclose(cert["lower_bound"], 0.0701, atol=1e-4) and cert["lower_bound"] < plain.objective_

    cont = ReflectionLasso(beta=0.1, candidates="continuum").fit(MATH_X, MATH_Y)
    c = cont.certificate_
    assert c["exact"] is True and c["scope"] == "network" and c["continuum_ratio"] <= 1 + 1e-6
    assert c["lower_bound"] <= cont.objective_ <= c["lower_bound"] + 1e-8
    assert (cont.features_["source"] == "continuum").any()
    trained = min(_train_width8(0.1, s) for s in range(2))
    assert cont.objective_ <= trained + 1e-9          # never beaten by gradient training
    assert cont.objective_ < plain.objective_ and c["lower_bound"] >= cert["lower_bound"]
    assert cont.objective_ < 0.13643                  # docs/MATH.md: training reaches about 0.1364


def test_continuum_mode_only_where_the_oracle_is_exact():
    X = np.random.default_rng(0).normal(size=(6, 3))
    with pytest.raises(ValueError, match="continuum.*depth=2 and 2-D"):
        ReflectionLasso(candidates="continuum").fit(X, np.arange(6.0))
    with pytest.raises(ValueError, match="continuum.*depth=2 and 2-D"):
        ReflectionLasso(depth=3, candidates="continuum").fit(X[:, :2], np.arange(6.0))


def test_depth3_in_2d_says_restriction_and_no_lower_bound():
    rng = np.random.default_rng(4)
    model = ReflectionLasso(depth=3).fit(rng.normal(size=(8, 2)), rng.normal(size=8))
    cert = model.certificate_
    assert cert["exact"] is False and "lower_bound" not in cert and "restriction" in cert["statement"]
    assert cert["dictionary_ratio"] <= 1 + 1e-6 and abs(cert["duality_gap"]) < 1e-9


def test_depth2_in_3d_uses_cell_enumeration():
    rng = np.random.default_rng(6)
    model = ReflectionLasso(depth=2).fit(rng.normal(size=(9, 3)), rng.normal(size=9))
    cert = model.certificate_
    assert cert["continuum_method"] == "cell-enumeration"
    assert cert["lower_bound"] <= model.objective_ + 1e-12


def _fold_grid_ratio(X, r, beta, depth):
    """max over a fine grid of 1-D fold parameters ``(w = +-1, b, c_1..)`` of ``|r . phi| / beta``."""
    lo, hi = X.min() - 1, X.max() + 1
    bs = np.linspace(-hi, -lo, 301)
    cs = np.linspace(0, hi - lo, 151)
    grids = np.meshgrid(bs, *[cs] * (depth - 2), indexing="ij")
    b = grids[0].ravel()
    C = np.column_stack([g.ravel() for g in grids[1:]]) if depth > 2 else None
    best = 0.0
    for w in (1.0, -1.0):
        Phi = feature_values(X, np.full((len(b), 1), w), b, C)
        best = max(best, np.abs(r @ Phi).max())
    return best / beta


@pytest.mark.parametrize("seed", [0, 1])
def test_1d_depth3_dictionary_is_exact_on_a_fine_fold_grid(seed):
    rng = np.random.default_rng(seed)
    X = np.sort(rng.uniform(-1, 1, size=(10, 1)), axis=0)
    y = rng.normal(size=10)
    model = ReflectionLasso(depth=3, beta=0.05).fit(X, y)
    cert = model.certificate_
    assert cert["exact"] is True and cert["scope"] == "network" and cert["lower_bound"] <= model.objective_
    r = y - model.predict(X)
    assert _fold_grid_ratio(X, r, model.beta_, 3) <= 1 + 1e-6


def test_1d_depth3_without_midpoints_falls_short():
    """Reflections alone are not enough: on some instance the midpoint-free dictionary is worse."""
    shortfalls = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        X = np.sort(rng.uniform(-1, 1, size=(7, 1)), axis=0)
        y = rng.normal(size=7)
        D = Dictionary(X, 3)
        A, ids = D.materialize()
        kinds = np.array([e["kind"] for e in D.explain(ids)])
        beta = 0.05
        full = objective(A, *solve_restricted(A, y, beta), y, beta)
        B = A[:, kinds != "midpoint"]
        restricted = objective(B, *solve_restricted(B, y, beta), y, beta)
        assert restricted >= full - 1e-10
        shortfalls.append((restricted - full) / full)
    assert max(shortfalls) > 1e-4
