from math import comb

import numpy as np
import pytest

from analysis.dictionary import Dictionary, DictionaryTooLarge, labelings, level_alphabet
from analysis.geometry import feature_values, fold_parameters

SIGNS = {"0": 0.0, "+": 1.0, "-": -1.0}


def _unique_columns(A, decimals=9):
    return {tuple(np.round(col, decimals)) for col in A.T}


def test_level_alphabet_and_labelings_counts():
    assert len(level_alphabet(1)) == 3 and len(level_alphabet(2)) == 7
    assert len(labelings(2, 1)) == 3          # 1-D depth 3: two reflections and a midpoint
    assert len(labelings(3, 1)) == 12         # 2-D depth 3: 27 labelings, 3 constant, halved
    assert len(labelings(3, 0)) == 1


@pytest.mark.parametrize("d,depth,bias", [(1, 3, True), (2, 3, True), (3, 2, True), (2, 3, False), (1, 4, True)])
def test_candidate_count_matches_the_combinatorics(d, depth, bias):
    N = 9
    D = Dictionary(np.random.default_rng(0).normal(size=(N, d)), depth, bias)
    expected = sum(comb(N, d + l - 2 - (not bias)) * len(labelings(d + l - 2 - (not bias), l - 2, bias))
                   for l in range(2, depth + 1))
    assert D.n_candidates == expected


def test_1d_depth3_dictionary_is_planes_reflections_and_midpoints():
    """docs/MATH.md section 3 in 1-D: |x - x_j|, ||x - x_j| - |x_k - x_j||, ||x - m_jk| - |x_j - x_k|/2|."""
    x = np.array([-1.3, -0.2, 0.4, 1.1, 2.5])
    A, _ = Dictionary(x[:, None], 3).materialize()
    ref = [np.abs(x - xj) for xj in x]
    for j in range(5):
        for k in range(5):
            if j != k:
                ref.append(np.abs(np.abs(x - x[j]) - abs(x[k] - x[j])))
                ref.append(np.abs(np.abs(x - (x[j] + x[k]) / 2) - abs(x[j] - x[k]) / 2))
    assert _unique_columns(A) == _unique_columns(np.array(ref).T)


@pytest.mark.parametrize("d,depth,bias", [(1, 2, True), (1, 3, False), (2, 2, True), (2, 3, True),
                                          (2, 3, False), (3, 3, True), (2, 4, True)])
def test_every_column_rebuilds_from_its_points_and_labels(d, depth, bias):
    rng = np.random.default_rng(d + 10 * depth)
    X = rng.normal(size=(6, d))
    D = Dictionary(X, depth, bias)
    A, ids = D.materialize()
    assert np.all(np.isfinite(A))
    for info, col in zip(D.explain(ids), A.T):
        P = X[list(info["points"])]
        S = np.array([[SIGNS[ch] for ch in lab] for lab in info["labels"]]).reshape(len(P), info["depth"] - 2)
        w, b, c, ok = fold_parameters(P, S, bias)
        assert ok
        assert np.allclose(feature_values(X, w[None], [b], c[None])[:, 0], col, atol=1e-10)
        assert np.allclose(P @ w + b, S @ c, atol=1e-9)
    assert np.allclose(D.columns(ids), A)


def test_explain_names_and_kinds():
    X = np.array([[0.0], [1.0], [3.0]])
    D = Dictionary(X, 3)
    kinds = {e["id"]: e["kind"] for e in D.explain(np.arange(D.n_candidates))}
    assert kinds["L2:1"] == "plane"
    assert kinds["L3:0-2:0,+"] == "reflection"  # mirror at x_0, x_2 on a copy: zeros at 3 and -3
    assert kinds["L3:0-2:+,-"] == "midpoint"
    info = D.explain([list(kinds).index("L3:0-2:+,-")])[0]
    assert np.isclose(abs(info["b"]), 1.5) and np.isclose(info["offsets"][0], 1.5)


def test_duplicate_points_give_skipped_columns_not_nan():
    X = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 2.0], [2.0, -1.0]])
    D = Dictionary(X, 3)
    features, valid = D.params(np.arange(D.n_candidates))
    W, b, C = features.W, features.b, features.C
    assert not valid.all() and valid.any()
    assert np.all(np.isfinite(W)) and np.all(np.isfinite(b)) and np.all(np.isfinite(C))
    A, ids = D.materialize()
    assert A.shape[1] == valid.sum() and np.all(np.isfinite(A))


def test_materialize_refuses_large_dictionaries():
    D = Dictionary(np.random.default_rng(0).normal(size=(60, 2)), 3)
    with pytest.raises(DictionaryTooLarge, match="max_columns"):
        D.materialize(max_columns=1000)


def test_depth_contains_lower_depths():
    X = np.random.default_rng(4).normal(size=(6, 2))
    A2, _ = Dictionary(X, 2).materialize()
    A3, _ = Dictionary(X, 3).materialize()
    assert _unique_columns(A2) <= _unique_columns(A3)


def test_high_dimension_refuses_to_enumerate_labelings():
    X = np.random.default_rng(0).normal(size=(30, 20))
    with pytest.raises(DictionaryTooLarge, match="sampled"):
        Dictionary(X, 3)


@pytest.mark.parametrize("d,depth,bias",
                         [(1, 2, False), (1, 4, True), (2, 3, True), (2, 3, False), (3, 3, True), (2, 4, True)])
def test_closed_form_count_matches_the_enumeration(d, depth, bias):
    from analysis.dictionary import n_candidates
    D = Dictionary(np.random.default_rng(1).normal(size=(8, d)), depth, bias)
    assert n_candidates(8, d, depth, bias) == D.n_candidates
