import numpy as np
import pandas as pd
import pytest

from analysis.geometry import feature_values
from analysis.symmetry import depth_symmetry, fold_planes, symmetry_score

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


def test_depth_symmetry_scores_every_fit_on_every_fold_plane():
    """Known fits: depth 2 odd about x = 0.5, depth 3 a fold about x = 0.5, depth 4 a fold about x = -1."""
    fits = {2: (lambda P: P[:, 0] - 0.5, []),
            3: (lambda P: np.abs(np.abs(P[:, 0] - 0.5) - 1.0), [([1.0], -0.5)]),
            4: (lambda P: np.abs(P[:, 0] + 1.0), [([-2.0], -2.0)])}
    table = depth_symmetry(X1, None, 0.1, depths=(2, 3, 4), fit=lambda X, y, beta, depth: fits[depth])
    assert len(table) == 6 and set(table["source_depth"]) == {3, 4}
    score = table.set_index(["depth", "plane"])["score"]
    assert score[(2, 0)] == pytest.approx(-1.0, abs=1e-12)
    assert score[(3, 0)] == pytest.approx(1.0, abs=1e-12)
    assert score[(4, 1)] == pytest.approx(1.0, abs=1e-12)
    assert score[(3, 1)] < 1.0
    given = depth_symmetry(X1, None, 0.1, depths=(3,), fit=lambda X, y, beta, depth: fits[depth],
                           planes=[([1.0], 1.0)])
    assert len(given) == 1 and given["source_depth"].isna().all()
    with pytest.raises(ValueError, match="no fold planes"):
        depth_symmetry(X1, None, 0.1, depths=(2,), fit=lambda X, y, beta, depth: fits[depth])
    with pytest.raises(ValueError, match="depths"):
        depth_symmetry(X1, None, 0.1, depths=(1, 2), fit=lambda X, y, beta, depth: fits[depth])


def test_depth_symmetry_with_the_reflection_lasso():
    pytest.importorskip("analysis.estimator")
    x = np.linspace(-2, 2, 9)[:, None]
    y = np.abs(np.abs(x[:, 0]) - 1.0)          # one depth-3 feature: mirror at 0, copies at +-1
    about_zero = depth_symmetry(x, y, 0.01, depths=(2, 3), planes=[([1.0], 0.0)])
    assert about_zero.set_index("depth")["score"][3] > 0.99
    own = depth_symmetry(x, y, 0.01, depths=(3,))
    assert len(own) >= 1 and (own["source_depth"] == 3).all() and own["score"].le(1 + 1e-12).all()
