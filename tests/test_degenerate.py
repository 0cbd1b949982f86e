"""Degenerate data are mathematics, not errors: each fit agrees with cvxpy on a materialised dictionary
built independently (in the coordinates of the line or plane the points lie on, on the distinct
points, ...) and carries an honest certificate."""
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from analysis import ReflectionLasso, ReflectionLassoClassifier
from analysis.dictionary import Dictionary
from analysis.lasso import cvxpy_lasso, objective


def _reference(A, y, beta):
    """The Lasso optimum over the columns ``A`` by cvxpy."""
    z, xi = cvxpy_lasso(A, y, beta)
    return objective(A, z, xi, y, beta)


def _basis(d, k, seed):
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(d, k)))[0]


@pytest.mark.parametrize("d,depth,bias", [(2, 2, True), (2, 3, True), (2, 3, False), (3, 3, True), (3, 2, False)])
def test_collinear_points_are_a_1d_problem_with_an_exact_certificate(d, depth, bias):
    rng = np.random.default_rng(d + depth)
    t = rng.normal(size=9)
    u = _basis(d, 1, depth)[:, 0]
    p = rng.normal(size=d) * 1e5 if bias else np.zeros(d)          # without bias the line must pass the origin
    X = p + np.outer(t, u)
    y = np.sin(2 * t) + 0.3 * rng.normal(size=9)
    model = ReflectionLasso(depth=depth, bias=bias, tol=1e-9).fit(X, y)
    A, _ = Dictionary(t[:, None], depth, bias).materialize()       # the line's own coordinate, same units
    assert model.objective_ == pytest.approx(_reference(A, y, model.beta_), rel=1e-7)
    cert = model.certificate_
    assert cert["exact"] and cert["intrinsic_dim"] == 1 and cert["n_degenerate"] == 0
    assert "line" in cert["statement"]
    W = np.array(model.features_["w"].tolist())
    assert np.allclose(np.abs(W @ u), 1.0)                          # normals along the line
    r = y - model.predict(X)
    assert model.objective_ == pytest.approx(0.5 * r @ r + model.beta_ * np.abs(model.coef_).sum(), rel=1e-9)


@pytest.mark.parametrize("depth", [2, 3])
def test_coplanar_points_in_3d_get_the_2d_dictionary(depth):
    rng = np.random.default_rng(depth)
    P = rng.normal(size=(8, 2))
    E = _basis(3, 2, 7)
    X = rng.normal(size=3) * 100 + P @ E.T
    y = np.abs(P[:, 0]) - P[:, 1] + 0.2 * rng.normal(size=8)
    model = ReflectionLasso(depth=depth, tol=1e-9).fit(X, y)
    A, _ = Dictionary(P, depth).materialize()
    assert model.objective_ == pytest.approx(_reference(A, y, model.beta_), rel=1e-7)
    flat = ReflectionLasso(depth=depth, tol=1e-9).fit(P, y)
    assert model.certificate_["intrinsic_dim"] == 2 and "plane" in model.certificate_["statement"]
    assert model.certificate_["exact"] == flat.certificate_["exact"]
    if depth == 2:                                  # the exact continuum oracle of the plane certifies it
        assert model.certificate_["continuum_ratio"] == pytest.approx(flat.certificate_["continuum_ratio"],
                                                                      rel=1e-6)
    else:
        assert not model.certificate_["exact"]


@pytest.mark.parametrize("d,depth", [(1, 3), (2, 2), (2, 3)])
def test_duplicate_points_with_conflicting_targets_fit_the_lasso_over_every_row(d, depth):
    rng = np.random.default_rng(d * depth)
    U = rng.normal(size=(7, d))
    rows = np.r_[np.arange(7), [0, 3, 3, 5]]                        # repeats, with their own targets
    X, y = U[rows], rng.normal(size=len(rows))
    model = ReflectionLasso(depth=depth, tol=1e-9).fit(X, y)
    A, _ = Dictionary(U, depth).materialize()                       # the distinct points' dictionary
    assert model.objective_ == pytest.approx(_reference(A[rows], y, model.beta_), rel=1e-7)
    r = y - model.predict(X)
    assert model.objective_ == pytest.approx(0.5 * r @ r + model.beta_ * np.abs(model.coef_).sum(), rel=1e-10)
    cert = model.certificate_
    if d == 1:
        assert cert["exact"] and cert["n_degenerate"] == 0
    else:                                        # sets with a repeated point are counted, never silent,
        assert cert["n_degenerate"] == cert["n_repeated"] > 0       # and provably define no column
        assert "provably define no column" in cert["statement"] or "do not matter" in cert["statement"]


