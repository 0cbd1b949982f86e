from itertools import combinations

import numpy as np
import pandas as pd
import pytest
import torch

from analysis.emergence import (
    emergence,
    null_planes,
    plane_distances,
    point_distances,
    training_planes,
    unsigned_angles,
    weighted_share,
)
from analysis.network import FCAbsNet, ParallelAbsNet


def _rot(theta):
    return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def _plane_through(p, q):
    w = np.array([q[1] - p[1], p[0] - q[0]])
    w /= np.linalg.norm(w)
    return w, -w @ p


def test_unsigned_angles_recover_rotations_and_ignore_sign():
    normals = np.array([[1.0, 0.0], [0.0, 1.0]])
    W = np.array([_rot(np.radians(10)) @ [1.0, 0.0], -3.0 * (_rot(np.radians(-30)) @ [0.0, 1.0]), [-2.0, 0.0]])
    angle, nearest = unsigned_angles(W, normals)
    np.testing.assert_allclose(angle, [10.0, 30.0, 0.0], atol=1e-9)
    assert nearest.tolist() == [0, 1, 0]


def test_plane_distance_is_the_breakpoint_distance_in_1d_and_sign_free():
    dist, nearest = plane_distances([[1.0], [-2.0]], [-0.3, 2.4], [[1.0], [1.0]], [0.5, -1.0])
    # breakpoints 0.3 and 1.2 against -0.5 and 1.0
    np.testing.assert_allclose(dist, [0.7, 0.2], atol=1e-12)
    assert nearest.tolist() == [1, 1]
    w, b = _plane_through(np.array([0.0, 1.0]), np.array([2.0, -1.0]))
    assert plane_distances([-5 * w], [-5 * b], [w], [b])[0][0] == pytest.approx(0.0, abs=1e-12)


def test_training_planes_pass_through_pairs_of_points():
    X = np.random.default_rng(0).normal(size=(7, 2))
    W, b, exhaustive = training_planes(X)
    assert exhaustive and len(W) == 21
    brute = np.array([np.r_[_plane_through(X[i], X[j])] for i, j in combinations(range(7), 2)])
    dist, _ = plane_distances(brute[:, :2], brute[:, 2], W, b)
    np.testing.assert_allclose(dist, 0.0, atol=1e-9)
    Ws, bs, exhaustive = training_planes(X, max_planes=10, n_samples=5, random_state=0)
    assert not exhaustive and 1 <= len(Ws) <= 5
    assert np.all(plane_distances(Ws, bs, W, b)[0] < 1e-9)


def _features(W, b, C, coef):
    return pd.DataFrame({"w": list(W), "b": b, "offsets": [tuple(c) for c in C], "coef": coef})


def test_neurons_on_the_predicted_planes_score_zero_and_perturbed_ones_do_not():
    X = np.random.default_rng(1).normal(size=(6, 2))
    planes = [_plane_through(X[0], X[1]), _plane_through(X[2], X[4])]
    W = np.array([p[0] for p in planes])
    b = np.array([p[1] for p in planes])
    C = np.array([[0.4], [0.0]])
    feats = _features(W, b, C, [1.0, -0.5])
    W_net = np.r_[W, [_rot(np.radians(20)) @ W[0]]]
    net = ParallelAbsNet.from_features(W_net, np.r_[b, b[0]], np.r_[C, [[0.9]]], [1.0, -0.5, 0.7], 0.1, 3)
    res = emergence(net, X, feats, threshold=1e-6)
    t = res.neurons
    np.testing.assert_allclose(t["angle_deg"], [0.0, 0.0, 20.0], atol=1e-6)
    np.testing.assert_allclose(t["plane_distance"][:2], 0.0, atol=1e-9)
    np.testing.assert_allclose(t["training_plane_distance"][:2], 0.0, atol=1e-9)
    assert t["training_plane_distance"][2] > 0.01
    assert t["on_predicted"].tolist() == [True, True, False]
    np.testing.assert_allclose(t["offset_error"][:2], 0.0, atol=1e-9)
    assert t["offset_error"][2] == pytest.approx(0.5, abs=1e-9)
    assert res.summary["share_on_predicted"] == pytest.approx(2 / 3)
    assert res.summary["median_offset_error"] == pytest.approx(0.0, abs=1e-9)


def test_inactive_neurons_are_not_counted():
    X = np.random.default_rng(2).normal(size=(5, 1))
    feats = _features([[1.0]], [-X[0, 0]], [[]], [1.0])
    net = ParallelAbsNet.from_features([[1.0], [1.0]], [-X[0, 0], 0.123], None, [1.0, 1e-9], 0.0, 2)
    res = emergence(net, X, feats, threshold=1e-6)
    assert res.neurons["active"].tolist() == [True, False]
    assert res.summary["n_active"] == 1 and res.summary["share_on_predicted"] == 1.0


