import numpy as np
import pandas as pd
import pytest

from analysis.dictionary import Dictionary
from analysis.emergence import plane_distances
from analysis.geometry import feature_values
from analysis.symmetry import (
    fold_planes,
    mirror_planes,
    nn_scale,
    summarize,
    support,
    symmetry_score,
    symmetry_table,
    verdict,
)

RNG = np.random.default_rng(0)
X1 = RNG.normal(size=(20, 1))
X2 = RNG.normal(size=(30, 2))
W = np.array([0.6, 0.8])


def test_even_function_scores_one_and_odd_function_minus_one():
    assert symmetry_score(lambda P: np.abs(P[:, 0] - 0.3), X1, [1.0], -0.3) == pytest.approx(1.0, abs=1e-12)
    assert symmetry_score(lambda P: P[:, 0] - 0.3, X1, [2.0], -0.6) == pytest.approx(-1.0, abs=1e-12)
    assert symmetry_score(lambda P: np.full(len(P), 2.0), X2, W, 0.1) == 1.0


@pytest.mark.parametrize("C", [[[0.0, 0.0]], [[0.7, 0.0]], [[0.7, 0.3]]])
def test_fold_features_are_symmetric_about_their_mirror(C):
    """Depth 2, 3, 4 features of docs/MATH.md section 3 are symmetric about H = {w.x + b = 0}."""
    f = lambda P: feature_values(P, W[None, :], [0.2], C)[:, 0]   # noqa: E731
    assert symmetry_score(f, X2, W, 0.2) == pytest.approx(1.0, abs=1e-12)
    other = np.array([1.0, 0.0])     # not parallel to H, nor perpendicular to it
    assert symmetry_score(f, X2, other, 0.3) < 0.9


def test_score_matches_a_direct_computation_on_a_generic_function():
    f = lambda P: np.sin(P[:, 0]) + P[:, 1] ** 2   # noqa: E731
    w, b = np.array([1.0, 1.0]), -0.5
    P = np.r_[X2, [x - 2 * (w @ x + b) * w / 2 for x in X2]]
    mirrored = np.r_[P[len(X2):], P[: len(X2)]]
    expected = 1 - np.mean(np.abs(f(P) - f(mirrored))) / np.mean(np.abs(f(P) - f(P).mean()))
    assert symmetry_score(f, X2, w, b) == pytest.approx(expected, rel=1e-12)


def test_bad_planes_and_functions_are_rejected():
    with pytest.raises(ValueError, match="non-zero vector of length 2"):
        symmetry_score(lambda P: P[:, 0], X2, [0.0, 0.0], 0.0)
    with pytest.raises(ValueError, match="one value per point"):
        symmetry_score(lambda P: P, X2, W, 0.0)
    with pytest.raises(ValueError, match="NaN"):
        symmetry_score(lambda P: np.full(len(P), np.nan), X2, W, 0.0)


def test_fold_planes_keep_features_with_a_fold():
    feats = pd.DataFrame({"w": [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], "b": [0.0, 1.0, -1.0],
                          "offsets": [(0.0,), (0.5,), (0.2,)], "coef": [3.0, -0.1, 0.4]})
    planes = fold_planes(feats.to_dict("records"))
    assert [p[1] for p in planes] == [-1.0, 1.0] and planes[0][2] == 0.4


def _brute_support(X, w, b, radius):
    w = np.asarray(w, dtype=float)
    keep = []
    for i, x in enumerate(X):
        r = x - 2 * (w @ x + b) * w / (w @ w)
        if min(np.linalg.norm(r - z) for z in X) <= radius:
            keep.append(i)
    return keep


def test_support_keeps_points_whose_mirror_lands_near_data():
    X = RNG.normal(size=(40, 2))
    radius = nn_scale(X)
    D = np.array([[np.linalg.norm(a - c) if i != j else np.inf for j, c in enumerate(X)] for i, a in enumerate(X)])
    assert radius == pytest.approx(np.median(D.min(axis=1)))
    for w, b in (([0.6, 0.8], 0.1), ([1.0, 0.0], 2.5)):
        assert support(X, w, b, radius).tolist() == _brute_support(X, w, b, radius)
    # a plane far outside the data: no mirror image lands near data, the score is undefined
    assert support(X, [1.0, 0.0], 40.0, radius).size == 0
    assert np.isnan(symmetry_score(lambda P: P[:, 0], X, [1.0, 0.0], 40.0, radius))


# a symmetric point cloud about the plane x0 = 0.2 plus noise points, so the support is large
PLANE_W, PLANE_B = np.array([1.0, 0.0]), -0.2
_half = np.random.default_rng(7).normal(size=(40, 2)) * [1.0, 1.5]
XS = np.r_[_half, _half * [-1, 1] + [0.4, 0]]


