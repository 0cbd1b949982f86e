"""ReflectionLasso as a scikit-learn estimator: checks, predictions, reconstruction, bad input."""
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from analysis import ReflectionLasso, ReflectionLassoClassifier, evaluate_features
from analysis.dictionary import Dictionary
from analysis.geometry import feature_values


@parametrize_with_checks([ReflectionLasso(candidates="sampled", n_samples=200, max_iter=2, random_state=0),
                          ReflectionLassoClassifier(candidates="sampled", n_samples=200, max_iter=2,
                                                    random_state=0)])
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")   # max_iter=2 keeps the checks fast
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _data(N=10, d=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, d))
    return X, np.sin(2 * X[:, 0]) + np.abs(X[:, -1]) + 0.1 * rng.normal(size=N)


@pytest.mark.parametrize("d,depth,bias", [(1, 3, True), (2, 2, True), (2, 3, False), (3, 3, True)])
def test_predict_on_training_points_is_A_z_plus_xi(d, depth, bias):
    X, y = _data(9, d)
    model = ReflectionLasso(depth=depth, bias=bias).fit(X, y)
    D = Dictionary(X, depth, bias)
    _, ids = D.materialize()
    by_id = {e["id"]: i for i, e in zip(ids, D.explain(ids))}
    F = model.features_
    assert list(F.columns) == ["id", "kind", "depth", "points", "labels", "w", "b", "offsets", "coef", "source",
                               "equivalents"]
    assert len(F) > 0 and np.all(np.diff(np.abs(F["coef"].to_numpy())) <= 0)
    assert set(F["kind"]) <= {"plane", "reflection", "midpoint", "fold"}
    A = D.columns(np.array([by_id[i] for i in F["id"]]))
    fitted = A @ model.coef_ + model.intercept_
    assert np.allclose(model.predict(X), fitted, atol=1e-10)
    r = y - fitted
    assert np.isclose(model.objective_, 0.5 * r @ r + model.beta_ * np.abs(model.coef_).sum(), rtol=1e-12)
    for eq_list, col in zip(F["equivalents"], A.T):          # equivalents equal on the data up to sign + constant
        for eq in eq_list:
            other = D.columns(np.array([by_id[eq]]))[:, 0]
            assert min(np.ptp(other - col), np.ptp(other + col)) < 1e-8


def test_predict_on_new_points_and_evaluate_features():
    X, y = _data(10, 2, seed=1)
    model = ReflectionLasso(depth=3).fit(X, y)
    Xn = np.random.default_rng(9).normal(size=(7, 2)) * 3
    W = np.array(model.features_["w"].tolist())
    C = np.array([list(o) for o in model.features_["offsets"]])
    expected = model.intercept_ + feature_values(Xn, W, model.features_["b"].to_numpy(), C) @ model.coef_
    assert np.allclose(model.predict(Xn), expected)
    assert np.allclose(evaluate_features(model.features_, model.intercept_, Xn), expected)
    assert np.allclose(evaluate_features(model.features_.iloc[:0], 1.5, Xn), 1.5)


@pytest.mark.parametrize("depth,bias", [(2, True), (3, True), (3, False)])
def test_to_torch_objective_equals_lasso_objective(depth, bias):
    pytest.importorskip("torch")
    X, y = _data(9, 2, seed=2)
    model = ReflectionLasso(depth=depth, bias=bias).fit(X, y)
    net = model.to_torch()
    assert np.allclose(net.predict(X), model.predict(X), atol=1e-10)
    assert abs(net.objective(X, y, model.beta_).item() - model.objective_) <= 1e-9 * model.objective_


def test_certificate_and_timings_are_json_ready():
    import json
    X, y = _data(8, 2)
    model = ReflectionLasso(depth=2, n_betas=3).fit(X, y)
    text = json.dumps(model.certificate_)
    assert {"scope", "exact", "dictionary_ratio", "duality_gap", "tol", "statement"} <= set(json.loads(text))
    assert {"beta_max_s", "solve_s", "certificate_s", "total_s"} <= set(model.timings_)
    assert isinstance(model.path_, pd.DataFrame) and len(model.path_) == 3


def test_classifier_maps_two_classes():
    X, y = _data(12, 2, seed=4)
    labels = np.where(y > np.median(y), "pos", "neg")
    clf = ReflectionLassoClassifier(depth=2, beta=0.05).fit(X, labels)
    reg = ReflectionLasso(depth=2, beta=0.05).fit(X, np.where(labels == "pos", 1.0, -1.0))
    assert list(clf.classes_) == ["neg", "pos"]
    assert np.isclose(clf.objective_, reg.objective_, rtol=1e-10)
    assert np.array_equal(clf.predict(X), np.where(reg.predict(X) > 0, "pos", "neg"))
    with pytest.raises(ValueError, match="Only binary classification"):
        ReflectionLassoClassifier().fit(X, np.arange(12) % 3)


