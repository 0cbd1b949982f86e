"""Do trained first-layer neurons land on the hyperplanes the Lasso predicts? (docs/MATH.md section 6).

A hyperplane is compared through its unit-normal parameters ``(w, b)``, ``||w|| = 1``, up to the
sign that leaves ``|w.x + b|`` unchanged: ``dist(H, H') = min_s ||(w, b) - s (w', b')||``. For
parallel planes this is the distance between them; in 1-D, the distance between breakpoints.
A neuron's contribution on the data is ``|coef_k| * std_n phi_k(x_n)`` (its share of f's variation
there). Chance: hyperplanes with a uniform random normal and an offset uniform over the data's span
along it (so they cross the data); a neuron "passes through a training point" when its nearest
training point is closer than the null's 5th percentile, so 5 % of chance planes do.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .dictionary import Dictionary
from .features import FoldFeatures
from .network import AbsNet, ParallelAbsNet

logger = logging.getLogger(__name__)


def _unit(W, b=None):
    W = np.atleast_2d(np.asarray(W, dtype=float))
    n = np.linalg.norm(W, axis=1)
    if np.any(n == 0):
        raise ValueError("hyperplane normals must be non-zero")
    if b is None:
        return W / n[:, None]
    return W / n[:, None], np.asarray(b, dtype=float).reshape(-1) / n


def unsigned_angles(W, normals) -> tuple[np.ndarray, np.ndarray]:
    """Angle in degrees (0..90) from each row of ``W`` to the nearest of ``normals`` up to sign, and its index."""
    cos = np.abs(_unit(W) @ _unit(normals).T)
    nearest = np.argmax(cos, axis=1)
    return np.degrees(np.arccos(np.clip(cos[np.arange(len(cos)), nearest], 0.0, 1.0))), nearest


def plane_distances(W, b, W_ref, b_ref) -> tuple[np.ndarray, np.ndarray]:
    """``min_j min_{s=+-1} ||(w, b) - s (w_j, b_j)||`` (unit normals) for each plane ``(W[k], b[k])``,
    and the argmin j."""
    W, b = _unit(W, b)
    W_ref, b_ref = _unit(W_ref, b_ref)
    P, R = np.c_[W, b], np.c_[W_ref, b_ref]
    G = P @ R.T
    nearest = np.argmin((R ** 2).sum(1)[None, :] - 2.0 * np.abs(G), axis=1)
    sign = np.where(G[np.arange(len(P)), nearest] < 0, -1.0, 1.0)
    return np.linalg.norm(P - sign[:, None] * R[nearest], axis=1), nearest


def training_planes(X, bias: bool = True, max_planes: int = 100_000, n_samples: int = 20_000,
                    random_state=None) -> tuple[np.ndarray, np.ndarray, bool]:
    """Hyperplanes through d training points (through the origin and d-1 points without bias).

    All of them when there are at most ``max_planes``, else ``n_samples`` drawn at random;
    returns ``(W, b, exhaustive)``.
    """
    D = Dictionary(X, 2, bias)
    exhaustive = D.n_candidates <= max_planes
    if exhaustive:
        ids = np.arange(D.n_candidates)
    else:
        rng = np.random.default_rng(random_state)
        ids = np.unique(rng.integers(0, D.n_candidates, size=n_samples))
        logger.info("sampling %d of %d hyperplanes through training points", len(ids), D.n_candidates)
    planes, valid = D.params(ids)
    return planes.W[valid], planes.b[valid], exhaustive


def point_distances(W, b, X, k: int) -> np.ndarray:
    """Distances ``|w.x_n + b| / ||w||`` of the ``k`` nearest training points to each plane, ascending, (m, k)."""
    W, b = _unit(W, b)
    return np.sort(np.abs(np.asarray(X, dtype=float) @ W.T + b), axis=0)[:k].T


def null_planes(X, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random hyperplanes crossing the data: normal uniform on the sphere, offset uniform over the span
    of ``w.x_n``."""
    W = _unit(rng.standard_normal((n, np.asarray(X).shape[1])))
    t = np.asarray(X, dtype=float) @ W.T
    return W, -rng.uniform(t.min(axis=0), t.max(axis=0))


