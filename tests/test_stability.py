import numpy as np
import pytest
from scipy.optimize import brentq

from analysis import ReflectionLasso
from analysis.stability import fit_stability, mean_shares, plane_stability, wilson

RNG = np.random.default_rng(3)


def _share(f):
    return f["same_points"] / f["same_points_of"]


def test_wilson_interval_solves_its_defining_equation():
    """The Wilson bounds are the p with |k/n - p| = z sqrt(p (1 - p) / n)."""
    for k, n in ((7, 8), (0, 5), (3, 3), (12, 40)):
        g = lambda p, k=k, n=n: (k / n - p) ** 2 - 1.96 ** 2 * p * (1 - p) / n   # noqa: E731
        lo, hi = wilson(k, n)
        assert lo == pytest.approx(0.0 if k == 0 else brentq(g, 1e-12, k / n - 1e-12), abs=1e-9)
        assert hi == pytest.approx(1.0 if k == n else brentq(g, k / n + 1e-12, 1 - 1e-12), abs=1e-9)
    assert wilson(0, 0) == (None, None)


def test_a_planted_plane_through_well_separated_points_is_stable():
    """y = distance to the line through two far-apart training points: every subsample that keeps both selects
    that line again, and every subsample has a plane within tolerance of it."""
    X = RNG.uniform(-1, 1, size=(30, 2))
    X[3], X[17] = [-0.9, -0.8], [0.9, 0.7]
    w = np.array([-(X[17] - X[3])[1], (X[17] - X[3])[0]])
    y = np.abs((X - X[3]) @ w) / np.linalg.norm(w)
    est = ReflectionLasso(depth=2, beta=1e-4, random_state=0).fit(X, y)
    assert sorted(est.features_["points"][0]) == [3, 17]
    out = plane_stability(est, X, y, est.features_.iloc[:1], est.beta_, n_resamples=8, random_state=1)
    f = out["features"][0]
    assert f["same_points_of"] + f["dropped"] == 8 and f["same_points_of"] >= 3
    assert f["same_points"] == f["same_points_of"]
    assert f["near_plane"] == 8 and f["near_plane_ci"][0] > 0.6
    assert f["near_plane"] / 8 > 3 * f["chance_near_plane"]
    assert [t["defines"] == t["of"] for t in f["texts"]] == [True, True]
    assert out["permuted"]["features"] > 0 and out["permuted"]["same_points"] < 0.7    # noise repeats less


def test_an_equivalent_feature_counts_as_reselected_and_a_different_one_does_not():
    """Three collinear training points: the planes through any two of them are one column. A feature named by
    the other pair than the one the refits select is reselected in every subsample keeping its points, through
    the equivalence alone; a plane through two other points is a different column and never counts as one."""
    X = np.random.default_rng(11).uniform(-1, 1, size=(30, 2))
    X[3], X[17], X[5] = [-0.9, -0.8], [0.9, 0.7], [0.0, -0.05]
    w = np.array([-(X[17] - X[3])[1], (X[17] - X[3])[0]])
    y = np.abs((X - X[3]) @ w) / np.linalg.norm(w)
    est = ReflectionLasso(depth=2, beta=1e-4, random_state=0).fit(X, y)
    chosen = sorted(est.features_["points"][0])
    assert set(chosen) < {3, 5, 17}
    other = est.features_.iloc[:1].copy()
    other.at[other.index[0], "points"] = sorted({3, 5, 17} - {chosen[0]})       # same plane, other texts
    out = plane_stability(est, X, y, other, est.beta_, n_resamples=8, permuted=False, random_state=1)
    f = out["features"][0]
    line = {(3, 5), (3, 17), (5, 17)}
    kept = [set(map(tuple, r["points"])) for r in out["resamples"] if set(other["points"].iloc[0]) <= set(r["rows"])]
    assert len(kept) >= 3 and all(sel & line for sel in kept)        # every such refit selects the line again
    by_points = sum(tuple(other["points"].iloc[0]) in sel for sel in kept)
    assert f["same_points_of"] == len(kept) and f["same_points"] == len(kept)
    assert f["same_by_equivalent"] == len(kept) - by_points > 0
    q = [p for p in range(30) if p not in (3, 5, 17)][:2]                      # a plane through two other points
    wrong = est.features_.iloc[:1].copy()
    n = np.array([-(X[q[1]] - X[q[0]])[1], (X[q[1]] - X[q[0]])[0]])
    wrong.at[wrong.index[0], "points"], wrong.at[wrong.index[0], "w"] = q, n / np.linalg.norm(n)
    wrong.at[wrong.index[0], "b"] = -(n / np.linalg.norm(n)) @ X[q[0]]
    f = plane_stability(est, X, y, wrong, est.beta_, n_resamples=8, permuted=False, random_state=1)["features"][0]
    assert f["same_by_equivalent"] == 0 and f["same_points_of"] >= 3