def test_fully_connected_first_layer():
    X = np.random.default_rng(3).normal(size=(6, 2))
    net = FCAbsNet(2, 3, 4, seed=0)
    w, b = _plane_through(X[0], X[3])
    with torch.no_grad():
        net.W[0][0] = torch.as_tensor(2.5 * w)
        net.biases[0][0] = 2.5 * b
    res = emergence(net, X, _features([w], [b], [[0.0]], [1.0]), threshold=1e-6)
    assert res.neurons["on_predicted"][0] and "offset_error" not in res.neurons
    assert res.neurons["training_plane_distance"][0] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="shape"):
        emergence(net, X[:, :1])


def test_point_distances_are_the_nearest_points_distances():
    X = np.random.default_rng(4).normal(size=(12, 2))
    w, b = _plane_through(X[2], X[7])
    near = point_distances([3 * w], [3 * b], X, 3)[0]
    brute = np.sort([abs(w @ x + b) for x in X])[:3]
    np.testing.assert_allclose(near, brute, atol=1e-12)
    assert near[1] == pytest.approx(0.0, abs=1e-12)


def test_weighted_share_and_its_interval():
    share, lo, hi = weighted_share([1, 0, 1, 0], [3.0, 1.0, 0.0, 0.0])
    assert share == pytest.approx(0.75) and 0 <= lo <= share <= hi <= 1
    assert np.isnan(weighted_share([1, 0], [0.0, 0.0])[0])


def test_two_stage_interval_carries_the_spread_between_networks():
    """Two networks of 20 equal neurons, one all on a plane, one none: pooled share 1/2. Over neurons alone the
    interval is narrow; drawing the networks first, (A, A) and (B, B) each come with probability 1/4, so the
    2.5 % and 97.5 % quantiles are exactly 0 and 1."""
    hit, weight = np.r_[np.ones(20), np.zeros(20)], np.ones(40)
    share, lo, hi = weighted_share(hit, weight, rng=np.random.default_rng(0))
    assert share == 0.5 and 0.3 < lo < 0.5 < hi < 0.7
    share, lo, hi = weighted_share(hit, weight, groups=np.repeat([0, 1], 20), rng=np.random.default_rng(0))
    assert (share, lo, hi) == (0.5, 0.0, 1.0)


def test_emergence_over_seeds_pools_each_network_once():
    """Three networks of different sizes: the per-network shares are those of each network alone, the pooled
    weighted share is their mean (each network's contributions sum to one) and the counts add up."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(15, 2))
    nets = []
    for m, on in ((4, 4), (6, 1), (3, 0)):
        planes = [_plane_through(*X[rng.choice(15, 2, replace=False)]) for _ in range(on)]
        W = np.array([p[0] for p in planes] + [_rot(a) @ [1.0, 0.0] for a in rng.uniform(0, np.pi, m - on)])
        b = np.array([p[1] for p in planes] + list(rng.normal(size=m - on)))
        nets.append(ParallelAbsNet.from_features(W, b, None, rng.uniform(0.5, 2.0, m), 0.0, 2))
    alone = [emergence(net, X, random_state=0).summary for net in nets]
    pooled = emergence(nets, X, random_state=0)
    s = pooled.summary
    assert s["n_networks"] == 3 and s["n_neurons"] == 13
    assert pooled.neurons["network"].tolist() == [0] * 4 + [1] * 6 + [2] * 3
    np.testing.assert_allclose(s["share_through_point_per_network"], [a["share_through_point"] for a in alone])
    assert s["share_through_point"] == pytest.approx(np.mean(s["share_through_point_per_network"]))
    assert alone[0]["share_through_point"] == 1.0 and s["share_through_point_ci"][0] < s["share_through_point"]


def test_null_planes_cross_the_data():
    X = np.random.default_rng(5).normal(size=(30, 3))
    W, b = null_planes(X, 500, np.random.default_rng(0))
    np.testing.assert_allclose(np.linalg.norm(W, axis=1), 1.0)
    side = np.sign(X @ W.T + b)
    assert np.all(side.min(axis=0) < 0) and np.all(side.max(axis=0) > 0)


def test_trained_network_hyperplanes_pass_through_training_points_more_often_than_chance():
    """Planted: a strongly regularised depth-2 fit of a noise target; at the optimum every neuron's plane passes
    through a training point (the dual is piecewise linear in b with kinks there), far above the 5 % chance level."""
    from analysis.training import train
    rng = np.random.default_rng(6)
    X = rng.uniform(-2, 2, size=(25, 2))
    y = rng.normal(size=25)
    res = train(ParallelAbsNet(2, 2, 16), X, y, 2.0, optimizer="adam", max_epochs=2000, seeds=[0], progress=False)
    out = emergence(res.net, X, random_state=0)
    s = out.summary
    assert s["share_through_point"] > 0.5 and s["share_through_point_ci"][0] > s["chance_through_point"]
    W, b = null_planes(X, 16, np.random.default_rng(1))
    chance = ParallelAbsNet.from_features(W, b, None, np.ones(16), 0.0, 2)
    assert emergence(chance, X, random_state=0).summary["share_through_point"] < 0.4