BAD = [
    (lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 3, np.nan, X), y), "NaN"),
    (lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 3, np.inf, X), y), "infinity"),
    (lambda X, y: (X, y[:-1]), "inconsistent numbers of samples"),
    (lambda X, y: (X, y.astype(str)), "y must be numeric.*ReflectionLassoClassifier"),
]


@pytest.mark.parametrize("make,message", BAD)
def test_bad_input_fails_fast_with_a_clear_message(make, message):
    X, y = _data(8, 2)
    with pytest.raises(ValueError, match=message):
        ReflectionLasso(depth=3).fit(*make(X, y))


def test_bad_parameters_and_too_large_dictionaries():
    X, y = _data(30, 2)
    with pytest.raises(ValueError, match="depth must be an integer >= 2"):
        ReflectionLasso(depth=1).fit(X, y)
    with pytest.raises(ValueError, match="beta must be a positive"):
        ReflectionLasso(beta=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="candidates must be one of"):
        ReflectionLasso(candidates="all").fit(X, y)
    with pytest.raises(ValueError, match=r"depth-4 feature in d=2 is fixed by 4 points, got n_samples=3; add points"):
        ReflectionLasso(depth=4).fit(X[:3], y[:3])
    line = np.c_[X[:3, 0], 2 * X[:3, 0]]                   # 3 points on a line: a 1-D problem, depth 4 fits
    assert ReflectionLasso(depth=4).fit(line, y[:3]).certificate_["intrinsic_dim"] == 1
    with pytest.raises(ValueError, match=rf"{Dictionary(X, 3).n_candidates:,}.*max_candidates=1,000"):
        ReflectionLasso(depth=3, max_candidates=1000).fit(X, y)


