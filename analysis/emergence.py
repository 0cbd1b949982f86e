"""Do trained first-layer neurons land on the hyperplanes the Lasso predicts? (docs/MATH.md section 6).

A hyperplane is compared through its unit-normal parameters ``(w, b)``, ``||w|| = 1``, up to the
sign that leaves ``|w.x + b|`` unchanged: ``dist(H, H') = min_s ||(w, b) - s (w', b')||``. For
parallel planes this is the distance between them; in 1-D, the distance between breakpoints.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .dictionary import Dictionary
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
    """``min_j min_{s=+-1} ||(w, b) - s (w_j, b_j)||`` (unit normals) for each plane ``(W[k], b[k])``, and the argmin j."""
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
    W, b, _, valid = D.params(ids)
    return W[valid], b[valid], exhaustive


@dataclass
class Emergence:
    """Per-neuron table and a JSON-able summary."""

    neurons: pd.DataFrame
    summary: dict


def emergence(net: AbsNet, X, features: pd.DataFrame | None = None, threshold: float = 0.05,
              active_tol: float = 1e-3, bias: bool | None = None, max_planes: int = 100_000,
              n_samples: int = 20_000, random_state=None) -> Emergence:
    """Compare the trained first-layer neurons of ``net`` with the planes of a Lasso solution.

    Per neuron: its weight in ``f`` and whether it is active (``> active_tol * max``); the unsigned
    angle to the nearest normal of a selected feature and the plane distance to it
    (``features``: the estimator's ``features_`` table, or its rows as dicts, with ``w``, ``b``, ``offsets``);
    ``on_predicted`` when that distance is ``<= threshold``; the distance to the nearest hyperplane
    through training points; for a ``ParallelAbsNet`` of depth >= 3 the learned fold offsets and
    their largest difference from the matched feature's offsets. Shares count active neurons only.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != net.d:
        raise ValueError(f"X must have shape (n, {net.d}), got {X.shape}")
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    bias = net.bias if bias is None else bool(bias)
    W, b, weight = net.first_layer()
    active = weight > active_tol * max(weight.max(initial=0.0), np.finfo(float).tiny)
    table = pd.DataFrame({"weight": weight, "active": active, "w": list(W), "b": b})
    Wt, bt, exhaustive = training_planes(X, bias, max_planes, n_samples, random_state)
    table["training_plane_distance"] = plane_distances(W, b, Wt, bt)[0] if len(Wt) else np.nan
    summary = {"n_neurons": int(len(W)), "n_active": int(active.sum()), "threshold": float(threshold),
               "training_planes_exhaustive": bool(exhaustive),
               "median_training_plane_distance": _median(table["training_plane_distance"][active])}
    offsets = net.unit_features()[2] if isinstance(net, ParallelAbsNet) and net.depth > 2 else None
    if offsets is not None:
        table["offsets"] = list(offsets)
    features = None if features is None else pd.DataFrame(features)
    if features is not None and len(features):
        Wf = np.array([np.asarray(w, dtype=float) for w in features["w"]])
        bf = np.asarray(features["b"], dtype=float)
        angle, _ = unsigned_angles(W, Wf)
        dist, nearest = plane_distances(W, b, Wf, bf)
        table["angle_deg"], table["plane_distance"], table["nearest_feature"] = angle, dist, nearest
        table["on_predicted"] = dist <= threshold
        on = table["on_predicted"][active]
        summary.update({"share_on_predicted": float(on.mean()) if len(on) else None,
                        "median_angle_deg": _median(table["angle_deg"][active]),
                        "median_plane_distance": _median(table["plane_distance"][active])})
        if offsets is not None and "offsets" in features:
            width = offsets.shape[1]
            pred = np.zeros((len(features), width))
            for i, c in enumerate(features["offsets"]):
                c = np.asarray(c, dtype=float)[:width]
                pred[i, : len(c)] = c
            table["predicted_offsets"] = list(pred[nearest])
            table["offset_error"] = np.abs(offsets - pred[nearest]).max(axis=1)
            summary["median_offset_error"] = _median(table["offset_error"][active & table["on_predicted"]])
    return Emergence(table, summary)


def _median(values) -> float | None:
    values = np.asarray(values, dtype=float)
    return float(np.median(values)) if values.size else None
