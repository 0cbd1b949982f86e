"""What a selected feature means geometrically: its values, fold planes and mirror images.

A feature ``(w, b, c_1..c_m)`` (``||w|| = 1``) is ``phi(x) = g_m(w.x + b)`` with ``g_0(u) = u`` and
``g_k(u) = |g_{k-1}(u)| - c_k``, taken in absolute value (docs/MATH.md section 2).
"""
from __future__ import annotations

import numpy as np

from analysis.geometry import reflect


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
