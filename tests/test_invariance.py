"""The Lasso of docs/MATH.md is the same problem in any units and, with a bias, at any offset.

Scaling X by s maps every column to s times itself (the same point sets give the same features),
so at the same relative beta the objective is unchanged and each feature maps to
``(w, s b - w.t, s c)`` with coefficient ``coef / s``; a translation by t (with bias) only moves b.
The fits below are compared with each other, never with a stored number.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import ReflectionLasso, evaluate_features
from analysis.dictionary import Dictionary
from analysis.lasso import cvxpy_lasso, objective

REL = 1e-7


def _instance(seed, N, d):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, d))
    return X, np.sin(2 * X[:, 0]) + np.abs(X[:, -1]) + 0.3 * rng.normal(size=N), rng.normal(size=(5, d)) * 2


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), N=st.integers(6, 10), d=st.integers(1, 3), depth=st.sampled_from([2, 3]),
       bias=st.booleans(), log_scale=st.floats(-9, 9), log_shift=st.floats(-1, 6))
def test_objective_and_features_are_the_same_in_any_units(seed, N, d, depth, bias, log_scale, log_shift):
    if d == 3 and depth == 3:
        N = min(N, 8)
    X, y, Xn = _instance(seed, N, d)
    s = 10.0 ** log_scale
    t = s * 10.0 ** log_shift * np.random.default_rng(seed + 1).normal(size=d) if bias else np.zeros(d)
    m0 = ReflectionLasso(depth=depth, bias=bias, tol=1e-9).fit(X, y)
    m1 = ReflectionLasso(depth=depth, bias=bias, tol=1e-9).fit(X * s + t, y)

    assert m1.objective_ == pytest.approx(m0.objective_, rel=REL)
    assert m1.beta_max_ == pytest.approx(s * m0.beta_max_, rel=REL)
    assert m1.beta_ == pytest.approx(s * m0.beta_, rel=REL)
    assert m1.certificate_["exact"] == m0.certificate_["exact"]
    scale_y = np.abs(y).max()
    assert np.allclose(m1.predict(X * s + t), m0.predict(X), rtol=0, atol=1e-6 * scale_y)
    # every selected feature is the column of the same points and labels in the unscaled data's
    # dictionary, mapped to the new units: (w, s b - w.t, s c), and it computes predict() everywhere
    D = Dictionary(X, depth, bias)
    ids = np.arange(D.n_candidates)
    ref = {e["id"]: e for e in D.explain(ids[D.valid(ids)])}
    for _, f in m1.features_.iterrows():
        e = ref[f["id"]]
        w0 = np.array(e["w"])
        assert np.allclose(f["w"], w0, rtol=0, atol=REL) and np.linalg.norm(f["w"]) == pytest.approx(1, abs=1e-12)
        assert f["b"] + w0 @ t == pytest.approx(s * e["b"], rel=REL, abs=REL * s * (1 + np.abs(t / s).max()))
        assert np.allclose(f["offsets"], s * np.array(e["offsets"]), rtol=REL, atol=REL * s)
    for P in (X * s + t, Xn * s + t):
        assert np.allclose(evaluate_features(m1.features_, m1.intercept_, P), m1.predict(P), rtol=0,
                           atol=1e-9 * scale_y)


@pytest.mark.parametrize("d,transform", [(1, lambda X: X * 1e6), (1, lambda X: X + 1e5),
                                         (2, lambda X: X * 1e6), (2, lambda X: X + 3e4)])
def test_issue_instances_match_the_reference_on_the_unscaled_dictionary(d, transform):
    """The issue's failures (depth 3): a wrong objective was certified exact in d = 1."""
    X, y, _ = _instance(0, 12 if d == 1 else 9, d)
    Xt = transform(X)
    model = ReflectionLasso(depth=3, tol=1e-9).fit(Xt, y)
    s = float(transform(np.ones((1, d)))[0, 0] - transform(np.zeros((1, d)))[0, 0])
    A, _ = Dictionary(X, 3).materialize()
    z, xi = cvxpy_lasso(A, y, model.beta_ / s)
    assert model.objective_ == pytest.approx(objective(A, z, xi, y, model.beta_ / s), rel=1e-7)
    assert model.certificate_["exact"] == (d == 1) and model.certificate_["n_degenerate"] == 0
    assert np.allclose(evaluate_features(model.features_, model.intercept_, Xt), model.predict(Xt), atol=1e-9)
    pytest.importorskip("torch")
    net = model.to_torch()                                  # the network's objective in the user's units
    assert abs(net.objective(Xt, y, model.beta_).item() - model.objective_) <= 1e-9 * model.objective_
