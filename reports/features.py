"""What a selected feature means geometrically: its values, fold planes and mirror images.

A feature ``(w, b, c_1..c_m)`` (``||w|| = 1``) is ``phi(x) = g_m(w.x + b)`` with ``g_0(u) = u`` and
``g_k(u) = |g_{k-1}(u)| - c_k``, taken in absolute value (MATH.md section 2).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.geometry import feature_values, reflect


def parameters(features: pd.DataFrame, d: int):
    """``(W (m, d), b (m,), C (m, depth-2), coef (m,))`` of a features table; missing offsets are 0.

    A zero offset leaves ``phi`` unchanged (``||u| - 0| = |u|``), so shallower features padded
    with zeros keep their values.
    """
    m = len(features)
    W = np.asarray(features["w"].tolist(), dtype=float).reshape(m, d)
    offsets = [tuple(o) for o in features["offsets"]]
    width = max((len(o) for o in offsets), default=0)
    C = np.zeros((m, width))
    for j, o in enumerate(offsets):
        C[j, : len(o)] = o
    return W, features["b"].to_numpy(float), C, features["coef"].to_numpy(float)


def fitted_values(features: pd.DataFrame, intercept: float, X: np.ndarray) -> np.ndarray:
    """``f(x) = intercept + sum_j coef_j phi_j(x)`` at the rows of ``X``.

    Stands in for ``analysis.evaluate_features`` until that lands (same contract).
    """
    X = np.atleast_2d(np.asarray(X, dtype=float))
    if not len(features):
        return np.full(len(X), float(intercept))
    W, b, C, coef = parameters(features, X.shape[1])
    return float(intercept) + feature_values(X, W, b, C) @ coef


def preimages(offsets, t: float = 0.0) -> list[float]:
    """Values ``u = w.x + b`` with ``g_m(u) = t`` (``m = len(offsets)``), sorted."""
    if not len(offsets):
        return [float(t)]
    s = t + offsets[-1]
    if s < 0:
        return []
    return sorted(set(preimages(offsets[:-1], s) + preimages(offsets[:-1], -s)))


def fold_levels(offsets) -> tuple[list[float], list[float]]:
    """``(mirrors, zeros)``: levels ``w.x + b = u`` of the fold (mirror) planes, where some
    ``g_k`` (k < m) vanishes, and of the zero set of ``phi``."""
    offsets = tuple(float(c) for c in offsets)
    mirrors = sorted({u for k in range(len(offsets)) for u in preimages(offsets[:k])})
    return mirrors, preimages(offsets)


def mirror_pairs(w, b: float, labels, points, X_train: np.ndarray) -> list[dict]:
    """For each defining training point ``x_i = X_train[i]`` off the mirror ``H = {w.x + b = 0}``
    (fold label not starting with 0): its image ``R_H x_i = x_i - 2 (w.x_i + b) w`` and the nearest
    other training point to it (positions in ``X_train``)."""
    off = [p for p, lab in zip(points, labels) if lab and lab[0] != "0"]
    if not off or len(X_train) < 2:
        return []
    images = reflect(X_train[off], np.asarray(w, dtype=float), float(b))
    dist = np.linalg.norm(images[:, None, :] - X_train[None, :, :], axis=2)
    dist[np.arange(len(off)), off] = np.inf
    nearest = dist.argmin(axis=1)
    return [{"source": int(p), "image": images[i], "nearest": int(nearest[i]), "distance": float(dist[i, nearest[i]])}
            for i, p in enumerate(off)]