@pytest.mark.parametrize("depth", [2, 3])
def test_integer_grid(depth):
    X = np.array([[i, j] for i in range(4) for j in range(3)], dtype=float)
    y = np.sin(X[:, 0] + 2 * X[:, 1])
    model = ReflectionLasso(depth=depth, tol=1e-9).fit(X, y)
    A, _ = Dictionary(X, depth).materialize()
    assert model.objective_ == pytest.approx(_reference(A, y, model.beta_), rel=1e-7)
    cert = model.certificate_
    if depth == 3:                               # collinear triples with mirrored labels: rank-deficient
        assert cert["n_degenerate"] > 0 == cert["n_repeated"] and not cert["exact"]
        assert "rank-deficient to tolerance" in cert["statement"]
    line = ReflectionLasso(depth=3, tol=1e-9).fit(np.arange(10.0)[:, None] * 1e3 + 7, np.arange(10) % 3)
    A1, _ = Dictionary(np.arange(10.0)[:, None], 3).materialize()
    assert line.objective_ == pytest.approx(_reference(A1, np.arange(10) % 3.0, line.beta_ / 1e3), rel=1e-7)
    assert line.certificate_["exact"] and line.certificate_["n_degenerate"] == 0


@pytest.mark.filterwarnings("ignore:Solution may be inaccurate")     # cvxpy, on the near-equal columns
@pytest.mark.parametrize("d,depth", [(1, 3), (2, 2), (2, 3)])
def test_near_duplicate_points(d, depth):
    rng = np.random.default_rng(11 + d)
    X = rng.normal(size=(8, d))
    X[7] = X[2] + 1e-9 * rng.normal(size=d)
    y = rng.normal(size=8)
    model = ReflectionLasso(depth=depth, tol=1e-9).fit(X, y)
    A, _ = Dictionary(X, depth).materialize()
    assert model.objective_ == pytest.approx(_reference(A, y, model.beta_), rel=1e-7)
    cert = model.certificate_
    if d == 1:                                   # no 1-D point set is degenerate: the proof stands
        assert cert["exact"] and cert["n_degenerate"] == 0
    elif depth == 2:                             # the pair's line is ill-conditioned, skipped and counted;
        assert cert["n_degenerate"] >= 1 and cert["n_repeated"] == 0    # the continuum oracle checks every neuron
        assert cert["exact"] == (cert["continuum_ratio"] <= 1 + cert["tol"])
    else:
        assert not cert["exact"]


@pytest.mark.parametrize("X", [np.random.default_rng(0).normal(size=(7, 2)),
                               np.outer(np.arange(7.0), [1.0, 2.0]) + 1e5])
def test_beta_above_beta_max_returns_zero_with_its_certificate(X):
    y = np.random.default_rng(1).normal(size=7)
    beta_max = ReflectionLasso(depth=3).fit(X, y).beta_max_
    model = ReflectionLasso(depth=3, beta=2 * beta_max).fit(X, y)
    assert len(model.features_) == 0 and model.intercept_ == pytest.approx(y.mean())
    assert model.objective_ == pytest.approx(0.5 * np.sum((y - y.mean()) ** 2))
    assert model.certificate_["dictionary_ratio"] == pytest.approx(0.5)
    assert np.allclose(model.predict(X), y.mean())


def test_no_variation_fits_the_mean_exactly():
    X = np.ones((4, 3))
    model = ReflectionLasso(depth=3).fit(X, [0.0, 1.0, 2.0, 5.0])                    # one distinct point
    assert model.certificate_["exact"] and model.certificate_["intrinsic_dim"] == 0
    assert np.allclose(model.predict(np.zeros((2, 3))), 2.0) and model.objective_ == pytest.approx(14.0 / 2)
    flat = ReflectionLasso(depth=2).fit(np.random.default_rng(0).normal(size=(5, 2)), np.full(5, 3.0))
    assert flat.certificate_["exact"] and len(flat.features_) == 0 and flat.objective_ == 0.0