def test_warm_started_path_ends_certified_where_the_restricted_search_stalls():
    """Regression: on this path the warm-started feature-sign search stalls on ~4,700 near-parallel
    atoms (support of rank N-1); the solver must still end on a certified optimum, the direct fit's."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    y = np.sign(X[:, 0])
    path = ReflectionLasso(depth=3, beta=0.05, n_betas=8).fit(X, y)
    direct = ReflectionLasso(depth=3, beta=0.05).fit(X, y)
    assert path.certificate_["dictionary_ratio"] <= 1 + 1e-6
    assert path.path_["dictionary_ratio"].max() <= 1 + 1e-6
    assert path.objective_ == pytest.approx(direct.objective_, rel=1e-9)


PARAMETERS = [
    ({"bias": 1}, "bias must be True or False, got 1"),
    ({"solver": "lbfgs"}, "solver must be one of"),
    ({"solver": "cvxpy", "candidates": "sampled"}, "candidates must be 'dictionary' with solver='cvxpy'"),
    ({"tol": 0.0}, "tol must be a positive number"),
    ({"max_iter": 0}, "max_iter must be an integer >= 1, got 0"),
    ({"max_candidates": 2.5}, "max_candidates must be an integer >= 1, got 2.5"),
    ({"n_samples": 0}, "n_samples must be an integer >= 1, got 0"),
    ({"random_state": "seed"},
     r"random_state must be None, an integer in \[0, 2\*\*32\) or a numpy.random.RandomState, got 'seed'"),
    ({"random_state": -1}, "random_state must be None"),
    ({"verbose": "yes"}, "verbose must be True, False or an integer >= 0"),
    ({"n_betas": 0}, "n_betas must be an integer >= 1, got 0"),
    ({"beta_min_ratio": 1.5}, r"beta_min_ratio must be a number in \(0, 1\] or None, got 1.5"),
    ({"betas": [0.1, -0.2]}, "betas must be a non-empty 1-D array of positive finite numbers"),
    ({"betas": [0.1], "n_betas": 3}, "give either betas or n_betas/beta_min_ratio"),
    ({"path": 3, "n_betas": 2}, "path is deprecated and cannot be combined"),
    ({"path": 3, "betas": np.array([0.1, 0.2])}, "path is deprecated and cannot be combined"),
    ({"init_neurons": (np.ones((1, 2)), np.zeros(1), [()])}, "init_neurons needs candidates='sampled'"),
    ({"init_neurons": (np.ones((1, 3)), np.zeros(1), [()]), "candidates": "sampled"},
     r"init_neurons must be \(W, b, C\) with W of shape \(k, n_features\).*n_features=2"),
]


@pytest.mark.parametrize("params,message", PARAMETERS)
def test_every_parameter_is_checked_at_fit_with_one_line_naming_it(params, message):
    X, y = _data(8, 2)
    model = ReflectionLasso(depth=3, **params)                 # scikit-learn: __init__ stores, fit checks
    with pytest.raises(ValueError, match=message) as err:
        model.fit(X, y)
    assert "\n" not in str(err.value) and str(err.value).startswith("ReflectionLasso: ")


def test_parameters_after_depth_are_keyword_only():
    with pytest.raises(TypeError):
        ReflectionLasso(2, 0.1)
    with pytest.raises(TypeError):
        ReflectionLassoClassifier(2, 0.1)


def test_random_state_follows_scikit_learns_rules():
    X, y = _data(10, 2, seed=3)
    kw = dict(depth=3, beta=0.05, candidates="sampled", n_samples=100, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = ReflectionLasso(random_state=np.random.RandomState(7), **kw).fit(X, y)
        b = ReflectionLasso(random_state=np.random.RandomState(7), **kw).fit(X, y)
        c = ReflectionLasso(random_state=5, **kw).fit(X, y)
        d = ReflectionLasso(random_state=5, **kw).fit(X, y)
        np.random.seed(11)                                     # None: numpy's global RandomState
        e = ReflectionLasso(**kw).fit(X, y)
        np.random.seed(11)
        f = ReflectionLasso(**kw).fit(X, y)
    assert a.objective_ == b.objective_ and c.objective_ == d.objective_ and e.objective_ == f.objective_


def test_explicit_path_parameters_solve_the_grids_they_name():
    X, y = _data(10, 2, seed=5)
    beta_max = ReflectionLasso(depth=2).fit(X, y).beta_max_
    down_to_beta = ReflectionLasso(depth=2, beta=0.2 * beta_max, n_betas=3).fit(X, y)
    assert np.allclose(down_to_beta.path_["beta"], np.geomspace(beta_max, 0.2 * beta_max, 3))
    ratio = ReflectionLasso(depth=2, n_betas=3, beta_min_ratio=0.25).fit(X, y)
    assert np.allclose(ratio.path_["beta"], np.geomspace(beta_max, 0.25 * beta_max, 3))
    assert np.isclose(ratio.beta_, 0.25 * beta_max)
    ratio_and_beta = ReflectionLasso(depth=2, beta=0.1 * beta_max, n_betas=2, beta_min_ratio=0.5).fit(X, y)
    assert np.allclose(ratio_and_beta.path_["beta"], [beta_max, 0.5 * beta_max, 0.1 * beta_max])
    explicit = ReflectionLasso(depth=2, betas=[0.3, 0.6]).fit(X, y)
    assert explicit.beta_ == 0.3 and explicit.path_["beta"].tolist() == [0.6, 0.3]
    plain = ReflectionLasso(depth=2).fit(X, y)
    assert np.isclose(plain.beta_, 0.1 * beta_max) and len(plain.path_) == 1


@pytest.mark.parametrize("path,written,params", [
    (3, "n_betas=3", {"n_betas": 3}),
    ((3, 0.5), "n_betas=3, beta_min_ratio=0.5", {"n_betas": 3, "beta_min_ratio": 0.5}),
    ((2.0, 1.0), "betas=[2.0, 1.0]", {"betas": [2.0, 1.0]}),         # no longer read as n=2, ratio=1.0
    ((3, 2.0), "betas=[3.0, 2.0]", {"betas": [3.0, 2.0]}),             # a ratio above 1 never was one
    (np.array([0.5, 0.2]), "betas=[0.5, 0.2]", {"betas": [0.5, 0.2]}),
])
def test_deprecated_path_warns_with_what_to_write_and_maps_exactly(path, written, params):
    X, y = _data(10, 2, seed=6)
    with pytest.warns(FutureWarning, match=rf"path= is deprecated.*write {re.escape(written)} instead") as record:
        old = ReflectionLasso(depth=2, path=path).fit(X, y)
    assert record[0].filename == __file__                     # points at the caller's line
    new = ReflectionLasso(depth=2, **params).fit(X, y)
    assert old.path_["beta"].tolist() == new.path_["beta"].tolist() and old.beta_ == new.beta_
    assert old.objective_ == new.objective_


def test_a_fit_stopped_by_max_iter_warns_and_says_so():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 2))
    y = np.sign(X[:, 0]) + 0.1 * rng.normal(size=20)
    with pytest.warns(ConvergenceWarning, match=r"stopped unconverged after 1 passes \(dictionary ratio .* raise "
                                                 r"max_iter=1") as record:
        short = ReflectionLasso(depth=3, beta=0.01, max_iter=1).fit(X, y)
    assert record[0].filename == __file__
    assert short.certificate_["dictionary_ratio"] > 1 + short.tol and not short.certificate_["exact"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)      # the same problem, enough passes: silent
        full = ReflectionLasso(depth=3, beta=0.01).fit(X, y)
    assert full.certificate_["dictionary_ratio"] <= 1 + full.tol and full.objective_ < short.objective_