def test_planted_symmetric_target_scores_one_and_beats_the_null():
    f = lambda P: np.abs(np.abs(P[:, 0] - 0.2) - 0.7) + np.sin(P[:, 1])   # noqa: E731  symmetric about x0 = 0.2
    planes = [{"w": PLANE_W, "b": PLANE_B}]
    table, null = symmetry_table({3: f}, XS, planes, n_null=100, n_boot=100)
    row = table.iloc[0]
    assert row["n_support"] == len(XS)
    assert row["score"] == pytest.approx(1.0, abs=1e-12) and row["lo"] == pytest.approx(1.0, abs=1e-12)
    assert row["score"] > row["null_q95"] + 0.2 and row["p_value"] <= 2 / 101
    s = summarize(table, null)[3]
    assert s["above_chance"] == "supported" and s["share_above_null"] == 1.0


def test_planted_asymmetric_target_does_not_beat_the_null():
    f = lambda P: P[:, 0] + 0.5 * np.sin(P[:, 1])   # noqa: E731  a trend along the normal: odd about x0 = 0.2
    table, null = symmetry_table({2: f}, XS, [{"w": PLANE_W, "b": PLANE_B}], n_null=100, n_boot=100)
    row = table.iloc[0]
    assert row["score"] < 0 and row["p_value"] > 0.5
    assert summarize(table, null)[2]["above_chance"] == "not supported"


def test_depth_comparison_is_paired_and_its_interval_excludes_zero():
    fits = {2: lambda P: P[:, 0] - 0.2, 3: lambda P: np.abs(P[:, 0] - 0.2)}
    table, null = symmetry_table(fits, XS, [{"w": PLANE_W, "b": PLANE_B, "source_depth": 3}], n_null=50, n_boot=100)
    t = table.set_index("depth")
    assert t.loc[2, "score"] == pytest.approx(-1.0) and t.loc[3, "score"] == pytest.approx(1.0)
    assert np.isnan(t.loc[2, "diff"]) and t.loc[3, "diff"] == pytest.approx(2.0)
    assert t.loc[3, "diff_lo"] == pytest.approx(2.0)
    s = summarize(table, null)
    assert s[3]["more_symmetric_than_shallower"] == "supported" and "diff" not in s[2]
    assert verdict(-0.1, 0.3) == "cannot tell" and verdict(-0.5, -0.1) == "not supported"
    assert verdict(np.nan, 1.0) == "cannot tell"


def test_multilevel_planes_of_a_depth_4_feature_are_mirror_planes_within_each_side():
    feats = pd.DataFrame({"w": [list(W)], "b": [0.1], "offsets": [(0.9, 0.3)], "coef": [2.0]})
    planes = mirror_planes(feats, source_depth=4)
    assert [p["level"] for p in planes] == [1, 2, 2]
    assert [p["b"] for p in planes] == pytest.approx([0.1, 0.1 - 0.9, 0.1 + 0.9])
    f = lambda P: 2.0 * feature_values(P, W[None, :], [0.1], [[0.9, 0.3]])[:, 0]   # noqa: E731
    X = RNG.normal(size=(200, 2)) * 2
    table, _ = symmetry_table({4: f}, X, planes, n_null=20, n_boot=20, min_support=3)
    assert (table["n_support"] >= 3).all() and len(table) == 3
    np.testing.assert_allclose(table["score"], 1.0, atol=1e-12)
    # without the side restriction the level-2 plane is not a mirror of f
    assert symmetry_score(f, X, W, 0.1 - 0.9, nn_scale(X)) < 0.9


def test_a_planted_depth_3_fold_plane_is_recovered_by_the_lasso():
    pytest.importorskip("analysis.estimator")
    from analysis.estimator import ReflectionLasso
    X = np.random.default_rng(3).normal(size=(9, 2))
    D = Dictionary(X, 3)
    features, valid = D.params(np.arange(D.n_candidates))
    W, b, C = features.W, features.b, features.C
    j = next(j for j in np.random.default_rng(0).permutation(D.n_candidates) if valid[j] and C[j, 0] > 0.3)
    y = 2.0 * feature_values(X, W[j:j + 1], b[j:j + 1], C[j:j + 1])[:, 0] + 0.5
    est = ReflectionLasso(depth=3, beta=1e-4).fit(X, y)
    top = fold_planes(est.features_)[0]
    assert plane_distances([top[0]], [top[1]], W[j:j + 1], b[j:j + 1])[0][0] < 1e-6