def test_a_pure_noise_target_is_as_stable_as_its_permuted_reference_and_no_more():
    """Subsamples share 80 % of their points, so even noise repeats planes; the permuted target is its measure."""
    X = RNG.normal(size=(40, 2))
    y = RNG.normal(size=40)
    est = ReflectionLasso(depth=2, n_betas=4, beta_min_ratio=0.05, random_state=0).fit(X, y)
    out = plane_stability(est, X, y, est.features_, est.beta_, n_resamples=8, random_state=0)
    shares, ref = mean_shares(out), out["permuted"]
    assert len(out["features"]) >= 5 and ref["features"] >= 5
    assert shares["same_points"] < 0.7 and abs(shares["same_points"] - ref["same_points"]) < 0.2
    assert abs(shares["near_plane"] - ref["near_plane"]) < 0.2


def _brute_force(est, X, y, features, out):
    """Shares recomputed from the subsamples' rows: refitted by cvxpy on the materialised dictionary (1-D: the
    plane of feature |x - x_j| is x = x_j), matched by explicit loops."""
    beta = out["beta"]
    refits = []
    for r in out["resamples"]:
        rows = np.asarray(r["rows"])
        fit = ReflectionLasso(depth=2, beta=beta, solver="cvxpy").fit(X[rows], y[rows])
        keep = np.abs(fit.coef_) > 1e-6 * np.abs(fit.coef_).max()
        refits.append((set(rows.tolist()), [tuple(sorted(int(rows[p]) for p in pts))
                                            for pts, k in zip(fit.features_["points"], keep) if k]))
    expected = []
    for pts in features["points"]:
        pts = tuple(sorted(int(p) for p in pts))
        kept = [sel for rows, sel in refits if set(pts) <= rows]
        hits = 0
        for _, sel in refits:
            hits += any(abs(X[q[0], 0] - X[pts[0], 0]) <= out["offset_tol"] for q in sel)
        def same(rows, sel, pts=pts):   # the same point, or |x - x_j| = +-|x - x_q| + c on the kept points
            x = X[sorted(rows), 0]
            u = np.abs(x - X[pts[0], 0]) - np.abs(x - X[pts[0], 0]).mean()
            return pts in sel or any(np.allclose(u, s * (v - v.mean()), rtol=0, atol=1e-9) for q in sel
                                     for v in [np.abs(x - X[q[0], 0])] for s in (1, -1))
        expected.append((sum(same(rows, sel) for rows, sel in refits if set(pts) <= rows), len(kept), hits,
                         [sum(p in {q for s in sel for q in s} for rows, sel in refits if p in rows) for p in pts]))
    return expected


def test_stability_matches_a_brute_force_recomputation_on_a_tiny_case():
    X = np.sort(RNG.uniform(-2, 2, size=(12, 1)), axis=0)
    y = np.abs(X[:, 0] - X[4, 0]) - 0.5 * np.abs(X[:, 0] - X[9, 0]) + 0.05 * RNG.normal(size=12)
    est = ReflectionLasso(depth=2, beta=0.02, random_state=0).fit(X, y)
    out = plane_stability(est, X, y, est.features_, est.beta_, n_resamples=6, fraction=0.75, permuted=False,
                         random_state=2)
    assert out["beta"] == pytest.approx(0.02 * 9 / 12)
    got = [(f["same_points"], f["same_points_of"], f["near_plane"], [t["defines"] for t in f["texts"]])
           for f in out["features"]]
    assert got == _brute_force(est, X, y, est.features_, out)


def test_fit_stability_refits_each_stored_depth_with_its_beta():
    X = RNG.normal(size=(25, 2))
    y = np.abs(X[:, 0]) + 0.1 * RNG.normal(size=25)
    fits = {}
    for depth in (2, 3):
        est = ReflectionLasso(depth=depth, n_betas=3, beta_min_ratio=0.1, random_state=0).fit(X, y)
        fits[depth] = {"features": est.features_, "beta": est.beta_}
    out = fit_stability(fits, X, y, {"random_state": 0}, n_resamples=3)
    assert all(out[d]["permuted"]["same_points"] is None or 0 <= out[d]["permuted"]["same_points"] <= 1 for d in out)
    assert set(out) == {2, 3}
    for depth in (2, 3):
        assert out[depth]["beta"] == pytest.approx(fits[depth]["beta"] * 20 / 25)
        assert [f["id"] for f in out[depth]["features"]] == fits[depth]["features"]["id"].tolist()
        assert all(len(r["rows"]) == 20 and len(set(r["rows"])) == 20 for r in out[depth]["resamples"])


def test_a_depth_whose_subsamples_are_too_small_is_left_out():
    X = np.array([[0.0, 0.0], [1.0, 0.1], [0.2, 1.0], [1.1, 1.3]])
    y = np.array([0.0, 1.0, 0.5, 2.0])
    est = ReflectionLasso(depth=4, beta=1e-3, random_state=0).fit(X, y)     # 4 points fix a depth-4 feature
    assert len(est.features_)
    assert fit_stability({4: {"features": est.features_, "beta": est.beta_}}, X, y, {}, n_resamples=2) == {}


def test_bad_settings_are_rejected():
    X = RNG.normal(size=(10, 1))
    est = ReflectionLasso(depth=2)
    with pytest.raises(ValueError, match="fraction"):
        plane_stability(est, X, X[:, 0], None, 0.1, fraction=1.0)