def test_bool_and_integer_targets_are_numbers():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(9, 2))
    labels = X[:, 0] > 0
    as_float = ReflectionLasso(depth=2, beta=0.05).fit(X, labels.astype(float))
    assert ReflectionLasso(depth=2, beta=0.05).fit(X, labels).objective_ == pytest.approx(as_float.objective_)
    assert ReflectionLasso(depth=2, beta=0.05).fit(X, labels.astype(int)).objective_ == pytest.approx(
        as_float.objective_)
    clf = ReflectionLassoClassifier(depth=2, beta=0.05).fit(X, labels)
    assert list(clf.classes_) == [False, True] and clf.predict(X).dtype == bool


@pytest.mark.parametrize("d,depth", [(1, 2), (2, 3), (3, 2)])
@pytest.mark.parametrize("scale", [1.0, 1e8])
def test_conflicting_duplicates_that_average_to_the_mean_fit_the_constant_at_every_beta(d, depth, scale):
    """Each distinct point occurs twice with targets averaging to mean(y), so every feature (a function of the point)
    is orthogonal to y - mean(y): z = 0 is optimal at every beta (closed form). The computed beta_max is rounding,
    not signal: the fit returns the constant with the level above which that is certified, and neither crashes nor
    stalls; a real signal of 1e-6 relative to y is still fitted, against cvxpy."""
    rng = np.random.default_rng(d * 10 + depth)
    P = rng.normal(size=(depth + d + 1, d))
    X = np.vstack([P, P])
    a = rng.integers(0, 3, size=len(P)).astype(float)
    y = scale * np.concatenate([a, 2 * a.mean() - a])              # the two copies average to mean(y)
    closed = 0.5 * np.sum((y - y.mean()) ** 2)
    for kwargs in ({}, {"beta": 1e-9 * scale}, {"n_betas": 4, "beta_min_ratio": 1e-3}):
        model = ReflectionLasso(depth=depth, **kwargs).fit(X, y)
        cert = model.certificate_
        assert len(model.features_) == 0 and model.objective_ == pytest.approx(closed, rel=1e-12)
        assert cert["exact"] is False and cert["rounding_level"] > 0 and "rounding" in cert["statement"]
        below = 0 < model.beta_ < cert["rounding_level"]
        assert ("nothing is certified" in cert["statement"]) == below
    y2 = y.copy()
    y2[0] += 1e-6 * scale
    signal = ReflectionLasso(depth=depth, n_betas=3, beta_min_ratio=0.1).fit(X, y2)
    assert signal.beta_max_ > 0 and "rounding_level" not in signal.certificate_
    A, _ = Dictionary(signal._frame.transform(X), depth).materialize()
    ref = _reference(signal._frame.scale * A, y2, signal.beta_)
    assert signal.certificate_["dictionary_ratio"] <= 1 + signal.tol
    assert abs(signal.objective_ - ref) <= 1e-7 * ref


def test_a_stalled_restricted_solve_is_reported_not_raised():
    """Points 5e4 from the origin, 1e-6 apart, without bias: the features' values carry ~1e-5 relative rounding, so
    the restricted solve can hold a violator only within its own slack, wider than tol. It used to raise "working
    subsets did not converge" (in the cvxpy solver's polish); now both fits return, equal to 1e-7 when certified,
    else saying "Not converged" with a warning that names the stall (not max_iter)."""
    X = np.array([[50666.68607734546, -50666.686076466234], [50666.68607224567, -50666.686070904776],
                  [50666.68607267227, -50666.686075048055], [50666.68607666928, -50666.686075867],
                  [50666.68607476042, -50666.68607636917], [50666.68607137276, -50666.686075398786]])
    y = np.array([-0.04238182912730373, -0.04394344603933129, 0.04132008930370182, -0.042899769598168484,
                  -0.032564567239023026, 0.04403375182381043])
    beta_max = ReflectionLasso(depth=3, bias=False, beta=1e300).fit(X, y).beta_max_
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fit = ReflectionLasso(depth=3, bias=False, beta=0.0028090354149163323 * beta_max).fit(X, y)
    cert = fit.certificate_
    ref = ReflectionLasso(depth=3, bias=False, beta=fit.beta_, solver="cvxpy").fit(X, y)   # its polish stalled too
    assert abs(fit.objective_ - ref.objective_) <= (1e-7 if cert["dictionary_ratio"] <= 1 + fit.tol else 1e-5) * \
        ref.objective_
    if cert["dictionary_ratio"] > 1 + fit.tol:
        said = [str(w.message) for w in seen if issubclass(w.category, ConvergenceWarning)]
        assert cert["statement"].startswith("Not converged") and cert["exact"] is False
        assert said and "no pass found a new column" in said[0] and fit.n_iter_ < fit.max_iter