def weighted_share(hit, weight, groups=None, n_boot: int = 1000, rng=None) -> tuple[float, float, float]:
    """``sum w_k hit_k / sum w_k`` and a bootstrap interval (NaN when no weight): over neurons, or with ``groups``
    (each neuron's network) two-stage, networks drawn with replacement and then neurons within each."""
    hit, weight = np.asarray(hit, dtype=float), np.asarray(weight, dtype=float)
    if not len(hit) or weight.sum() <= 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(0) if rng is None else rng
    labels, groups = np.unique(np.zeros(len(hit)) if groups is None else np.asarray(groups), return_inverse=True)
    num, den = np.empty((labels.size, n_boot)), np.empty((labels.size, n_boot))
    for g in range(labels.size):
        idx = np.flatnonzero(groups == g)
        k = idx[rng.integers(idx.size, size=(n_boot, idx.size))]
        num[g], den[g] = (weight[k] * hit[k]).sum(1), weight[k].sum(1)
    pick = rng.integers(labels.size, size=(n_boot, labels.size)) if labels.size > 1 else np.zeros((n_boot, 1), int)
    top, bottom = num[pick, np.arange(n_boot)[:, None]].sum(1), den[pick, np.arange(n_boot)[:, None]].sum(1)
    boot = top / np.where(bottom > 0, bottom, np.nan)
    return float(weight @ hit / weight.sum()), float(np.nanquantile(boot, 0.025)), float(np.nanquantile(boot, 0.975))


@dataclass
class Emergence:
    """Per-neuron table (``network``: which of the compared networks) and a JSON-able summary."""

    neurons: pd.DataFrame
    summary: dict


def _neurons(net: AbsNet, X, active_tol: float, Wt, bt) -> tuple[pd.DataFrame, np.ndarray | None]:
    """One network's first-layer neurons: weight, activity, plane, distance to the nearest training plane,
    contribution ``|coef_k| std_n phi_k(x_n)`` and the d nearest points' distances; the learned fold offsets."""
    W, b, weight = net.first_layer()
    active = weight > active_tol * max(weight.max(initial=0.0), np.finfo(float).tiny)
    table = pd.DataFrame({"weight": weight, "active": active, "w": list(W), "b": b})
    table["training_plane_distance"] = plane_distances(W, b, Wt, bt)[0] if len(Wt) else np.nan
    offsets = net.unit_features()[2] if isinstance(net, ParallelAbsNet) and net.depth > 2 else None
    if offsets is not None:
        table["offsets"] = list(offsets)
    table["contribution"] = weight * FoldFeatures.of(W, b, offsets).values(X).std(axis=0)
    table["point_distances"] = list(point_distances(W, b, X, net.d))
    return table, offsets


def emergence(nets, X, features: pd.DataFrame | None = None, threshold: float = 0.05,
              active_tol: float = 1e-3, bias: bool | None = None, max_planes: int = 100_000,
              n_samples: int = 20_000, n_null: int = 2000, random_state=None) -> Emergence:
    """Compare the trained first-layer neurons of ``nets`` (one network, or one per training seed) with the
    planes of a Lasso solution.

    Per neuron: its weight in ``f`` and whether it is active (``> active_tol * max`` in its network); the
    unsigned angle to the nearest normal of a selected feature and the plane distance to it
    (``features``: the estimator's ``features_`` table, or its rows as dicts, with ``w``, ``b``, ``offsets``);
    ``on_predicted`` when that distance is ``<= threshold``; the distance to the nearest hyperplane
    through training points; for a ``ParallelAbsNet`` of depth >= 3 the learned fold offsets and
    their largest difference from the matched feature's offsets. Shares count active neurons only.

    Weighted by contribution (``contribution``, all neurons; each network's weights sum to one, so every seed
    counts once): the distances of the d nearest training points to each plane (``point_distances``); the
    shares of neurons through a training point / through d of them (``through_point``, ``through_d_points``,
    chance 0.05 each: ``n_null`` random planes crossing the data) and on a predicted plane (chance: the share of
    the random planes within ``threshold`` of one), each with a bootstrap interval over networks and their
    neurons (``weighted_share``) and its value in each network (``..._per_network``); ``lasso_recall``: the share
    of the Lasso features (weighted by their own contribution) with a neuron within ``threshold``, averaged over
    networks.
    """
    nets = [nets] if isinstance(nets, AbsNet) else list(nets)
    if not nets:
        raise ValueError("emergence needs at least one trained network")
    X = np.asarray(X, dtype=float)
    for net in nets:
        if X.ndim != 2 or X.shape[1] != net.d:
            raise ValueError(f"X must have shape (n, {net.d}), got {X.shape}")
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    bias = nets[0].bias if bias is None else bool(bias)
    Wt, bt, exhaustive = training_planes(X, bias, max_planes, n_samples, random_state)
    parts = [_neurons(net, X, active_tol, Wt, bt) for net in nets]
    table = pd.concat([t.assign(network=i) for i, (t, _) in enumerate(parts)], ignore_index=True)
    active, net_of = table["active"].to_numpy(bool), table["network"].to_numpy()
    totals = table.groupby("network")["contribution"].transform("sum").to_numpy()
    share_weight = table["contribution"].to_numpy() / np.where(totals > 0, totals, 1.0)
    summary = {"n_networks": len(nets), "n_neurons": int(len(table)), "n_active": int(active.sum()),
               "threshold": float(threshold), "training_planes_exhaustive": bool(exhaustive),
               "median_training_plane_distance": _median(table["training_plane_distance"][active])}
    rng = np.random.default_rng(random_state)
    near = np.stack(table["point_distances"].to_numpy())
    Wn, bn = null_planes(X, n_null, rng)
    null_near = point_distances(Wn, bn, X, X.shape[1])
    table["through_point"] = near[:, 0] <= np.quantile(null_near[:, 0], 0.05)
    table["through_d_points"] = near[:, -1] <= np.quantile(null_near[:, -1], 0.05)

    def share(key, prefix=""):
        value, lo, hi = weighted_share(table[key], share_weight, net_of, rng=rng)
        hit = table[key].to_numpy(float)
        per = [float(hit[net_of == i] @ share_weight[net_of == i]) if share_weight[net_of == i].sum() > 0
               else float("nan") for i in range(len(nets))]
        summary.update({f"{prefix}share_{key}": value, f"{prefix}share_{key}_ci": [lo, hi],
                        f"{prefix}share_{key}_per_network": per})

    for key in ("through_point", "through_d_points"):
        share(key)
        summary[f"chance_{key}"] = 0.05
    summary["weighted_median_point_distance"] = _weighted_median(near[:, 0], share_weight)
    features = None if features is None else pd.DataFrame(features)
    if features is not None and len(features):
        Wf = np.array([np.asarray(w, dtype=float) for w in features["w"]])
        bf = np.asarray(features["b"], dtype=float)
        W, b = np.stack(table["w"].to_numpy()), table["b"].to_numpy(float)
        angle, _ = unsigned_angles(W, Wf)
        dist, nearest = plane_distances(W, b, Wf, bf)
        table["angle_deg"], table["plane_distance"], table["nearest_feature"] = angle, dist, nearest
        table["on_predicted"] = dist <= threshold
        on = table["on_predicted"][active]
        summary.update({"share_on_predicted": float(on.mean()) if len(on) else None,
                        "median_angle_deg": _median(table["angle_deg"][active]),
                        "median_plane_distance": _median(table["plane_distance"][active])})
        share("on_predicted", "weighted_")
        lasso = FoldFeatures.of(Wf, bf, features["offsets"] if "offsets" in features else None)
        own = np.abs(np.asarray(features["coef"], dtype=float)) * lasso.values(X).std(axis=0)
        recall = [own @ (plane_distances(Wf, bf, W[net_of == i], b[net_of == i])[0] <= threshold) / own.sum()
                  for i in range(len(nets))] if own.sum() > 0 else None
        summary.update({"chance_on_predicted": float(np.mean(plane_distances(Wn, bn, Wf, bf)[0] <= threshold)),
                        "weighted_median_angle_deg": _weighted_median(angle, share_weight),
                        "weighted_median_plane_distance": _weighted_median(dist, share_weight),
                        "lasso_recall": float(np.mean(recall)) if recall else None,
                        "lasso_recall_per_network": [float(r) for r in recall] if recall else None})
        if all(o is not None for _, o in parts) and "offsets" in features:
            offsets = np.concatenate([o for _, o in parts])
            pred = lasso.with_offsets(offsets.shape[1]).C[nearest]
            table["predicted_offsets"] = list(pred)
            table["offset_error"] = np.abs(offsets - pred).max(axis=1)
            summary["median_offset_error"] = _median(table["offset_error"][active & table["on_predicted"]])
    return Emergence(table, summary)


def _median(values) -> float | None:
    values = np.asarray(values, dtype=float)
    return float(np.median(values)) if values.size else None


def _weighted_median(values, weight) -> float | None:
    """The value at which the cumulative weight first reaches half the total."""
    values, weight = np.asarray(values, dtype=float), np.asarray(weight, dtype=float)
    if not values.size or weight.sum() <= 0:
        return None
    order = np.argsort(values)
    return float(values[order][np.searchsorted(np.cumsum(weight[order]), 0.5 * weight.sum())])
